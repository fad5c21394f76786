"""The training and validation datasets of a split, from explicit arguments."""
import os

from datasets.folder import FolderDataset
from datasets.kitti import KITTIRAWDataset
from utils.cameras import folder_layout
from utils.cameras import kitti_layout as layout


def split_files_folder(split, data_path, dataset="kitti"):
    """Folder of a split's train/val files: for --dataset folder <data_path>/splits (generated there by
    utils/cameras/folder_layout.py's rule when absent); for 'synthetic' the generated dataset's own splits
    folder under data_path; otherwise kitti_layout.split_folder (a name under splits/ or a path)."""
    if dataset == "folder":
        return folder_layout.ensure_splits(data_path)
    if split == "synthetic":
        from synthetic import split_dir
        return split_dir(data_path)
    return layout.split_folder(split)


def train_val_datasets(data_path, split, height, width, frame_idxs, img_ext=".jpg", use_depth_hints=False,
                       depth_hint_path=None, skip_missing=False, val_max_images=0,
                       depth_gt_size=layout.NATIVE_SIZE, num_scales=4, dataset="kitti", lidar_beams=64,
                       load_travel=False):
    """(train, val) KITTIRAWDatasets (FolderDatasets for dataset="folder", whose split is always
    <data_path>/splits and whose depth_gt_size is the default camera's image size) of the split's
    train_files.txt and val_files.txt.

    train augments (flips, colour jitter) and, with skip_missing, drops lines whose files are
    missing; val does neither, holds at most val_max_images lines (0: all) and is None when the
    split has no val_files.txt. depth_gt_size: the size val ground truth is stacked at (KITTI's
    images differ slightly in size per date; None keeps the calibration's). DataError (naming the
    file) for a missing split file, a bad line or a missing frame. KITTI layout only: lidar_beams
    thins train's velodyne scans (val keeps every ring), load_travel adds ("travel", f) to both."""
    folder = split_files_folder(split, data_path, dataset)
    kind, read_split = (FolderDataset, folder_layout.read_split) if dataset == "folder" else \
        (KITTIRAWDataset, layout.read_split)
    common = dict(data_path=data_path, height=height, width=width, frame_idxs=frame_idxs,
                  num_scales=num_scales, img_ext=img_ext, use_depth_hints=use_depth_hints,
                  depth_hint_path=depth_hint_path, depth_gt_size=None if dataset == "folder" else depth_gt_size)
    if dataset != "folder":   # velodyne rings and oxts exist in KITTI's layout only
        common["load_travel"] = load_travel
    beams = {} if dataset == "folder" else dict(lidar_beams=lidar_beams)
    train = kind(filenames=read_split(os.path.join(folder, "train_files.txt")),
                 is_train=True, skip_missing=skip_missing, **common, **beams)
    val_file = os.path.join(folder, "val_files.txt")
    if not os.path.isfile(val_file):
        return train, None
    lines = read_split(val_file)
    val = kind(filenames=lines[:val_max_images] if val_max_images else lines, is_train=False, **common)
    return train, val
