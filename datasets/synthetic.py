"""A synthetic KITTI raw dataset: a ray-cast street scene written in exactly KITTI's layout.

    python -m datasets.synthetic --out data/synthetic_kitti            # quick-start subset
    python -m datasets.synthetic --out data/synth --drives 6 --frames 100 --width 1242 --height 375

Python: ``info = datasets.synthetic.generate(out_dir, seed=0, ...)`` (returns the dict also stored
in ``<out_dir>/synthetic_info.json``; an existing folder made with the same settings is reused);
``ensure(out_dir)`` reuses any synthetic dataset already there; ``split_dir(out_dir)`` is its splits folder.

What it writes (``<date>`` is a fictitious ``2000_01_0<k>``, ``<drive>`` = ``<date>_drive_<nnnn>_sync``):

    <out>/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt, calib_imu_to_velo.txt
    <out>/<date>/<drive>/image_02/data/<10-digit frame>.jpg   left colour camera (png with --img_ext .png)
    <out>/<date>/<drive>/image_03/data/<frame>.jpg            right colour camera, 0.54 m to the right
    <out>/<date>/<drive>/velodyne_points/data/<frame>.bin     float32 x, y, z, reflectance (velodyne frame)
    <out>/<date>/<drive>/depth/image_0{2,3}/<frame>.npy       exact dense depth (camera z, metres), 0 = sky
    <out>/<date>/<drive>/proj_depth/groundtruth/image_02/<frame>.png  same, KITTI annotated format (uint16 m*256)
    <out>/poses/<drive>.txt     line i: 12 numbers, row-major 3x4 camera-2-to-world matrix of frame i,
                                world = camera 2 at frame 0 (KITTI-odometry style; x right, y down, z forward)
    <out>/splits/train_files.txt, val_files.txt, test_files.txt   standard "<date>/<drive> <frame> <l|r>" lines

Camera: fx = 0.58 W, fy = 1.92 H, principal point (W/2, H/2) in 0-based pixel coordinates (the loader's K);
the calibration files use KITTI's 1-based convention (the devkit subtracts 1), so P_rect has cx = W/2 + 1,
cy = H/2 + 1. Camera 2 is 0.06 m left and camera 3 0.48 m right of the rectified camera 0 (baseline 0.54 m),
as in KITTI's P_rect_02/03. The velodyne sits 0.27 m behind and 0.08 m above camera 0 with a slightly
rotated mount (per date), and R_rect_00 is a small rotation: the scans obey the devkit projection.
Train lines: every frame with both neighbours, both sides, of every drive but the last; val: every 5th of
those frames (removed from train; no val file when there are none); test: every frame of the last drive, left camera (all frames, so that
pose evaluation has consecutive frames).
"""
import utils  # noqa: F401  (first import: silences Paddle's import-time ccache warning)
import json
import os
import shutil
import sys
import tempfile

import numpy as np
from PIL import Image

FORMAT_VERSION = 1
CAMERA_HEIGHT = 1.65          # metres above the ground (KITTI)
BASELINE = 0.54               # camera 2 to camera 3
CAM2_OFFSET = -0.06           # camera centres along rectified camera-0 x
CAM3_OFFSET = CAM2_OFFSET + BASELINE
CAM_OFFSETS = (0.0, BASELINE, CAM2_OFFSET, CAM3_OFFSET)   # cameras 0-3 (KITTI: grey pair, colour pair)
VELO_IN_CAM = np.array([-0.004, -0.076, -0.27])   # velodyne origin in camera-0 coordinates (KITTI-like)
VELO_ELEVATIONS = (2.0, -24.8)                    # HDL-64E vertical field of view, degrees
MAX_RANGE = 120.0
SPLIT_DIR = "splits"
INFO_FILE = "synthetic_info.json"


def drive_name(date, drive):
    return f"{date}_drive_{drive:04d}_sync"


def split_dir(out_dir):
    """Folder holding train_files.txt / val_files.txt / test_files.txt of a generated dataset."""
    return os.path.join(out_dir, SPLIT_DIR)


def intrinsics(width, height):
    """0-based 3x3 K of the synthetic camera (identical to the loader's normalised KITTI K)."""
    return np.array([[0.58 * width, 0, 0.5 * width], [0, 1.92 * height, 0.5 * height], [0, 0, 1]])


# ----------------------------------------------------------------------------------------- geometry
def _rot_x(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_y(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rot_z(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _make_calib(rng, width, height):
    """Per-date calibration: exact intrinsics, small random rectification and velodyne mount rotations."""
    deg = np.pi / 180
    r_rect = _rot_x(rng.uniform(-0.3, 0.3) * deg) @ _rot_y(rng.uniform(-0.3, 0.3) * deg)
    # velodyne axes (x forward, y left, z up) -> camera axes (x right, y down, z forward), slightly rotated
    axes = np.array([[0.0, -1, 0], [0, 0, -1], [1, 0, 0]])
    r_velo = _rot_z(rng.uniform(-0.5, 0.5) * deg) @ _rot_x(rng.uniform(-0.5, 0.5) * deg) @ axes
    t_velo = VELO_IN_CAM + rng.uniform(-0.01, 0.01, 3)
    k = intrinsics(width, height)
    k1 = k.copy()
    k1[0, 2] += 1   # KITTI's P_rect is 1-based: the devkit's "round(u) - 1" brings points back to 0-based
    k1[1, 2] += 1
    # P_rect_0c = K [I | -c_c], c_c the camera centre along camera-0 x (grey 0, 1; colour 2, 3)
    p_rect = {cam: np.hstack([k1, k1 @ np.array([[-off], [0], [0]])]) for cam, off in enumerate(CAM_OFFSETS)}
    return {"R_rect": r_rect, "R_velo": r_velo, "T_velo": t_velo, "P_rect": p_rect, "width": width, "height": height}


def _fmt(values):
    return " ".join(f"{v:.12e}" for v in np.ravel(values))


def _write_calib(date_dir, calib):
    w, h = calib["width"], calib["height"]
    lines = ["calib_time: 01-Jan-2000 00:00:00", "corner_dist: 9.950000e-02"]
    for cam in range(4):
        p = calib["P_rect"][cam]
        r = calib["R_rect"] if cam == 0 else np.eye(3)
        lines += [f"S_0{cam}: {_fmt([w, h])}", f"K_0{cam}: {_fmt(p[:, :3])}", f"D_0{cam}: {_fmt(np.zeros(5))}",
                  f"R_0{cam}: {_fmt(np.eye(3))}", f"T_0{cam}: {_fmt([-CAM_OFFSETS[cam], 0, 0])}",
                  f"S_rect_0{cam}: {_fmt([w, h])}", f"R_rect_0{cam}: {_fmt(r)}", f"P_rect_0{cam}: {_fmt(p)}"]
    with open(os.path.join(date_dir, "calib_cam_to_cam.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(date_dir, "calib_velo_to_cam.txt"), "w") as f:
        f.write(f"calib_time: 01-Jan-2000 00:00:00\nR: {_fmt(calib['R_velo'])}\nT: {_fmt(calib['T_velo'])}\n"
                f"delta_f: {_fmt([0, 0])}\ndelta_c: {_fmt([0, 0])}\n")
    with open(os.path.join(date_dir, "calib_imu_to_velo.txt"), "w") as f:
        f.write(f"calib_time: 01-Jan-2000 00:00:00\nR: {_fmt(np.eye(3))}\nT: {_fmt([-0.81, 0.32, -0.80])}\n")


# ------------------------------------------------------------------------------------------ scene
def _textures():
    """Photographs shipped with scikit-image, as float RGB mip-map pyramids in [0, 1]."""
    from skimage import data
    images = [data.brick(), data.gravel(), data.grass(), data.astronaut(), data.coffee(), data.chelsea(),
              data.rocket(), data.immunohistochemistry(), data.camera(),
              data.text(), data.coins(), data.moon(), data.retina()[300:812, 300:812]]
    pyramids = []
    for img in images:
        img = img.astype(np.float32) / 255
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        levels = [img]
        while min(levels[-1].shape[:2]) >= 8:
            a = levels[-1]
            a = a[: a.shape[0] // 2 * 2, : a.shape[1] // 2 * 2]
            levels.append(0.25 * (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]))
        pyramids.append(levels)
    return pyramids


GROUND_TEXTURE, SIDEWALK_TEXTURE = 1, 0


def _make_scene(rng, length, num_textures):
    """Axis-aligned boxes along a street running along world +z: buildings, parked cars, poles.

    Returns an array of boxes: rows [xmin, ymin, zmin, xmax, ymax, zmax, texture, tile_m, r, g, b, ou, ov]
    (y points down; the ground is y = CAMERA_HEIGHT).
    """
    g = CAMERA_HEIGHT
    boxes = []

    def add(x0, x1, height, z0, z1, texture, tile):
        boxes.append([x0, g - height, z0, x1, g, z1, texture, tile, *rng.uniform(0.55, 1.0, 3), *rng.uniform(0, 50, 2)])

    building_textures = [t for t in range(num_textures) if t not in (GROUND_TEXTURE,)]
    for side in (-1, 1):
        z = -20.0
        while z < length:
            size = rng.uniform(8, 25)
            front = rng.uniform(6.5, 9.5)
            x0, x1 = sorted((side * front, side * (front + 10)))
            add(x0, x1, rng.uniform(6, 18), z, z + size, rng.choice(building_textures), rng.uniform(3, 9))
            z += size + rng.uniform(0, 5)
        z = rng.uniform(0, 10)
        while z < length:                       # parked cars
            if rng.uniform() < 0.6:
                near = rng.uniform(2.8, 3.6)
                x0, x1 = sorted((side * near, side * (near + 1.7)))
                add(x0, x1, rng.uniform(1.3, 1.7), z, z + rng.uniform(3.8, 4.8), rng.choice(building_textures), rng.uniform(1.5, 4))
            z += rng.uniform(6, 14)
        z = rng.uniform(0, 15)
        while z < length:                       # poles
            x = side * rng.uniform(5.0, 5.6)
            add(x - 0.12, x + 0.12, rng.uniform(3.5, 6), z, z + 0.24, rng.choice(building_textures), 1.0)
            z += rng.uniform(10, 25)
    return np.array(boxes)


def _trajectory(rng, frames):
    """Camera-0 poses (R, centre) along a gently weaving path: lateral offset a sin(w t + phi), heading its tangent."""
    speed = rng.uniform(0.8, 1.3)                          # metres per frame (KITTI: ~10 Hz at 30-45 km/h)
    amp = rng.uniform(0.6, 1.3)
    omega = 2 * np.pi / rng.uniform(25, 45)
    phase = rng.uniform(0, 2 * np.pi)
    t = np.arange(frames, dtype=np.float64)
    x = amp * (np.sin(omega * t + phase) - np.sin(phase))
    dx = amp * omega * np.cos(omega * t + phase)
    heading = np.arctan2(dx, speed)
    pitch = 0.004 * np.sin(0.7 * t + rng.uniform(0, 6))   # a little body pitch
    centres = np.stack([x, np.zeros_like(t), speed * t], 1)
    rotations = [_rot_y(h) @ _rot_x(p) for h, p in zip(heading, pitch)]
    return rotations, centres


def _cast(origin, dirs, boxes, max_t, candidates=None):
    """Nearest hit of rays origin + t*dirs (N x 3) with the ground plane and the boxes.

    candidates(k) -> index array of the rays that may hit box k (None: all rays).
    Returns t (N,), surface id (N,: -1 nothing, 0 ground, k+1 box k), hit face axis (N,: 0 x, 1 y, 2 z).
    """
    n = dirs.shape[0]
    t_best = np.full(n, np.inf)
    surface = np.full(n, -1, np.int32)
    axis = np.full(n, 1, np.int8)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = (CAMERA_HEIGHT - origin[1]) / dirs[:, 1]
    ground = (dirs[:, 1] > 0) & (t_ground < max_t)
    t_best[ground] = t_ground[ground]
    surface[ground] = 0
    inv = 1.0 / np.where(np.abs(dirs) < 1e-12, 1e-12, dirs)
    inv_x, inv_y, inv_z = (np.ascontiguousarray(inv[:, i]) for i in range(3))
    for k, box in enumerate(boxes):
        idx = None if candidates is None else candidates(k)
        if idx is not None and idx.size == 0:
            continue
        ix, iy, iz = (inv_x, inv_y, inv_z) if idx is None else (inv_x[idx], inv_y[idx], inv_z[idx])
        ax, bx = (box[0] - origin[0]) * ix, (box[3] - origin[0]) * ix
        ay, by = (box[1] - origin[1]) * iy, (box[4] - origin[1]) * iy
        az, bz = (box[2] - origin[2]) * iz, (box[5] - origin[2]) * iz
        nx, ny, nz = np.minimum(ax, bx), np.minimum(ay, by), np.minimum(az, bz)
        t_near = np.maximum(np.maximum(nx, ny), nz)
        t_far = np.minimum(np.minimum(np.maximum(ax, bx), np.maximum(ay, by)), np.maximum(az, bz))
        current = t_best if idx is None else t_best[idx]
        hit = (t_near <= t_far) & (t_near > 1e-6) & (t_near < current)
        if not hit.any():
            continue
        face = np.where(nx[hit] >= np.maximum(ny[hit], nz[hit]), 0, np.where(ny[hit] >= nz[hit], 1, 2))
        rows = np.flatnonzero(hit) if idx is None else idx[hit]
        t_best[rows] = t_near[hit]
        surface[rows] = k + 1
        axis[rows] = face
    surface[t_best > max_t] = -1
    return t_best, surface, axis


def _box_candidates(boxes, origin, dist):
    """Boxes whose closest point lies within dist of origin."""
    closest = np.clip(origin, boxes[:, 0:3], boxes[:, 3:6])
    return boxes[np.linalg.norm(closest - origin, axis=1) < dist]


def _box_corners(box):
    return np.array(np.meshgrid([box[0], box[3]], [box[1], box[4]], [box[2], box[5]], indexing="ij")).reshape(3, 8).T


_BOX_EDGES = [(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1]


def _screen_candidates(boxes, rotation, centre, k, width, height):
    """candidates(k) for a pinhole camera: the pixels inside box k's projected bounding rectangle
    (the box clipped at a near plane first, so boxes reaching behind the camera are handled exactly)."""
    near = 0.05
    grid = np.arange(width * height).reshape(height, width)

    def candidates(i):
        cam = (_box_corners(boxes[i]) - centre) @ rotation      # world -> camera coordinates
        front = cam[:, 2] > near
        if not front.any():
            return np.empty(0, np.int64)
        pts = [cam[front]]
        for a, b in _BOX_EDGES:       # edges crossing the near plane
            if front[a] != front[b]:
                s = (near - cam[a, 2]) / (cam[b, 2] - cam[a, 2])
                pts.append((cam[a] + s * (cam[b] - cam[a]))[None])
        pts = np.concatenate(pts)
        u = pts[:, 0] / pts[:, 2] * k[0, 0] + k[0, 2]
        v = pts[:, 1] / pts[:, 2] * k[1, 1] + k[1, 2]
        c0, c1 = max(int(np.floor(u.min())), 0), min(int(np.ceil(u.max())) + 1, width)
        r0, r1 = max(int(np.floor(v.min())), 0), min(int(np.ceil(v.max())) + 1, height)
        if c0 >= c1 or r0 >= r1:
            return np.empty(0, np.int64)
        return grid[r0:r1, c0:c1].ravel()
    return candidates


def _azimuth_candidates(boxes, velo_to_world, azimuths, num_beams):
    """candidates(k) for the velodyne: the rays whose azimuth lies within box k's azimuth range
    (exact for a convex box that does not surround the scanner's vertical axis)."""
    step = azimuths[1] - azimuths[0]
    cols = azimuths.size
    grid = np.arange(num_beams * cols).reshape(num_beams, cols)
    world_to_velo = np.linalg.inv(velo_to_world)

    def candidates(i):
        pts = _box_corners(boxes[i]) @ world_to_velo[:3, :3].T + world_to_velo[:3, 3]
        az = np.arctan2(pts[:, 1], pts[:, 0])
        mid = np.arctan2(pts[:, 1].mean(), pts[:, 0].mean())
        rel = np.angle(np.exp(1j * (az - mid)))
        if rel.max() - rel.min() > np.pi * 0.9:   # scanner (nearly) inside the footprint: all rays
            return None
        c0 = int(np.floor((mid + rel.min() - azimuths[0]) / step)) - 1
        c1 = int(np.ceil((mid + rel.max() - azimuths[0]) / step)) + 2
        return grid[:, np.arange(c0, c1) % cols].ravel()
    return candidates


def _sample(pyramid, u, v, level):
    """Bilinear lookup of a tiling texture at texel coordinates (u, v) on mip level `level` (arrays)."""
    out = np.empty(u.shape + (3,), np.float32)
    for lev in np.unique(level):
        sel = level == lev
        img = pyramid[lev]
        h, w = img.shape[:2]
        flat = img.reshape(-1, 3)
        x = u[sel] * (0.5 ** lev) - 0.5
        y = v[sel] * (0.5 ** lev) - 0.5
        x0, y0 = np.floor(x), np.floor(y)
        fx, fy = (x - x0).astype(np.float32)[:, None], (y - y0).astype(np.float32)[:, None]
        x0 = x0.astype(np.int64) % w
        y0 = y0.astype(np.int64) % h
        x1, y1 = (x0 + 1) % w, (y0 + 1) % h
        y0 *= w
        y1 *= w
        top = flat[y0 + x0] + (flat[y0 + x1] - flat[y0 + x0]) * fx
        bottom = flat[y1 + x0] + (flat[y1 + x1] - flat[y1 + x0]) * fx
        out[sel] = top + (bottom - top) * fy
    return out


_LIGHT = np.array([-0.4, -1.0, -0.3]) / np.linalg.norm([-0.4, -1.0, -0.3])
_SKY_HORIZON, _SKY_ZENITH = np.array([0.86, 0.89, 0.93], np.float32), np.array([0.42, 0.58, 0.86], np.float32)
_ROAD_TINT, _SIDEWALK_TINT = (0.62, 0.62, 0.66), (0.85, 0.8, 0.75)


def _surface_params(p, s, a, boxes):
    """Per hit: texture id, tile size (m), tint (n x 3), texture coordinates (m) on the face's plane."""
    tu = np.where(a == 0, p[:, 2], p[:, 0])
    tv = np.where(a == 1, p[:, 2], p[:, 1])
    ground = s == 0
    sidewalk = ground & (np.abs(p[:, 0]) > 5.0)
    b = boxes[np.maximum(s - 1, 0)] if len(boxes) else np.zeros((s.size, 13))
    texture = np.where(ground, np.where(sidewalk, SIDEWALK_TEXTURE, GROUND_TEXTURE), b[:, 6]).astype(np.int64)
    tile = np.where(ground, np.where(sidewalk, 2.5, 4.0), b[:, 7])
    tint = np.where(ground[:, None], np.where(sidewalk[:, None], _SIDEWALK_TINT, _ROAD_TINT), b[:, 8:11])
    tu = tu + np.where(ground, 0, b[:, 11])
    tv = tv + np.where(ground, 0, b[:, 12])
    # dashed lane marking along the street centre
    lane = ground & (np.abs(p[:, 0]) < 0.08) & (np.mod(p[:, 2], 6.0) < 3.0)
    return texture, tile, tint.astype(np.float32), tu, tv, lane


def _shade(origin, dirs, t, surface, axis, boxes, textures, pixel_angle):
    """Colour of each ray: texture (mip level from the pixel footprint) x Lambert shading; sky gradient."""
    n = dirs.shape[0]
    colour = np.empty((n, 3), np.float32)
    length = np.sqrt(np.einsum("ij,ij->i", dirs, dirs))
    sky = surface < 0
    up = np.clip(-dirs[sky, 1] / length[sky], 0, 1).astype(np.float32)[:, None]
    colour[sky] = _SKY_HORIZON + up * (_SKY_ZENITH - _SKY_HORIZON)
    hit = np.flatnonzero(~sky)
    d, a = dirs[hit], axis[hit]
    p = origin + t[hit, None] * d
    texture, tile, tint, tu, tv, lane = _surface_params(p, surface[hit], a, boxes)
    d_axis = d[np.arange(hit.size), a]
    sign = -np.sign(d_axis)                                  # outward normal = sign * e_axis
    cosine = np.maximum(np.abs(d_axis) / length[hit], 0.3)   # |n . ray| (clipped: limits mip blur at grazing angles)
    distance = t[hit] * length[hit]
    rgb = np.empty((hit.size, 3), np.float32)
    for k in np.unique(texture):
        sel = texture == k
        pyr = textures[k]
        texels_per_m = pyr[0].shape[1] / tile[sel]
        footprint = distance[sel] * pixel_angle / cosine[sel] * texels_per_m
        level = np.clip(np.round(np.log2(np.maximum(footprint, 1))), 0, len(pyr) - 1).astype(np.int64)
        rgb[sel] = _sample(pyr, tu[sel] * texels_per_m, tv[sel] * texels_per_m, level)
    rgb[lane] = 0.95
    tint[lane] = 1.0
    light = (0.4 + 0.6 * np.maximum(sign * _LIGHT[a], 0)).astype(np.float32)
    colour[hit] = np.clip(rgb * tint * light[:, None], 0, 1)
    return colour


_RAYS = {}


def _camera_rays(k, width, height):
    """Rays K^-1 [u, v, 1] of every pixel (0-based), cached per camera."""
    key = (width, height, float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]))
    if key not in _RAYS:
        cols, rows = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
        _RAYS.clear()
        _RAYS[key] = np.stack([(cols - k[0, 2]) / k[0, 0], (rows - k[1, 2]) / k[1, 1], np.ones_like(cols)], -1).reshape(-1, 3)
    return _RAYS[key]


def _render_camera(rotation, centre, k, width, height, boxes, textures, max_t):
    """Image (H x W x 3 uint8) and camera-z depth (H x W float32, 0 = sky) of a pinhole camera."""
    # unnormalised directions, so the ray parameter t is the camera z (einsum: BLAS is slow for N x 3 @ 3 x 3)
    dirs = np.einsum("ij,kj->ik", _camera_rays(k, width, height), rotation)
    near = _box_candidates(boxes, centre, max_t * 1.8)
    t, surface, axis = _cast(centre, dirs, near, max_t, _screen_candidates(near, rotation, centre, k, width, height))
    colour = _shade(centre, dirs, t, surface, axis, near, textures, 1.0 / k[0, 0])
    depth = np.where(surface >= 0, t, 0).astype(np.float32).reshape(height, width)
    image = (colour.reshape(height, width, 3) * 255 + 0.5).astype(np.uint8)
    return image, depth


def _render_velodyne(velo_to_world, boxes, azimuth_step):
    """Velodyne scan (N x 4 float32: x, y, z in the velodyne frame, reflectance) by ray casting.

    Reflectance is a per-surface constant (the loaders ignore it)."""
    elev = np.deg2rad(np.linspace(VELO_ELEVATIONS[0], VELO_ELEVATIONS[1], 64))
    azim = np.deg2rad(np.arange(-180, 180, azimuth_step))
    el, az = np.meshgrid(elev, azim, indexing="ij")
    local = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], -1).reshape(-1, 3)
    origin = velo_to_world[:3, 3]
    dirs = np.einsum("ij,kj->ik", local, velo_to_world[:3, :3])
    near = _box_candidates(boxes, origin, MAX_RANGE)
    t, surface, axis = _cast(origin, dirs, near, MAX_RANGE, _azimuth_candidates(near, velo_to_world, azim, elev.size))
    hit = surface >= 0
    reflect = np.where(surface[hit] == 0, 0.3, near[np.maximum(surface[hit] - 1, 0), 8:11].mean(1) * 0.8)
    return np.hstack([local[hit] * t[hit, None], reflect[:, None]]).astype(np.float32)


# ------------------------------------------------------------------------------------------ output
def _save_image(path, image, img_ext):
    img = Image.fromarray(image)
    if img_ext == ".png":
        img.save(path, compress_level=1)
    else:
        img.save(path, quality=92)


def _write_drive(root, date, drive, calib, rotations, centres, boxes, textures, args, progress):
    name = drive_name(date, drive)
    ddir = os.path.join(root, date, name)
    folders = {key: os.path.join(ddir, *sub) for key, sub in {
        "img2": ("image_02", "data"), "img3": ("image_03", "data"), "velo": ("velodyne_points", "data"),
        "d2": ("depth", "image_02"), "d3": ("depth", "image_03"),
        "png": ("proj_depth", "groundtruth", "image_02")}.items()}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    w, h = calib["width"], calib["height"]
    k = intrinsics(w, h)
    # camera 0 rectified -> velodyne: X_rect = R_rect (R_velo X_velo + T_velo)
    rect_from_velo = np.eye(4)
    rect_from_velo[:3, :3] = calib["R_rect"] @ calib["R_velo"]
    rect_from_velo[:3, 3] = calib["R_rect"] @ calib["T_velo"]
    poses = []
    for i, (rot, centre) in enumerate(zip(rotations, centres)):
        world_from_rect = np.eye(4)
        world_from_rect[:3, :3], world_from_rect[:3, 3] = rot, centre
        frame = f"{i:010d}"
        for cam, offset, img_key, depth_key in ((2, CAM2_OFFSET, "img2", "d2"), (3, CAM3_OFFSET, "img3", "d3")):
            cam_centre = centre + rot @ np.array([offset, 0, 0])
            image, depth = _render_camera(rot, cam_centre, k, w, h, boxes, textures, args["max_depth"])
            _save_image(os.path.join(folders[img_key], frame + args["img_ext"]), image, args["img_ext"])
            np.save(os.path.join(folders[depth_key], frame + ".npy"), depth)
            if cam == 2:
                png = np.where(depth * 256 < 65535, np.round(depth * 256), 0).astype(np.uint16)
                Image.fromarray(png).save(os.path.join(folders["png"], frame + ".png"))
                pose = np.eye(4)
                pose[:3, :3], pose[:3, 3] = rot, cam_centre
                poses.append(pose)
        scan = _render_velodyne(world_from_rect @ rect_from_velo, boxes, args["azimuth_step"])
        scan.tofile(os.path.join(folders["velo"], frame + ".bin"))
        progress.update(1)
    first_inv = np.linalg.inv(poses[0])
    os.makedirs(os.path.join(root, "poses"), exist_ok=True)
    with open(os.path.join(root, "poses", name + ".txt"), "w") as f:
        for pose in poses:
            f.write(_fmt((first_inv @ pose)[:3]) + "\n")
    return name


def _write_splits(root, drives, frames):
    """Standard split files; see the module docstring for which frames go where."""
    train, val = [], []
    for folder in drives[:-1]:
        for i in range(1, frames - 1):
            for side in "lr":
                (val if i % 5 == 0 else train).append(f"{folder} {i} {side}")
    test = [f"{drives[-1]} {i:010d} l" for i in range(frames)]
    order = np.random.default_rng(0).permutation(len(train))   # Monodepth2's splits are shuffled
    os.makedirs(split_dir(root), exist_ok=True)
    for name, lines in (("train_files.txt", [train[i] for i in order]), ("val_files.txt", val), ("test_files.txt", test)):
        if not lines:   # e.g. val with fewer than 6 frames per drive: no file rather than an empty one
            continue
        with open(os.path.join(split_dir(root), name), "w") as f:
            f.write("\n".join(lines) + "\n")


def generate(out_dir, seed=0, num_drives=3, frames_per_drive=24, width=621, height=188, img_ext=".jpg",
             azimuth_step=0.4, max_depth=100.0, overwrite=False, progress=True):
    """Write a synthetic KITTI raw dataset to out_dir and return its description (dict).

    Deterministic for a seed. num_drives >= 2 (the last drive is the test drive), frames_per_drive >= 3.
    If out_dir already holds a dataset generated with the same settings it is reused as is; other
    contents make it an error unless overwrite=True. The folder appears atomically (built beside it,
    then renamed), so an interrupted run leaves nothing half-written.
    """
    from tqdm import tqdm
    if num_drives < 2 or frames_per_drive < 3:
        raise ValueError("need at least 2 drives (the last one is the test drive) and 3 frames per drive")
    if img_ext not in (".jpg", ".png"):
        raise ValueError(f"img_ext must be .jpg or .png, not {img_ext!r}")
    if width < 16 or height < 16:
        raise ValueError(f"image size {width} x {height} is too small (16 x 16 at least)")
    settings = {"format_version": FORMAT_VERSION, "seed": int(seed), "num_drives": int(num_drives),
                "frames_per_drive": int(frames_per_drive), "width": int(width), "height": int(height),
                "img_ext": img_ext, "azimuth_step": float(azimuth_step), "max_depth": float(max_depth)}
    out_dir = os.path.abspath(out_dir)
    info_path = os.path.join(out_dir, INFO_FILE)
    if os.path.exists(out_dir) and os.listdir(out_dir):
        if os.path.isfile(info_path) and not overwrite:
            with open(info_path) as f:
                info = json.load(f)
            if all(info.get(key) == value for key, value in settings.items()):
                info["data_path"] = out_dir
                return info
        if not overwrite:
            raise FileExistsError(f"{out_dir} already exists and was not generated with these settings; "
                                  "choose another folder or pass overwrite=True (--overwrite)")
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".synthetic_kitti_", dir=parent)
    try:
        rng = np.random.default_rng(seed)
        textures = _textures()
        dates = ["2000_01_01", "2000_01_02"]
        calibs = {date: _make_calib(rng, width, height) for date in dates}
        for date in dates:
            os.makedirs(os.path.join(tmp, date))
            _write_calib(os.path.join(tmp, date), calibs[date])
        drives = []
        bar = tqdm(total=num_drives * frames_per_drive, desc="synthetic KITTI", unit="frame", disable=not progress)
        for d in range(num_drives):
            date = dates[d % 2]
            rotations, centres = _trajectory(rng, frames_per_drive)
            boxes = _make_scene(rng, centres[-1, 2] + max_depth, len(textures))
            name = _write_drive(tmp, date, d + 1, calibs[date], rotations, centres, boxes, textures, settings, bar)
            drives.append(f"{date}/{name}")
        bar.close()
        _write_splits(tmp, drives, frames_per_drive)
        info = dict(settings, drives=drives, split_dir=SPLIT_DIR, fx=0.58 * width, fy=1.92 * height,
                    baseline=BASELINE)
        with open(os.path.join(tmp, INFO_FILE), "w") as f:
            json.dump(info, f, indent=1)
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    info["data_path"] = out_dir
    return info


def ensure(out_dir, progress=True, **settings):
    """The synthetic dataset in out_dir: reused if one is there (whatever its settings), else generated
    with `settings` (generate's keywords; defaults = the quick-start subset). Returns its info dict."""
    info_path = os.path.join(out_dir, INFO_FILE)
    if os.path.isfile(info_path):
        with open(info_path) as f:
            info = json.load(f)
        info["data_path"] = os.path.abspath(out_dir)
        return info
    return generate(out_dir, progress=progress, **settings)


def main(argv=None):
    import options

    opt = options.parse("synthetic", argv)
    try:
        info = generate(opt.out, seed=opt.seed, num_drives=opt.drives, frames_per_drive=opt.frames,
                        width=opt.width, height=opt.height, img_ext=opt.img_ext,
                        azimuth_step=opt.azimuth_step, overwrite=opt.overwrite)
    except (ValueError, FileExistsError) as e:
        sys.exit(f"synthetic.py: error: {e}")
    print(f"synthetic KITTI in {info['data_path']} ({len(info['drives'])} drives x {info['frames_per_drive']} frames, "
          f"{info['width']} x {info['height']}); splits in {split_dir(info['data_path'])}")


if __name__ == "__main__":
    main()
