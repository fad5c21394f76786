"""Pinhole cameras, Paddle-free: the one reader and checker of camera.json, and intrinsics at any image size.

A camera is a dict {"fx", "fy", "cx", "cy", "width", "height", "baseline"}: focal lengths and principal
point in pixels of images of width x height, and for stereo the distance between the left and right
camera centres in metres (None when absent). It is the format of camera.json (the folder dataset's,
utils/cameras/folder_layout.py; predict.py --camera) and of opt.json's "camera".

    check_camera(mapping, source) -> camera      THE check of a camera, wherever it comes from (CameraError)
    read_camera(path) -> camera                  camera.json, checked (CameraError, one line naming the file)
    camera_from_matrix(K, width, height)         a 3 x 3 / 4 x 4 pixel K as a camera
    intrinsics(camera, width, height, do_flip)   4 x 4 K for the images resized to width x height
    scale_camera(camera, width, height)          (fx, fy, cx, cy) there, refusing another aspect ratio
    CameraChoice(camera, trained_camera)         the camera of a prediction run: the user's, the weights', KITTI's

Pixel coordinates are the column and row indices of the pixel centres, u = 0 .. W-1 and v = 0 .. H-1:
the convention of the networks' geometry (networks.layers.BackprojectDepth back-projects the pixel grid
np.arange(W); Project3D's grid_sample with align_corners=True puts -1 and +1 on the centres of the first
and last pixel) and of OpenCV's calibration. Resizing to W x H scales x by W / width and y by H / height
(fx' = fx W / width, cx' = cx W / width, ...). Mirroring the image left-right sends column u to W - 1 - u,
so the mirrored camera has cx'' = W - 1 - cx': then back-projecting the mirrored image gives exactly the
mirror (X -> -X) of the original's points (tests/test_camera.py, with an off-centre camera). W - cx'' would
be the mirror for coordinates whose pixel centres sit at u + 1/2, which this geometry does not use.
KITTI's training camera is the exception: Monodepth2's normalised K (cx = 0.5 W) for flipped samples too
(datasets.kitti.KITTIRAWDataset.sample_K), as the published models were trained.
"""
import json
import os

import numpy as np

from utils.cameras.kitti_layout import LayoutError, MissingFileError

CAMERA_KEYS = ("fx", "fy", "cx", "cy", "width", "height")
CAMERA_EXAMPLE = '{"fx": 500, "fy": 500, "cx": 320, "cy": 240, "width": 640, "height": 480, "baseline": 0.12}'
# Aspect ratios closer than this (relative) are taken as the same camera resized: a resize rounds
# each side to whole pixels, e.g. 1242 x 375 -> 621 x 188 changes the ratio by 0.3 %.
ASPECT_TOLERANCE = 0.01


class CameraError(LayoutError):
    """A camera that cannot be used, or an image it does not fit; the message is one line. A LayoutError,
    so that a dataset's caller catching datasets.DataError catches it too."""


class MissingCameraError(CameraError, MissingFileError):
    """camera.json is not there."""


def check_camera(camera, source, fix=None):
    """`camera` (a mapping: parsed camera.json, opt.json's "camera", a dict from the caller) as a camera dict:
    fx, fy, cx, cy floats, width and height ints, baseline a float or None; fx, fy, width, height and a
    given baseline positive, everything finite. CameraError naming `source` (and `fix`, how to mend it)."""
    fix = fix or f"a camera needs {', '.join(CAMERA_KEYS)} in pixels of its images, e.g. {CAMERA_EXAMPLE}"
    if not isinstance(camera, dict):
        raise CameraError(f"{source}: not a JSON object: {fix}")
    missing = [k for k in CAMERA_KEYS if k not in camera]
    if missing:
        raise CameraError(f"{source}: missing {', '.join(missing)}: {fix}")
    try:
        out = {k: float(camera[k]) for k in ("fx", "fy", "cx", "cy")}
        size = {k: float(camera[k]) for k in ("width", "height")}
        baseline = camera.get("baseline")
        out["baseline"] = None if baseline is None else float(baseline)
    except (TypeError, ValueError):
        raise CameraError(f"{source}: fx, fy, cx, cy, width, height and baseline must be numbers: {fix}") from None
    if not all(np.isfinite(v) for v in list(out.values()) + list(size.values()) if v is not None):
        raise CameraError(f"{source}: every value must be finite: {fix}")
    if not all(v.is_integer() for v in size.values()):
        raise CameraError(f"{source}: width and height must be whole numbers of pixels: {fix}")
    out.update(width=int(size["width"]), height=int(size["height"]))
    bad = [k for k in ("fx", "fy", "width", "height") if not out[k] > 0]
    if out["baseline"] is not None and not out["baseline"] > 0:
        bad.append("baseline")
    if bad:
        raise CameraError(f"{source}: {', '.join(bad)} must be > 0: {fix}")
    return out


def read_camera(path):
    """camera.json at `path` -> camera dict (check_camera). MissingCameraError / CameraError (one line
    naming the file and the fix) when missing or invalid."""
    path = os.fspath(path)
    fix = f"write it as {CAMERA_EXAMPLE} (pixels of the stored images; baseline in metres, for stereo)"
    if not os.path.isfile(path):
        raise MissingCameraError(f"missing camera file {path}: {fix}")
    try:
        with open(path) as f:
            raw = json.load(f)
    except (OSError, ValueError) as e:
        raise CameraError(f"{path}: not readable JSON ({str(e).splitlines()[0]}): {fix}") from None
    return check_camera(raw, path, fix)


def camera_from_matrix(k, width, height):
    """Pixel intrinsics K (3 x 3 or 4 x 4) of width x height images as a camera dict."""
    k = np.asarray(k, dtype=np.float64)
    return {"fx": float(k[0, 0]), "fy": float(k[1, 1]), "cx": float(k[0, 2]), "cy": float(k[1, 2]),
            "width": width, "height": height, "baseline": None}


def describe(camera):
    return (f"fx {camera['fx']:g}, fy {camera['fy']:g}, cx {camera['cx']:g}, cy {camera['cy']:g} "
            f"at {camera['width']:g} x {camera['height']:g}")


def intrinsics(camera, width, height, do_flip=False):
    """4 x 4 float32 K of `camera` for its images resized to width x height, and mirrored left-right
    when do_flip (cx -> width - 1 - cx; module docstring)."""
    sx, sy = width / camera["width"], height / camera["height"]
    k = np.eye(4, dtype=np.float32)
    k[0, 0], k[0, 2] = camera["fx"] * sx, camera["cx"] * sx
    k[1, 1], k[1, 2] = camera["fy"] * sy, camera["cy"] * sy
    if do_flip:
        k[0, 2] = width - 1 - k[0, 2]
    return k


def scale_camera(camera, width, height, source="the camera"):
    """(fx, fy, cx, cy) of `camera` for width x height images (intrinsics). Refuses (CameraError) an image
    whose aspect ratio differs by more than ASPECT_TOLERANCE: a crop or another camera, where scaling would
    be wrong."""
    if abs((width / camera["width"]) / (height / camera["height"]) - 1) > ASPECT_TOLERANCE:
        raise CameraError(f"image of {width} x {height} does not match {source} ({camera['width']:g} x "
                          f"{camera['height']:g}, another aspect ratio): give the camera of these images "
                          "(--camera camera.json with their width, height and intrinsics)")
    k = intrinsics(camera, width, height)
    return float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])


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
