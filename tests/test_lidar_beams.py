"""utils/sensors/lidar_beams.py (sparse depth): the laser ring of every point of a scan, found from elevation angles
alone, and --lidar_beams' thinning to every k-th ring. Checked on a scan of the synthetic scanner
(synthetic/raycast.render_velodyne: 64 rings evenly spaced over scene.VELO_ELEVATIONS, ring 0 the
top) against its own ring table, and on a simulated real HDL-64E (two pitches, 1/3 and 1/2 deg,
beam jitter, sparse and missing rings, stray points); the dataset's depth_gt is the thinned scan's."""
import os

import numpy as np
import pytest

from datasets import KITTIRAWDataset, read_split
from synthetic import split_dir
from synthetic.raycast import render_velodyne
from synthetic.scene import VELO_ELEVATIONS, make_scene, trajectory
from tests.synthetic_fixture import synthetic_kitti  # noqa: F401
from utils.sensors.lidar_beams import elevation_deg, keep_beams, ring_index

SYNTHETIC_RINGS = np.linspace(VELO_ELEVATIONS[0], VELO_ELEVATIONS[1], 64)   # the scanner's own table


@pytest.fixture(scope="module")
def synthetic_scan():
    """One scan of the synthetic street (1 deg azimuth steps: ~15k points) and each point's true ring
    (the scanner casts ring r at exactly SYNTHETIC_RINGS[r])."""
    rng = np.random.default_rng(4)
    rotations, centres = trajectory(rng, 3)
    boxes = make_scene(rng, 150.0, 13)
    velo_to_world = np.eye(4)
    velo_to_world[:3, :3] = rotations[1] @ np.array([[0.0, -1, 0], [0, 0, -1], [1, 0, 0]])
    velo_to_world[:3, 3] = centres[1]
    scan = render_velodyne(velo_to_world, boxes, 1.0)
    true = np.abs(elevation_deg(scan)[:, None] - SYNTHETIC_RINGS[None]).argmin(1)
    assert np.abs(elevation_deg(scan) - SYNTHETIC_RINGS[true]).max() < 1e-3   # exact rings, float32 only
    return scan, true


def test_rings_of_the_synthetic_scanner(synthetic_scan):
    scan, true = synthetic_scan
    assert len(np.unique(true)) >= 60     # nearly every ring hits something: a real test of the numbering
    np.testing.assert_array_equal(ring_index(scan), true)


@pytest.mark.parametrize("beams", [64, 32, 16, 8, 4])
def test_keep_beams_keeps_every_kth_ring_from_the_top(synthetic_scan, beams):
    scan, true = synthetic_scan
    kept = keep_beams(scan, beams)
    k = 64 // beams
    np.testing.assert_array_equal(kept, scan[true % k == 0])
    kept_rings = np.unique(np.abs(elevation_deg(kept)[:, None] - SYNTHETIC_RINGS[None]).argmin(1))
    assert set(kept_rings) <= set(range(0, 64, k)) and len(kept_rings) >= beams - 2


def test_keep_beams_refuses_a_beam_count_that_does_not_divide():
    with pytest.raises(ValueError, match="divide"):
        keep_beams(np.zeros((5, 4), np.float32), 12)


def test_rings_of_a_simulated_hdl64e():
    """KITTI's HDL-64E: 32 upper lasers +2 .. -8.33 deg (pitch 1/3), 32 lower -8.83 .. -24.33 (pitch
    1/2); 0.03 deg jitter per point; the 3 top rings see mostly sky (5 % of their points), ring 0 and
    ring 40 none at all; 0.3 % stray points anywhere. Every non-stray point gets its ring."""
    rng = np.random.default_rng(0)
    table = np.concatenate([2.0 - np.arange(32) / 3, -8.83 - 0.5 * np.arange(32)])
    ring = np.repeat(np.arange(64), 1500)
    keep = (ring != 0) & (ring != 40) & ~((ring < 3) & (rng.random(ring.size) < 0.95))
    ring = ring[keep]
    elevation = table[ring] + rng.normal(0, 0.03, ring.size)
    stray = rng.random(ring.size) < 0.003
    elevation[stray] = rng.uniform(-24.5, 2.0, stray.sum())
    e, az, r = np.radians(elevation), rng.uniform(-np.pi, np.pi, ring.size), rng.uniform(3, 80, ring.size)
    points = np.stack([r * np.cos(e) * np.cos(az), r * np.cos(e) * np.sin(az), r * np.sin(e)], 1)
    got = ring_index(points)
    np.testing.assert_array_equal(got[~stray], ring[~stray])
    kept = keep_beams(points, 4)
    np.testing.assert_array_equal(kept, points[got % 16 == 0])
    assert set(ring[(got % 16 == 0) & ~stray]) == {16, 32, 48}      # ring 0 returned nothing


def test_dataset_depth_gt_uses_the_thinned_scan(synthetic_kitti):
    """depth_gt with --lidar_beams 16 is a subset of the 64-beam map's pixels, about a quarter of
    them (the 16 kept rings, minus the ones outside the camera's view)."""
    root = synthetic_kitti["data_path"]
    lines = read_split(os.path.join(split_dir(root), "train_files.txt"))[:2]
    full = KITTIRAWDataset(root, lines, 64, 192, [0], depth_gt_size=None)
    thin = KITTIRAWDataset(root, lines, 64, 192, [0], depth_gt_size=None, lidar_beams=16)
    for i in range(len(lines)):
        a = full.get_item(i, np.random.default_rng(0))["depth_gt"]
        b = thin.get_item(i, np.random.default_rng(0))["depth_gt"]
        assert a.shape == b.shape and np.all(a[b > 0] > 0)
        assert 0.15 < (b > 0).sum() / (a > 0).sum() < 0.35
