"""The test split of a depth evaluation, for KITTI's layout and for one's own sequences (the folder
layout, utils/folder_layout.py): its lines, ground-truth maps and masking rules, and the per-image
scoring (spec section 8). test.py evaluates the network with these; export.py gates a reduced-precision
model with them. Free of Paddle. Every refusal is a SplitError whose message is one line for the user.
"""
import os

import numpy as np

from utils import folder_layout, kitti_layout
from utils.kitti_layout import STEREO_SCALE_FACTOR
from utils.metrics import METRIC_NAMES, evaluate_depth

# One's own depth maps: every gt > 0 counts (Monodepth2's rule for the splits other than eigen), no crop,
# and predictions are clipped only below: KITTI's 80 m is its lidar's range, a user's scene may reach further
FOLDER_EVAL_RULES = {"garg_crop": False, "cap_gt": False, "min_depth": 1e-3, "max_depth": float("inf")}


class SplitError(ValueError):
    """A split that cannot be evaluated; the message says why and what to do."""


class EvalSplit:
    """One loaded test split: `layout` ("kitti" or "folder"), `data_path`, `split_dir` (the folder of
    test_files.txt), `name` (for result files), `lines`, `rules` (evaluate_depth's masking keywords)
    and `gt_depths` (one float map per line, metres, 0 = no value)."""

    def __init__(self, layout, data_path, split_dir, name, lines, rules, gt_depths):
        self.layout, self.data_path, self.split_dir, self.name = layout, data_path, split_dir, name
        self.lines, self.rules, self.gt_depths = lines, rules, gt_depths

    def image_paths(self, img_ext=".jpg"):
        """The photo of every line (KITTI: `img_ext`, else the other extension); SplitError for a missing one."""
        paths = []
        for i, line in enumerate(self.lines):
            where = f"{os.path.join(self.split_dir, 'test_files.txt')} line {i + 1}"
            if self.layout == "folder":
                seq, frame, side = folder_layout.parse_split_line(line, where)
                path = folder_layout.frame_path(self.data_path, seq, frame, side)
            else:
                folder, frame, side = kitti_layout.parse_split_line(line, where)[:3]
                path = kitti_layout.find_image(self.data_path, folder, frame, side, img_ext)
            if path is None:
                raise SplitError(f"{where}: '{line}': no image under {self.data_path}")
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
        raise SplitError(f"--eval_split {eval_split}: {os.path.join(folder, 'test_files.txt')} not found "
                         "(use eigen, eigen_benchmark or a folder with test_files.txt)")
    return folder


def folder_split_folder(data_path, eval_split):
    """The folder holding test_files.txt for one's own sequences: `eval_split` when it names a folder,
    else (None, or test.py's default "eigen") <data_path>/splits, made there by folder_layout.ensure_splits
    when it has no train_files.txt."""
    if eval_split is not None and os.path.isdir(eval_split):
        folder = eval_split
    elif eval_split not in (None, "eigen"):   # eigen is test.py's default, meaningless here: the dataset's own
        raise SplitError(f"--eval_split {eval_split}: no such folder (give a folder holding test_files.txt, or leave "
                         f"--eval_split out to use {os.path.join(data_path, folder_layout.SPLITS_DIR)})")
    else:
        try:
            folder = folder_layout.ensure_splits(data_path)
        except kitti_layout.LayoutError as e:
            raise SplitError(str(e)) from None
    if not os.path.isfile(os.path.join(folder, "test_files.txt")):
        raise SplitError(f"{os.path.join(folder, 'test_files.txt')} not found: write lines '<sequence> <frame "
                         "index> l' of frames with depth maps (or remove the splits folder to have it made)")
    return folder


def load_gt_depths(split_dir, data_path):
    """<split folder>/gt_depths.npz (key "data"), exported there first when absent (velodyne scans,
    or KITTI's annotated depth for eigen_benchmark: export_gt_depth.py)."""
    path = os.path.join(split_dir, "gt_depths.npz")
    if not os.path.isfile(path):
        from export_gt_depth import export_gt_depth
        print(f"-> {path} not found: computing the ground truth from {data_path}")
        try:
            export_gt_depth(data_path, split_dir)
        except (OSError, ValueError) as e:
            raise SplitError(f"cannot compute the ground truth for {split_dir}: {e}") from None
    return list(np.load(path, allow_pickle=True, fix_imports=True, encoding="latin1")["data"])


def load_split(data_path, eval_split, layout):
    """The EvalSplit of `eval_split` (KITTI: a split name or folder; folder layout: a folder, or None
    for <data_path>/splits) in `layout`, ground truth included: every refusal comes before anything is
    predicted."""
    try:
        if layout == "folder":
            split_dir = folder_split_folder(data_path, eval_split)
            own = os.path.abspath(split_dir) == os.path.abspath(os.path.join(data_path, folder_layout.SPLITS_DIR))
            # results of the dataset's own test split are named after the dataset, not after "splits"
            name = os.path.basename(os.path.normpath(data_path if own else split_dir))
            lines = folder_layout.read_split(os.path.join(split_dir, "test_files.txt"))
            from export_gt_depth import folder_gt_depths
            gt_depths = folder_gt_depths(data_path, lines)
            empty = [line for line, gt in zip(lines, gt_depths) if not (gt > 0).any()]
            if empty:
                raise SplitError(f"{len(empty)} test depth maps hold no value (all 0), first: '{empty[0]}'; drop such "
                                 f"lines from {os.path.join(split_dir, 'test_files.txt')}")
            rules = FOLDER_EVAL_RULES
        else:
            split_dir = kitti_split_folder(eval_split)
            name = os.path.basename(os.path.normpath(split_dir))
            lines = kitti_layout.read_split(os.path.join(split_dir, "test_files.txt"))
            gt_depths = load_gt_depths(split_dir, data_path)
            rules = kitti_layout.eval_rules(split_dir)
    except kitti_layout.LayoutError as e:
        raise SplitError(str(e)) from None
    return EvalSplit(layout, data_path, split_dir, name, lines, rules, gt_depths)


def evaluate(pred_disps, gt_depths, mode="median", stereo_factor=STEREO_SCALE_FACTOR, rules=None):
    """Per-image errors (N x 7) and scale ratios (N) of scaled disparities against gt maps, masked by
    `rules` (kitti_layout.eval_rules(split); None: eigen's). `stereo_factor`: one factor, or one per image."""
    rules = rules or kitti_layout.eval_rules("eigen")
    errors, ratios = [], []
    factors = np.broadcast_to(np.asarray(stereo_factor, dtype=np.float64), (len(pred_disps),))
    for disp, gt, factor in zip(pred_disps, gt_depths, factors):
        e, r = evaluate_depth(gt, disp, mode=mode, stereo_factor=float(factor), **rules)
        errors.append(e)
        ratios.append(r)
    return np.array(errors), np.array(ratios)


def mean_metrics(errors):
    """{metric name: mean over the images} of evaluate's per-image errors."""
    return dict(zip(METRIC_NAMES, map(float, np.asarray(errors).mean(axis=0))))
