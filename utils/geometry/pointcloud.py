"""Coloured point clouds: depth map + pinhole camera -> 3-D points -> binary PLY. Free of Paddle.

The camera is (fx, fy, cx, cy) in pixels of the depth map (utils/cameras/camera.py makes them from a
camera.json at any image size). Pixel (u, v) is the column and row index (0 .. W-1, 0 .. H-1), the
convention of the networks' BackprojectDepth, so KITTI's normalised cx = 0.5 is 0.5 W.

    back_project(depth, fx, fy, cx, cy)         H x W x 3 points: X = (u - cx) Z / fx, Y = (v - cy) Z / fy
    cloud(depth, rgb, intrinsics)               (N x 3 float32 points, N x 3 uint8 colours), valid depth only
    write_ply(path, points, colours)            binary little-endian PLY, written atomically
"""
import numpy as np

from utils.io.fileio import atomic_write


def back_project(depth, fx, fy, cx, cy):
    """H x W depth (along the optical axis) -> H x W x 3 camera coordinates:
    X = (u - cx) Z / fx, Y = (v - cy) Z / fy, Z = depth (x right, y down, z forward, as OpenCV)."""
    z = np.asarray(depth, dtype=np.float64)
    v, u = np.mgrid[0:z.shape[0], 0:z.shape[1]]
    return np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=-1)


def cloud(depth, rgb, intrinsics):
    """(N x 3 float32 points, N x 3 uint8 colours) of the pixels with a finite depth > 0;
    `rgb` H x W x 3 uint8 at the depth's size, `intrinsics` (fx, fy, cx, cy) at that size."""
    depth = np.asarray(depth)
    rgb = np.asarray(rgb)
    if rgb.shape[:2] != depth.shape:
        raise ValueError(f"colours of size {rgb.shape[:2]} for a depth map of size {depth.shape}")
    valid = np.isfinite(depth) & (depth > 0)
    points = back_project(depth, *intrinsics)[valid].astype(np.float32)
    return points, rgb[valid].astype(np.uint8)


PLY_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])


def write_ply(path, points, colours):
    """Binary little-endian PLY of N vertices (x y z float32, red green blue uchar), written atomically."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    colours = np.asarray(colours, dtype=np.uint8).reshape(-1, 3)
    vertices = np.empty(len(points), PLY_DTYPE)
    for i, name in enumerate("xyz"):
        vertices[name] = points[:, i]
    for i, name in enumerate(("red", "green", "blue")):
        vertices[name] = colours[:, i]
    header = ("ply\nformat binary_little_endian 1.0\ncomment MLDA-Net depth point cloud\n"
              f"element vertex {len(vertices)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n")

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(header.encode("ascii"))
            f.write(vertices.tobytes())
    atomic_write(path, write)
