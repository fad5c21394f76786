"""Laser rings of a spinning LiDAR scan (Paddle-free): which ring each point came from, and a scan
thinned to fewer beams, to train as with a cheaper sensor (Guizilini et al., CoRL 2019: 64 -> 4 beams).

KITTI's Velodyne HDL-64E has 64 lasers at fixed elevation angles, from about +2.0 deg (ring 0, the
top) down to -24.8 deg (ring 63). A KITTI .bin scan does not store the laser id, so the ring of a
point is recovered from its elevation angle atan2(z, sqrt(x^2 + y^2)) in the velodyne frame.
"""
import numpy as np

HDL64_RINGS = 64
HDL64_ELEVATIONS_DEG = (2.0, -24.8)   # top and bottom ring of the HDL-64E (its data sheet's 26.8 deg)
LIDAR_BEAMS = (64, 32, 16, 8, 4)      # the thinned sensors offered (every k-th ring, k = 64 / beams)


def elevation_deg(points):
    """Elevation angle (degrees) of each point (N x >=3, velodyne frame: x forward, y left, z up)."""
    p = np.asarray(points, dtype=np.float64)
    return np.degrees(np.arctan2(p[:, 2], np.hypot(p[:, 0], p[:, 1])))


def ring_centres(elevation, bin_deg=0.02, empty_fraction=0.01, min_gap_deg=0.1):
    """Elevations (degrees, descending) of the rings present in a scan: the runs of occupied bins of
    the elevation histogram (bins of bin_deg), a bin counting as empty below empty_fraction x the
    95th percentile of the non-empty bins' counts, or below 2 points (stray points between rings
    neither join two rings nor make rings of their own), and gaps narrower than min_gap_deg (a
    quarter of the HDL-64E's smallest pitch) filled (a sparse ring stays one); each centre is the
    mean elevation of its run's points."""
    el = np.asarray(elevation, dtype=np.float64)
    if el.size == 0:
        return np.zeros(0)
    bins = ((el - el.min()) / bin_deg).astype(np.int64)
    counts = np.bincount(bins)
    occupied = counts >= max(empty_fraction * np.percentile(counts[counts > 0], 95), 2)
    # a gap narrower than min_gap_deg is inside a sparse ring, not between two rings: fill it
    idx = np.flatnonzero(occupied)
    for a, b in zip(idx[:-1], idx[1:]):
        if 1 < b - a <= min_gap_deg / bin_deg:
            occupied[a:b] = True
    run = np.cumsum(np.diff(np.concatenate([[0], occupied.astype(np.int8)])) == 1) * occupied  # 1.. per run, 0 = gap
    point_run = run[bins]
    keep = point_run > 0
    n = run.max()
    sums = np.bincount(point_run[keep] - 1, weights=el[keep], minlength=n)
    centres = sums / np.maximum(np.bincount(point_run[keep] - 1, minlength=n), 1)
    return np.sort(centres)[::-1]


def ring_numbers(centres, top_deg=HDL64_ELEVATIONS_DEG[0]):
    """Ring number of each ring centre (descending elevations), counting the rings that returned no
    point (sky, or lost) so that "every k-th ring" keeps its rhythm across them.

    The step between neighbours is floor(d / s + 0.35), d their spacing and s the smaller of the
    spacings beside them (the local ring pitch): 1 for the HDL-64E's change of pitch from 1/3 to
    1/2 deg (d / s = 1.5), 2 across one missing ring. The first ring present is numbered from the
    sensor's top ring `top_deg` with the same rule (rings above it that saw only sky)."""
    c = np.asarray(centres, dtype=np.float64)
    if c.size < 2:
        return np.zeros(c.size, np.int64)
    d = c[:-1] - c[1:]
    pitch = np.minimum(np.concatenate([[d[0]], d[:-1]]), np.concatenate([d[1:], [d[-1]]]))
    pitch = np.minimum(pitch, d)
    steps = np.maximum(np.floor(d / pitch + 0.35), 1).astype(np.int64)
    first = max(int(np.floor((top_deg - c[0]) / d[0] + 0.35)), 0)
    return first + np.concatenate([[0], np.cumsum(steps)])


def ring_index(points, top_deg=HDL64_ELEVATIONS_DEG[0]):
    """Ring (0 = the sensor's top ring) of each point, int array (N,), from its elevation angle:
    the rings present are found as clusters of elevation (ring_centres), numbered with the gaps of
    missing rings counted (ring_numbers), and each point takes the ring of the nearest centre.
    Works for evenly spaced rings (the synthetic scanner's) and for the real HDL-64E's two pitches
    alike, with no table of laser angles."""
    el = elevation_deg(points)
    centres = ring_centres(el)
    if centres.size == 0:
        return np.zeros(0, np.int64)
    numbers = ring_numbers(centres, top_deg)
    ascending = centres[::-1]
    nearest = np.searchsorted((ascending[1:] + ascending[:-1]) / 2, el)   # index into ascending centres
    return numbers[::-1][nearest]


def keep_beams(points, beams, num_rings=HDL64_RINGS, top_deg=HDL64_ELEVATIONS_DEG[0]):
    """The points of every k-th ring, k = num_rings / beams, counting from the top ring (ring 0 is
    kept): a `beams`-beam sensor with the same field of view. beams == num_rings returns `points`."""
    if beams == num_rings:
        return points
    if beams < 1 or num_rings % beams:
        raise ValueError(f"{beams} beams: must divide the scan's {num_rings} rings (one of {LIDAR_BEAMS})")
    k = num_rings // beams
    return points[ring_index(points, top_deg) % k == 0]
