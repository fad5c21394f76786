"""The synthetic street: camera constants and calibration, textures, boxes along a street, the drive's path.

World = camera 0 at frame 0 (x right, y down, z forward); the ground is the plane y = CAMERA_HEIGHT.
"""
import numpy as np

from utils.cameras.kitti_layout import NORMALISED_K

CAMERA_HEIGHT = 1.65          # metres above the ground (KITTI)
BASELINE = 0.54               # camera 2 to camera 3, metres (KITTI; the training units call it 0.1)
CAM2_OFFSET = -0.06           # camera centres along rectified camera-0 x
CAM3_OFFSET = CAM2_OFFSET + BASELINE
CAM_OFFSETS = (0.0, BASELINE, CAM2_OFFSET, CAM3_OFFSET)   # cameras 0-3 (KITTI: grey pair, colour pair)
VELO_IN_CAM = np.array([-0.004, -0.076, -0.27])   # velodyne origin in camera-0 coordinates (KITTI-like)
VELO_ELEVATIONS = (2.0, -24.8)                    # HDL-64E vertical field of view, degrees
MAX_RANGE = 120.0


def intrinsics(width, height):
    """0-based 3x3 K (float64) of the synthetic camera: KITTI's normalised K (utils.cameras.kitti_layout) x (W, H)."""
    (fx, _, cx), (_, fy, cy) = NORMALISED_K
    return np.array([[fx * width, 0, cx * width], [0, fy * height, cy * height], [0, 0, 1]])


def rot_x(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def make_calib(rng, width, height):
    """Per-date calibration: exact intrinsics, small random rectification and velodyne mount rotations."""
    deg = np.pi / 180
    r_rect = rot_x(rng.uniform(-0.3, 0.3) * deg) @ rot_y(rng.uniform(-0.3, 0.3) * deg)
    # velodyne axes (x forward, y left, z up) -> camera axes (x right, y down, z forward), slightly rotated
    axes = np.array([[0.0, -1, 0], [0, 0, -1], [1, 0, 0]])
    r_velo = rot_z(rng.uniform(-0.5, 0.5) * deg) @ rot_x(rng.uniform(-0.5, 0.5) * deg) @ axes
    t_velo = VELO_IN_CAM + rng.uniform(-0.01, 0.01, 3)
    k = intrinsics(width, height)
    k1 = k.copy()
    k1[0, 2] += 1   # KITTI's P_rect is 1-based: the devkit's "round(u) - 1" brings points back to 0-based
    k1[1, 2] += 1
    # P_rect_0c = K [I | -c_c], c_c the camera centre along camera-0 x (grey 0, 1; colour 2, 3)
    p_rect = {cam: np.hstack([k1, k1 @ np.array([[-off], [0], [0]])]) for cam, off in enumerate(CAM_OFFSETS)}
    return {"R_rect": r_rect, "R_velo": r_velo, "T_velo": t_velo, "P_rect": p_rect, "width": width, "height": height}


def textures():
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


def make_scene(rng, length, num_textures):
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


def trajectory(rng, frames, velocities=False):
    """Camera-0 poses (R, centre) along a gently weaving path: lateral offset a sin(w t + phi), heading its tangent.

    velocities=True also returns the centre's world velocity per frame (metres per frame, the exact
    derivative of the path at each frame), for the oxts records; the random draws are the same."""
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
    rotations = [rot_y(h) @ rot_x(p) for h, p in zip(heading, pitch)]
    if velocities:
        return rotations, centres, np.stack([dx, np.zeros_like(t), np.full_like(t, speed)], 1)
    return rotations, centres
