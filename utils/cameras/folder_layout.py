"""One's own image sequences and camera ("--dataset folder"), Paddle-free, beside utils/cameras/kitti_layout.py.

    ROOT/camera.json                      default camera of every sequence
    ROOT/<sequence>/camera.json           optional: this sequence's own camera
    ROOT/<sequence>/left/<frame>.<ext>    frames (.jpg/.jpeg/.png), ordered by natural sort of their names
    ROOT/<sequence>/right/<frame>.<ext>   optional: the rectified stereo partner, same names
    ROOT/<sequence>/depth/<frame>.npy     optional depth of the left frame in metres (0 = no value), dense or
                                          sparse; or <frame>.png as uint16 metres x 256 (KITTI's convention)
    ROOT/<sequence>/poses.txt             optional camera poses of the left frames, for the temporal alignment
                                          error: line i = frame i, the 12 numbers of the row-major 3 x 4
                                          camera-to-world matrix [R | t] (x right, y down, z forward; any world
                                          frame, metres); read by utils/cameras/poses.py, see docs/video.md
    ROOT/splits/{train,val,test}_files.txt  optional; lines "<sequence> <frame index> <l|r>"

A frame index is the frame's position (from 0) in the natural sort of left/ ("2.png" before "10.png").
camera.json: {"fx", "fy", "cx", "cy"} in pixels of the stored images, "width", "height" of those images,
and for stereo "baseline" (metres between the left and right camera centres), read and checked by
utils/cameras/camera.py, which also gives the intrinsics at the network size (the image is resized, not
cropped). Every image must have exactly that width and height: a resized copy with a stale camera.json is
refused (LayoutError).
The stereo transform (target -> partner camera) is t_x = -baseline for a left image, +baseline for a right
one, sign swapped when mirrored: KITTI's convention (kitti_layout.stereo_T) with the real baseline in
metres instead of KITTI's 0.1 training units, so stereo-trained weights predict metres directly.

Split rule when ROOT/splits/train_files.txt is absent (make_splits; written by ensure_splits to
ROOT/splits atomically, so that test.py and the user see and can edit them):
  * 3 or more sequences: the last (natural order) is the test sequence, the one before it the
    validation sequence, the others train.
  * 2 sequences: the last is the test sequence; the last k frames of the first are validation.
  * 1 sequence: its last k frames are test, the k before them validation.
  (k = ceil(10 %) of the sequence's frames, at least 1; a val part needs 3 frames for one val line.)
  Train and val lines are the frames whose neighbours (-1, +1) lie in the same part (so no training
  sample sees a held-out frame), the left side, and the right side too where right/ exists; test
  lines are every frame of the test part, left side. A val part too short for a frame with both
  neighbours gives no val file.
"""
import functools
import math
import os
import re

import numpy as np

from utils.cameras import kitti_layout
from utils.cameras.camera import read_camera
from utils.cameras.kitti_layout import LayoutError, MissingFileError  # noqa: F401 (one error type for every layout)
from utils.cameras.kitti_layout import default_hint_root  # noqa: F401 (the same hint folder for every layout)
from utils.io.fileio import atomic_write_text

CAMERA_FILE = "camera.json"
POSES_FILE = "poses.txt"
SPLITS_DIR = "splits"
SPLIT_NAMES = ("train", "val", "test")
IMAGE_EXTS = (".jpg", ".jpeg", ".png")
SIDE_FOLDER = {"l": "left", "r": "right"}
OTHER_SIDE = {"l": "r", "r": "l"}
HELD_OUT_SHARE = 0.1          # of one sequence's frames, for val and for test (fewer than 3 sequences)
SPLIT_LINE_FORMAT = "'<sequence> <frame index> <l|r>'"


def natural_key(name):
    """Sort key: digit runs compare as numbers ('frame2' < 'frame10')."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


# ------------------------------------------------------------------------------------ the camera
def camera_path(root, sequence=None):
    """The camera file that applies: the sequence's own if it has one, else ROOT/camera.json."""
    if sequence is not None:
        own = os.path.join(root, sequence, CAMERA_FILE)
        if os.path.isfile(own):
            return own
    return os.path.join(root, CAMERA_FILE)


def camera_of(root, sequence=None):
    return read_camera(camera_path(root, sequence))


def check_image_size(path, size, camera_file):
    """LayoutError when an image's (width, height) `size` differs from the camera's (a resized copy)."""
    cam = read_camera(camera_file) if isinstance(camera_file, str) else camera_file
    if tuple(size) != (cam["width"], cam["height"]):
        name = camera_file if isinstance(camera_file, str) else "its camera.json"
        raise LayoutError(f"{path} is {size[0]} x {size[1]} but {name} describes {cam['width']} x {cam['height']} "
                          f"images: write the camera of the stored images (scale fx, cx by the width ratio and "
                          f"fy, cy by the height ratio) or store the images at the calibrated size")


def image_size(path):
    """(width, height) from the file's header (PIL reads no pixels)."""
    from PIL import Image
    with Image.open(path) as img:
        return img.size


def stereo_T(side, do_flip, baseline):
    """Target -> partner camera transform in metres: t_x = -baseline (left image), +baseline (right),
    sign swapped when the pair is mirrored."""
    t = np.eye(4, dtype=np.float32)
    t[0, 3] = (-1 if side == "l" else 1) * (-1 if do_flip else 1) * baseline
    return t


# ------------------------------------------------------------------------------------ folders and files
def sequences(root):
    """Sequence folder names (those with a left/ folder), in natural order."""
    if not os.path.isdir(root):
        raise MissingFileError(f"--data_path {root}: no such folder")
    return sorted((d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d, SIDE_FOLDER["l"]))),
                  key=natural_key)


def frame_names(root, sequence, side="l"):
    """File names of a sequence's images of one side (.jpg/.jpeg/.png), in natural order; [] without the folder."""
    folder = os.path.join(root, sequence, SIDE_FOLDER[side])
    try:
        mtime = os.stat(folder).st_mtime_ns
    except OSError:
        return []
    return list(_listing(folder, mtime))


@functools.lru_cache(maxsize=32)
def _listing(folder, mtime):
    """A folder's sorted image names, cached until the folder changes (per-line callers list it once)."""
    return tuple(sorted((n for n in os.listdir(folder) if os.path.splitext(n)[1].lower() in IMAGE_EXTS),
                        key=natural_key))


def image_path(root, sequence, name, side):
    return os.path.join(root, sequence, SIDE_FOLDER[side], name)


def depth_path(root, sequence, name, exists=os.path.isfile):
    """ROOT/<sequence>/depth/<stem>.npy, else .png; None when neither exists."""
    stem = os.path.splitext(name)[0]
    for ext in (".npy", ".png"):
        path = os.path.join(root, sequence, "depth", stem + ext)
        if exists(path):
            return path
    return None


def read_depth(path):
    """Depth in metres (float32, 0 = no value): .npy as stored, .png as uint16 metres x 256."""
    if path.endswith(".npy"):
        depth = np.load(path).astype(np.float32)
        return depth[0] if depth.ndim == 3 else depth
    from PIL import Image
    with Image.open(path) as img:
        return np.asarray(img, dtype=np.float32) / 256.0


def poses_path(root, sequence):
    """ROOT/<sequence>/poses.txt (module docstring)."""
    return os.path.join(root, sequence, POSES_FILE)


def hint_path(hint_root, sequence, name, side):
    return os.path.join(hint_root, sequence, SIDE_FOLDER[side], os.path.splitext(name)[0] + ".npy")


# ------------------------------------------------------------------------------------ split files
def parse_split_line(line, where="split line"):
    """'<sequence> <frame index> <l|r>' -> (sequence, index, side); LayoutError naming `where` otherwise."""
    return kitti_layout.parse_split_line(line, where, SPLIT_LINE_FORMAT)


def read_split(path):
    """Non-empty lines of a split file, each checked (LayoutError naming the file and line number)."""
    return kitti_layout.read_split(path, SPLIT_LINE_FORMAT)


def _inner(start, stop):
    """Frame indices of [start, stop) whose neighbours -1 and +1 are inside it too."""
    return list(range(start + 1, stop - 1))


def make_splits(counts, stereo=()):
    """{"train": lines, "val": lines, "test": lines} by the module docstring's rule.

    counts: {sequence: number of frames} in natural order; stereo: the sequences with right/ images."""
    names = list(counts)
    if not names:
        raise LayoutError("no sequences: put frames in ROOT/<sequence>/left/")
    share = lambda n: max(1, math.ceil(HELD_OUT_SHARE * n))  # noqa: E731
    parts = {"train": [], "val": [], "test": []}              # (sequence, start, stop)
    if len(names) >= 3:
        parts["train"] = [(s, 0, counts[s]) for s in names[:-2]]
        parts["val"], parts["test"] = [(names[-2], 0, counts[names[-2]])], [(names[-1], 0, counts[names[-1]])]
    elif len(names) == 2:
        n = counts[names[0]]
        parts["train"], parts["val"] = [(names[0], 0, n - share(n))], [(names[0], n - share(n), n)]
        parts["test"] = [(names[1], 0, counts[names[1]])]
    else:
        n = counts[names[0]]
        k = share(n)
        parts = {"train": [(names[0], 0, n - 2 * k)], "val": [(names[0], n - 2 * k, n - k)],
                 "test": [(names[0], n - k, n)]}
    out = {}
    for split, blocks in parts.items():
        lines = []
        for seq, start, stop in blocks:
            if split == "test":
                lines += [f"{seq} {i} l" for i in range(start, stop)]
            else:
                sides = "lr" if seq in stereo else "l"
                lines += [f"{seq} {i} {side}" for i in _inner(start, stop) for side in sides]
        out[split] = lines
    if not out["train"]:
        raise LayoutError(f"too few frames to train on ({', '.join(f'{s}: {counts[s]}' for s in names)}): "
                          f"a training frame needs both neighbours; add frames or write ROOT/splits/train_files.txt")
    return out


def ensure_splits(root):
    """ROOT/splits, holding train_files.txt (and val/test where the rule gives lines): the user's own if
    train_files.txt is there, else made by make_splits and written (each file atomically)."""
    folder = os.path.join(root, SPLITS_DIR)
    if os.path.isfile(os.path.join(folder, "train_files.txt")):
        return folder
    seqs = sequences(root)
    counts = {s: len(frame_names(root, s)) for s in seqs}
    splits = make_splits(counts, stereo={s for s in seqs if frame_names(root, s, "r")})
    os.makedirs(folder, exist_ok=True)
    for name in SPLIT_NAMES:
        if splits[name]:
            atomic_write_text(os.path.join(folder, f"{name}_files.txt"), "\n".join(splits[name]) + "\n")
    return folder


def is_folder_layout(root):
    """True when ROOT looks like this layout (ROOT/camera.json or ROOT/splits beside <sequence>/left/)."""
    return os.path.isfile(os.path.join(root, CAMERA_FILE))


def frame_path(root, sequence, index, side="l"):
    """The image of split-line frame `index` (its position in the natural sort of left/; a right image
    has the left one's stem); None where there is none."""
    names = frame_names(root, sequence)
    if not 0 <= index < len(names):
        return None
    if side == "l":
        return image_path(root, sequence, names[index], "l")
    stem = os.path.splitext(names[index])[0]
    for name in frame_names(root, sequence, "r"):
        if os.path.splitext(name)[0] == stem:
            return image_path(root, sequence, name, "r")
    return None
