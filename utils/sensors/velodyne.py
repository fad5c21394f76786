"""KITTI raw calibration and velodyne helpers (spec sections 8 and 9).

Ground truth from a velodyne scan, devkit convention:
    P = P_rect_0c · R_rect_00 · [R|T]_velo_to_cam        (3 x 4, c = camera 2 or 3)
    keep points with velodyne x >= 0; (u, v, z) = P·[x y z 1]; u /= z, v /= z
    column = round(u) - 1, row = round(v) - 1             (KITTI's P is 1-based)
    keep 0 <= column < W, 0 <= row < H, (W, H) = S_rect_02
    depth[row, column] = z (camera) or x (velodyne forward distance, vel_depth=True);
    the nearest point wins where several land on one pixel; negative values become 0.
"""
import os

import numpy as np

from utils.cameras.kitti_layout import CALIB_FILES

_FLOAT_CHARS = set("0123456789.e+- \t")


def read_calib_file(path):
    """Read a KITTI calibration text file ("key: v1 v2 ...") into a dict.

    Numeric values become float64 arrays; anything else (e.g. calib_time) stays a string.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"missing KITTI calibration file: {path}")
    data = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            if ":" not in line:
                raise ValueError(f"{path}:{number}: not a 'key: values' calibration line: {line.strip()!r}")
            key, value = line.split(":", 1)
            value = value.strip()
            data[key.strip()] = value
            if value and _FLOAT_CHARS.issuperset(value):
                try:
                    data[key.strip()] = np.array([float(v) for v in value.split()])
                except ValueError:
                    pass
    return data


def load_velodyne_points(filename):
    """Velodyne scan as N x 4 float32 homogeneous points [x, y, z, 1] (reflectance replaced by 1)."""
    if not os.path.isfile(filename):
        raise FileNotFoundError(f"missing velodyne scan: {filename}")
    raw = np.fromfile(filename, dtype=np.float32)
    if raw.size % 4:
        raise ValueError(f"{filename}: size is not a multiple of 4 float32 (x, y, z, reflectance); truncated file?")
    points = raw.reshape(-1, 4)
    points[:, 3] = 1.0
    return points


def _calib_entry(calib, key, size, path):
    if key not in calib or isinstance(calib[key], str) or calib[key].size != size:
        raise ValueError(f"{path}: missing or malformed entry '{key}' ({size} numbers expected)")
    return calib[key]


def read_calib_dir(calib_dir):
    """Parse the two files generate_depth_map needs once, so a dataset can cache the result.

    Returns dict with "velo_to_cam" (4x4), "R_rect_00" (4x4), "P_rect_02"/"P_rect_03" (3x4),
    "im_shape" (H, W) from S_rect_02.
    """
    c2c_path, v2c_path = (os.path.join(calib_dir, name) for name in CALIB_FILES)
    cam2cam = read_calib_file(c2c_path)
    velo2cam = read_calib_file(v2c_path)
    velo_to_cam = np.eye(4)
    velo_to_cam[:3, :3] = _calib_entry(velo2cam, "R", 9, v2c_path).reshape(3, 3)
    velo_to_cam[:3, 3] = _calib_entry(velo2cam, "T", 3, v2c_path)
    r_rect = np.eye(4)
    r_rect[:3, :3] = _calib_entry(cam2cam, "R_rect_00", 9, c2c_path).reshape(3, 3)
    out = {"velo_to_cam": velo_to_cam, "R_rect_00": r_rect,
           "im_shape": tuple(int(v) for v in _calib_entry(cam2cam, "S_rect_02", 2, c2c_path)[::-1])}
    for cam in (2, 3):
        key = f"P_rect_0{cam}"
        if key in cam2cam:
            out[key] = _calib_entry(cam2cam, key, 12, c2c_path).reshape(3, 4)
    return out


def velo_to_depth_map(velo, calib, cam=2, vel_depth=False):
    """Project homogeneous velodyne points (N x 4) with a parsed calibration (read_calib_dir).

    Returns an H x W float32 map, 0 where no point landed (see the module docstring).
    """
    key = f"P_rect_0{cam}"
    if key not in calib:
        raise ValueError(f"calibration has no {key} (cam must be 2 or 3)")
    p_velo_to_im = calib[key] @ calib["R_rect_00"] @ calib["velo_to_cam"]
    h, w = calib["im_shape"]
    velo = velo[velo[:, 0] >= 0]
    pts = np.einsum("ij,kj->ik", velo.astype(np.float64), p_velo_to_im)   # einsum: BLAS is slow for N x 4 @ 4 x 3
    # dividing by z first, then choosing what to store, as the devkit does
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.round(pts[:, 0] / pts[:, 2]) - 1
        v = np.round(pts[:, 1] / pts[:, 2]) - 1
    depth = velo[:, 0].astype(np.float64) if vel_depth else pts[:, 2]
    keep = (u >= 0) & (v >= 0) & (u < w) & (v < h)
    index = v[keep].astype(np.int64) * w + u[keep].astype(np.int64)
    depth = depth[keep]
    # nearest point wins: sort by (pixel, depth) and keep the first of each pixel
    order = np.lexsort((depth, index))
    index, depth = index[order], depth[order]
    first = np.ones(index.size, bool)
    first[1:] = index[1:] != index[:-1]
    out = np.zeros(h * w, np.float32)
    out[index[first]] = depth[first]
    out[out < 0] = 0
    return out.reshape(h, w)


def generate_depth_map(calib_dir, velo_filename, cam=2, vel_depth=False):
    """Sparse depth map of camera `cam` (2 or 3) from a velodyne scan, at the S_rect_02 size.

    vel_depth=False stores camera z (training `depth_gt`); True stores velodyne x (evaluation).
    """
    return velo_to_depth_map(load_velodyne_points(velo_filename), read_calib_dir(calib_dir), cam, vel_depth)
