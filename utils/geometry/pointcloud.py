"""Cameras and coloured point clouds: depth map + pinhole camera -> 3-D points -> binary PLY. Free of Paddle.

A camera is a dict {"fx", "fy", "cx", "cy", "width", "height"} in pixels of images of that width x
height (camera.json, the folder dataset's format: utils/cameras/folder_layout.py; "baseline" is not needed
here). Pixel (u, v) is the column and row index (0 .. W-1, 0 .. H-1), the convention of the networks' BackprojectDepth, so KITTI's normalised
cx = 0.5 is 0.5 W.

    read_camera(path) -> camera                 camera.json, checked (CameraError, one line)
    camera_from_matrix(K, width, height)        a 3 x 3 / 4 x 4 pixel K as a camera
    scale_camera(camera, width, height)         (fx, fy, cx, cy) for a resized copy of the same aspect
    back_project(depth, fx, fy, cx, cy)         H x W x 3 points: X = (u - cx) Z / fx, Y = (v - cy) Z / fy
    cloud(depth, rgb, intrinsics)               (N x 3 float32 points, N x 3 uint8 colours), valid depth only
    write_ply(path, points, colours)            binary little-endian PLY, written atomically
"""
import os

import numpy as np

from utils.cameras import folder_layout
from utils.io.fileio import atomic_write

CAMERA_KEYS = ("fx", "fy", "cx", "cy", "width", "height")
# Aspect ratios closer than this (relative) are taken as the same camera resized: a resize rounds
# each side to whole pixels, e.g. 1242 x 375 -> 621 x 188 changes the ratio by 0.3 %.
ASPECT_TOLERANCE = 0.01


class CameraError(ValueError):
    """A camera.json that cannot be used, or an image it does not fit; the message is one line."""


def check_camera(camera, source):
    """`camera` (a mapping) as a camera dict of floats, or CameraError naming `source`."""
    if not isinstance(camera, dict):
        raise CameraError(f"{source}: expected a JSON object with {', '.join(CAMERA_KEYS)}")
    missing = [k for k in CAMERA_KEYS if k not in camera]
    if missing:
        raise CameraError(f"{source}: missing {', '.join(missing)} (a camera needs {', '.join(CAMERA_KEYS)} "
                          "in pixels of its images)")
    try:
        out = {k: float(camera[k]) for k in CAMERA_KEYS}
    except (TypeError, ValueError):
        raise CameraError(f"{source}: {', '.join(CAMERA_KEYS)} must be numbers") from None
    bad = [k for k in ("fx", "fy", "width", "height") if not out[k] > 0]
    if bad:
        raise CameraError(f"{source}: {', '.join(bad)} must be > 0")
    return out


def read_camera(path):
    """camera.json at `path` -> camera dict, read by the folder dataset's own reader
    (utils.cameras.folder_layout.read_camera: the same file, the same checks). Raises CameraError (one line)."""
    try:
        return folder_layout.read_camera(os.fspath(path))
    except folder_layout.LayoutError as e:
        raise CameraError(str(e)) from None


def camera_from_matrix(k, width, height):
    """Pixel intrinsics K (3 x 3 or 4 x 4) of width x height images as a camera dict."""
    k = np.asarray(k, dtype=np.float64)
    return {"fx": float(k[0, 0]), "fy": float(k[1, 1]), "cx": float(k[0, 2]), "cy": float(k[1, 2]),
            "width": float(width), "height": float(height)}


def describe(camera):
    return (f"fx {camera['fx']:g}, fy {camera['fy']:g}, cx {camera['cx']:g}, cy {camera['cy']:g} "
            f"at {camera['width']:g} x {camera['height']:g}")


def scale_camera(camera, width, height, source="the camera"):
    """(fx, fy, cx, cy) of `camera` for width x height images: a resized copy scales x by
    width / camera width and y by height / camera height. Refuses (CameraError) an image whose aspect
    ratio differs by more than ASPECT_TOLERANCE: a crop or another camera, where scaling would be wrong."""
    if abs((width / camera["width"]) / (height / camera["height"]) - 1) > ASPECT_TOLERANCE:
        raise CameraError(f"image of {width} x {height} does not match {source} ({camera['width']:g} x "
                          f"{camera['height']:g}, another aspect ratio): give the camera of these images "
                          "(--camera camera.json with their width, height and intrinsics)")
    k = folder_layout.intrinsics(camera, width, height)
    return float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])


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


class CameraChoice:
    """The camera of a prediction run: `camera` (dict), `source` (what to tell the user, once) and
    `intrinsics(width, height)` -> (fx, fy, cx, cy) at an image's size (CameraError if it cannot fit).

    Order: the user's camera (a camera.json path or a dict), else the weights' training camera
    (opt.json / deploy.json "camera", recorded by the folder dataset), else KITTI's normalised K."""

    def __init__(self, camera=None, trained_camera=None):
        from utils.cameras.kitti_layout import intrinsics as kitti_intrinsics

        if isinstance(camera, (str, os.PathLike)):
            self.camera, self.label = read_camera(camera), f"camera {camera}"
            self.source = f"point clouds: camera {camera} ({describe(self.camera)}), scaled to each image"
        elif camera is not None:
            self.camera, self.label = check_camera(dict(camera), "camera"), "the given camera"
            self.source = f"point clouds: the given camera ({describe(self.camera)}), scaled to each image"
        elif trained_camera is not None:
            self.label = "the weights' training camera (opt.json camera)"
            self.camera = check_camera(dict(trained_camera), self.label)
            self.source = (f"point clouds: the training camera ({describe(self.camera)}) scaled to each image; "
                           "pass --camera camera.json for another camera")
        else:
            self.camera, self.label = camera_from_matrix(kitti_intrinsics(1.0, 1.0), 1.0, 1.0), "KITTI's camera"
            self.source = ("point clouds: KITTI's camera (the weights record no other; fx 0.58 W, fy 1.92 H, "
                           "centred) scaled to each image; pass --camera camera.json for your camera")
        self.normalised = trained_camera is None and camera is None  # KITTI's: any aspect ratio

    def intrinsics(self, width, height):
        if self.normalised:
            c = self.camera
            return c["fx"] * width, c["fy"] * height, c["cx"] * width, c["cy"] * height
        return scale_camera(self.camera, width, height, self.label)

    def points(self, depth, rgb):
        """cloud() of a depth map and its H x W x 3 uint8 colours with this camera at their size."""
        h, w = np.asarray(depth).shape
        return cloud(depth, rgb, self.intrinsics(w, h))
