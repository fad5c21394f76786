"""The test split of a depth evaluation, Paddle-free: its lines, ground-truth maps, masking rules and photos,
for KITTI's layout and for one's own sequences (utils/cameras/folder_layout.py). test.py evaluates the
network on it; export.py gates a reduced-precision model on it (deployment/gate.py); both score with
utils.geometry.metrics.evaluate_images. Every refusal is a LayoutError (datasets.DataError) whose
message is one line for the user, raised before anything is predicted.
"""
import os
from dataclasses import dataclass

import numpy as np

from utils.cameras import folder_layout, kitti_layout
from utils.cameras.kitti_layout import LayoutError
from utils.io.ground_truth import export_gt_depth, folder_gt_depths

# One's own depth maps: every gt > 0 counts (Monodepth2's rule for the splits other than eigen), no crop,
# and predictions are clipped only below: KITTI's 80 m is its lidar's range, a user's scene may reach further
FOLDER_EVAL_RULES = {"garg_crop": False, "cap_gt": False, "min_depth": 1e-3, "max_depth": float("inf")}


@dataclass
class EvalSplit:
    """One loaded test split: the layout ("kitti" or "folder"), the dataset root, the folder of
    test_files.txt and its name (for result files), the lines, the masking rules (evaluate_depth's
    keywords) and the ground-truth maps (float metres, 0 = no value; one per line)."""
    layout: str
    data_path: str
    split_dir: str
    split_name: str
    lines: list
    rules: dict
    gt_depths: list

    def image_paths(self, img_ext=".jpg"):
        """The photo of every line (KITTI: `img_ext`, else the other extension); LayoutError for a missing one."""
        paths = []
        for i, line in enumerate(self.lines):
            where = f"{os.path.join(self.split_dir, 'test_files.txt')} line {i + 1}"
            if self.layout == "folder":
                path = folder_layout.frame_path(self.data_path, *folder_layout.parse_split_line(line, where))
            else:
                path = kitti_layout.find_image(self.data_path, *kitti_layout.parse_split_line(line, where), img_ext)
            if path is None:
                raise LayoutError(f"{where}: '{line}': no image under {self.data_path}")
            paths.append(path)
        return paths


def resolve_layout(dataset, data_path):
    """"folder" (one's own sequences) or "kitti": `dataset` when given, else folder when
    <data_path>/camera.json exists."""
    return dataset or ("folder" if folder_layout.is_folder_layout(data_path) else "kitti")


def kitti_split_folder(eval_split):
    """A split name under splits/ or a folder path -> the folder holding test_files.txt."""
    folder = kitti_layout.split_folder(eval_split)
    if not os.path.isfile(os.path.join(folder, "test_files.txt")):
        raise LayoutError(f"--eval_split {eval_split}: {os.path.join(folder, 'test_files.txt')} not found "
                          "(use eigen, eigen_benchmark or a folder with test_files.txt)")
    return folder


def folder_split_folder(data_path, eval_split):
    """The folder holding test_files.txt for one's own sequences: `eval_split` when it names a folder,
    else (None, or test.py's default "eigen") <data_path>/splits, made there by folder_layout.ensure_splits
    when it has no train_files.txt."""
    if eval_split is not None and os.path.isdir(eval_split):
        folder = eval_split
    elif eval_split not in (None, "eigen"):   # eigen is test.py's default, meaningless here: the dataset's own
        raise LayoutError(f"--eval_split {eval_split}: no such folder (give a folder holding test_files.txt, or "
                          f"leave --eval_split out to use {os.path.join(data_path, folder_layout.SPLITS_DIR)})")
    else:
        folder = folder_layout.ensure_splits(data_path)
    if not os.path.isfile(os.path.join(folder, "test_files.txt")):
        raise LayoutError(f"{os.path.join(folder, 'test_files.txt')} not found: write lines '<sequence> <frame "
                          "index> l' of frames with depth maps (or remove the splits folder to have it made)")
    return folder


def load_gt_depths(split_dir, data_path, log=print):
    """<split folder>/gt_depths.npz (key "data"), exported there first when absent (velodyne scans,
    or KITTI's annotated depth for eigen_benchmark: utils/io/ground_truth.py)."""
    path = os.path.join(split_dir, "gt_depths.npz")
    if not os.path.isfile(path):
        log(f"-> {path} not found: computing the ground truth from {data_path}")
        try:
            export_gt_depth(data_path, split_dir)
        except (OSError, ValueError) as e:
            raise LayoutError(f"cannot compute the ground truth for {split_dir}: {e}") from None
    return list(np.load(path, allow_pickle=True, fix_imports=True, encoding="latin1")["data"])


def load_split(data_path, eval_split, layout, log=print):
    """The EvalSplit of `eval_split` in `layout` (KITTI: a split name or folder; folder layout: a folder,
    or None for <data_path>/splits), ground truth included."""
    if layout == "folder":
        split_dir = folder_split_folder(data_path, eval_split)
        own = os.path.abspath(split_dir) == os.path.abspath(os.path.join(data_path, folder_layout.SPLITS_DIR))
        # results of the dataset's own test split are named after the dataset, not after "splits"
        name = os.path.basename(os.path.normpath(data_path if own else split_dir))
        lines = folder_layout.read_split(os.path.join(split_dir, "test_files.txt"))
        gt_depths = folder_gt_depths(data_path, lines)
        empty = [line for line, gt in zip(lines, gt_depths) if not (gt > 0).any()]
        if empty:
            raise LayoutError(f"{len(empty)} test depth maps hold no value (all 0), first: '{empty[0]}'; drop such "
                              f"lines from {os.path.join(split_dir, 'test_files.txt')}")
        rules = FOLDER_EVAL_RULES
    else:
        split_dir = kitti_split_folder(eval_split)
        name = os.path.basename(os.path.normpath(split_dir))
        lines = kitti_layout.read_split(os.path.join(split_dir, "test_files.txt"))
        gt_depths = load_gt_depths(split_dir, data_path, log)
        rules = kitti_layout.eval_rules(split_dir)
    return EvalSplit(layout, data_path, split_dir, name, lines, rules, gt_depths)
