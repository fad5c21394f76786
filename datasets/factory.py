"""The training and validation datasets of a split, from explicit arguments, for every dataset name.

DATASETS maps a --dataset name to its class (datasets/mono.py's MonoDataset subclasses); what differs
between layouts (where the split files are, which files a line needs, the camera) is the class's own.
Another layout is a subclass plus an entry here."""
import os

from datasets.folder import FolderDataset
from datasets.kitti import KITTIRAWDataset
from datasets.mono import DataError

DATASETS = {"kitti": KITTIRAWDataset, "synthetic": KITTIRAWDataset, "folder": FolderDataset}


def dataset_class(dataset):
    """The MonoDataset subclass of a --dataset name; DataError naming the known ones."""
    try:
        return DATASETS[dataset]
    except KeyError:
        raise DataError(f"dataset {dataset!r}: not one of {', '.join(DATASETS)}") from None


def split_files_folder(split, data_path, dataset="kitti"):
    """Folder of a split's train/val files (the dataset class's split_folder): for --dataset folder
    <data_path>/splits (generated there by utils/cameras/folder_layout.py's rule when absent); for the split
    'synthetic' the generated dataset's own splits folder under data_path; otherwise
    kitti_layout.split_folder (a name under splits/ or a path)."""
    return dataset_class(dataset).split_folder(split, data_path)


def train_val_datasets(data_path, split, height, width, frame_idxs, img_ext=".jpg", use_depth_hints=False,
                       depth_hint_path=None, skip_missing=False, val_max_images=0, depth_gt_size=None,
                       num_scales=4, dataset="kitti", lidar_beams=64, load_travel=False):
    """(train, val) datasets of class DATASETS[dataset] from the split's train_files.txt and val_files.txt.

    train augments (flips, colour jitter) and, with skip_missing, drops lines whose files are missing;
    val does neither, holds at most val_max_images lines (0: all) and is None when the split has no
    val_files.txt. depth_gt_size: the size ground truth is stacked at (None: the data's own, KITTI's
    calibration size or the folder camera's). lidar_beams thins train's velodyne scans (val keeps every
    ring), load_travel adds ("travel", f) to both (KITTI's sensors). DataError (naming the file) for a
    missing split file, a bad line or a missing frame."""
    kind = dataset_class(dataset)
    folder = kind.split_folder(split, data_path)
    common = dict(data_path=data_path, height=height, width=width, frame_idxs=frame_idxs, num_scales=num_scales,
                  img_ext=img_ext, use_depth_hints=use_depth_hints, depth_hint_path=depth_hint_path,
                  depth_gt_size=depth_gt_size, load_travel=load_travel)
    train = kind(filenames=kind.layout.read_split(os.path.join(folder, "train_files.txt")), is_train=True,
                 skip_missing=skip_missing, lidar_beams=lidar_beams, **common)
    val_file = os.path.join(folder, "val_files.txt")
    if not os.path.isfile(val_file):
        return train, None
    lines = kind.layout.read_split(val_file)
    val = kind(filenames=lines[:val_max_images] if val_max_images else lines, is_train=False, **common)
    return train, val
