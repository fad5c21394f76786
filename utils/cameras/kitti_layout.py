"""Everything this project knows about KITTI raw's folders and camera, in one Paddle-free place.

    <data_path>/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt
    <data_path>/<date>/<date>_drive_<nnnn>_sync/image_0{2,3}/data/<frame:010d>.{jpg,png}
    <data_path>/<date>/<date>_drive_<nnnn>_sync/velodyne_points/data/<frame:010d>.bin
    <data_path>/<date>/<date>_drive_<nnnn>_sync/proj_depth/groundtruth/image_0{2,3}/<frame:010d>.png
    <hint_path>/<date>/<date>_drive_<nnnn>_sync/image_0{2,3}/<frame:010d>.npy     (Depth Hints)

A split line is '<date>/<date>_drive_<nnnn>_sync <frame> <l|r>'. Another dataset layout (one's own
camera) sits beside this module as a module with the same names: the datasets read the split-line
format and the hint folder through their `layout` attribute (datasets.mono.MonoDataset.layout), and the
scripts through the module they import. Paddle-free: precompute_depth_hints.py, export_gt_depth.py and
deployment use it without loading the network's framework.

Evaluation (eval_rules, gt_source) follows Monodepth2's evaluate_depth.py per split name.
"""
import os

import numpy as np

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPLITS_ROOT = os.path.join(PROJECT_ROOT, "splits")

SIDE_TO_CAM = {"l": 2, "r": 3}
OTHER_SIDE = {"l": "r", "r": "l"}
IMAGE_EXTS = (".jpg", ".png")
CALIB_FILES = ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt")
SPLIT_LINE_FORMAT = "'<date>/<date>_drive_<nnnn>_sync <frame> <l|r>'"

# The camera, normalised by image size: fx = 0.58 W, fy = 1.92 H, principal point at the centre.
NORMALISED_K = ((0.58, 0.0, 0.5), (0.0, 1.92, 0.5))
STEREO_BASELINE = 0.1       # training units of the stereo transform; KITTI's real baseline is 0.54 m
STEREO_SCALE_FACTOR = 5.4   # 0.54 m / 0.1: training units -> metres for stereo-trained weights
HINT_INVALID_PENALTY = 1000.0  # added to the photometric error of a missing (zero) depth hint
NATIVE_SIZE = (375, 1242)   # (h, w) of most KITTI raw images; ground truth is stacked at this size


class LayoutError(ValueError):
    """A split file or folder that does not follow the layout; the message says what and where.
    (datasets.DataError is this class: one error type for every data layout.)"""


class MissingFileError(LayoutError, FileNotFoundError):
    """A file the layout needs is not there; the message names it."""


# ------------------------------------------------------------------------------------ the camera
def intrinsics(width, height):
    """KITTI's normalised intrinsics scaled to a width x height image: 4 x 4 float32."""
    k = np.eye(4, dtype=np.float32)
    k[:2, :3] = np.array(NORMALISED_K, dtype=np.float32)
    k[0, :] *= width
    k[1, :] *= height
    return k


def stereo_T(side, do_flip=False):
    """Target -> partner camera transform of the training units: t_x = -0.1 for a left image,
    +0.1 for a right one, sign swapped when the pair is mirrored."""
    t = np.eye(4, dtype=np.float32)
    t[0, 3] = (-1 if side == "l" else 1) * (-1 if do_flip else 1) * STEREO_BASELINE
    return t


# ------------------------------------------------------------------------------------ split files
def parse_split_line(line, where="split line", line_format=SPLIT_LINE_FORMAT):
    """'<folder> <frame> <l|r>' -> (folder, frame index, side); LayoutError naming `where` otherwise.
    Every layout's split lines have this shape; `line_format` names its first field in the message."""
    parts = line.split()
    if len(parts) != 3 or parts[2] not in SIDE_TO_CAM or not parts[1].isdigit():
        raise LayoutError(f"{where}: {line.strip()!r} is not a split line {line_format}")
    return parts[0], int(parts[1]), parts[2]


def read_split(path, line_format=SPLIT_LINE_FORMAT):
    """Non-empty lines of a split file, each checked (LayoutError naming the file and line number)."""
    if not os.path.isfile(path):
        raise MissingFileError(f"missing split file: {path}")
    with open(path) as f:
        lines = [line.strip() for line in f]
    for number, line in enumerate(lines, 1):
        if line:
            parse_split_line(line, f"{path}:{number}", line_format)
    return [line for line in lines if line]


def split_folder(split):
    """A split name (a folder under the project's splits/) or the path of a folder."""
    return split if os.path.isdir(split) else os.path.join(SPLITS_ROOT, split)


# ------------------------------------------------------------------------------------ evaluation rules
def eval_rules(split):
    """How a split's ground truth is masked (Monodepth2's evaluate_depth): `eigen` keeps the pixels
    with 1e-3 < gt < 80 inside the Garg crop; every other split (eigen_benchmark's improved ground
    truth included) keeps every pixel with gt > 0. Predictions are clipped to [1e-3, 80] in both."""
    name = os.path.basename(os.path.normpath(split))
    return {"garg_crop": name == "eigen", "cap_gt": name == "eigen", "min_depth": 1e-3, "max_depth": 80.0}


def gt_source(split):
    """Where a split's evaluation ground truth comes from by default: KITTI's annotated depth maps
    for eigen_benchmark (Uhrig et al.'s improved ground truth), the velodyne scans otherwise."""
    return "annotated" if os.path.basename(os.path.normpath(split)) == "eigen_benchmark" else "velodyne"


# ------------------------------------------------------------------------------------ file paths
def image_path(data_path, folder, frame, side, ext=".jpg"):
    return os.path.join(data_path, folder, f"image_0{SIDE_TO_CAM[side]}", "data", f"{frame:010d}{ext}")


def velodyne_path(data_path, folder, frame):
    return os.path.join(data_path, folder, "velodyne_points", "data", f"{frame:010d}.bin")


def annotated_depth_path(data_path, folder, frame, side):
    return os.path.join(data_path, folder, "proj_depth", "groundtruth", f"image_0{SIDE_TO_CAM[side]}",
                        f"{frame:010d}.png")


def hint_path(hint_root, folder, frame, side):
    return os.path.join(hint_root, folder, f"image_0{SIDE_TO_CAM[side]}", f"{frame:010d}.npy")


def default_hint_root(data_path):
    """Where precompute_depth_hints.py writes and the loader reads hints unless told otherwise: <data_path>/
    depth_hints, as Depth Hints, for every layout (utils/cameras/folder_layout.py uses this one; options.parse
    records it in opt.json)."""
    return os.path.join(data_path, "depth_hints")


def calib_dir(data_path, folder):
    """<data_path>/<date>: where calib_cam_to_cam.txt and calib_velo_to_cam.txt are."""
    return os.path.join(data_path, folder.split("/")[0])


def find_image(data_path, folder, frame, side, ext=".jpg", exists=os.path.isfile):
    """The frame's image in `ext`, else in the other extension; None if neither exists."""
    for e in (ext,) + tuple(x for x in IMAGE_EXTS if x != ext):
        path = image_path(data_path, folder, frame, side, e)
        if exists(path):
            return path
    return None


def camera_of_image(path):
    """2 or 3: the KITTI camera an image path belongs to (image_03 -> 3, anything else -> 2)."""
    return 3 if "image_03" in os.path.abspath(path).split(os.sep) else 2
