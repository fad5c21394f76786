"""KITTI's velodyne scans as depth maps in a camera (docs/MLDA_NET.md §8, §9); the calibration they are
projected with is read by utils/cameras/kitti_calibration.py.

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

from utils.cameras.kitti_calibration import read_calib_dir


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
