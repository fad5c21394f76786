"""Evaluation ground truth, Paddle-free: KITTI's maps of a test split written to <split folder>/gt_depths.npz
(docs/MLDA_NET.md §8, §9; export_gt_depth.py and test.py), and one's own sequences' depth maps read for test.py.

gt_depths.npz holds key "data": an object array of float32 maps, one per line of test_files.txt (load with
allow_pickle=True), the same file Monodepth2 writes. Velodyne maps store the forward distance x
(vel_depth=True) in the image's camera (l: 2, r: 3); annotated maps are
<data_path>/<drive>/proj_depth/groundtruth/image_0x/<frame>.png / 256. One's own sequences
(utils/cameras/folder_layout.py) need no export: folder_gt_depths reads their depth maps
(ROOT/<sequence>/depth/<frame>.npy metres, or .png / 256) on every run.
"""
import os

import numpy as np

from utils.cameras import folder_layout
from utils.cameras import kitti_layout as layout
from utils.io.fileio import atomic_write


def gt_sources(data_path, lines, source):
    """Per line the file(s) its map comes from: (velodyne scan, calib folder, camera) or (annotated png,)."""
    out = []
    for i, line in enumerate(lines):
        folder, frame, side = layout.parse_split_line(line, f"test_files.txt line {i + 1}")
        if source == "velodyne":
            out.append((layout.velodyne_path(data_path, folder, frame), layout.calib_dir(data_path, folder),
                        layout.SIDE_TO_CAM[side]))
        else:
            out.append((layout.annotated_depth_path(data_path, folder, frame, side),))
    return out


def load_gt(item):
    from PIL import Image
    from utils.sensors.velodyne import generate_depth_map
    if len(item) == 3:
        return generate_depth_map(item[1], item[0], cam=item[2], vel_depth=True).astype(np.float32)
    with Image.open(item[0]) as img:
        return np.asarray(img, dtype=np.float32) / 256


def export_gt_depth(data_path, split, source=None, output=None, progress=True):
    """Write the split's ground-truth maps; returns the output path. source: "velodyne" or "annotated"
    (default: annotated for eigen_benchmark, else velodyne)."""
    from tqdm import tqdm
    folder = layout.split_folder(split)
    source = source or layout.gt_source(split)
    lines = layout.read_split(os.path.join(folder, "test_files.txt"))
    items = gt_sources(data_path, lines, source)
    needed = [p for item in items
              for p in ((item[0],) + tuple(os.path.join(item[1], n) for n in layout.CALIB_FILES) if len(item) == 3
                        else item)]
    missing = sorted({p for p in needed if not os.path.isfile(p)})
    if missing:
        raise layout.MissingFileError(f"{len(missing)} ground-truth files missing, first: {missing[0]} "
                        f"(check --data_path; {source} ground truth)")
    maps = np.empty(len(items), dtype=object)
    for i, item in enumerate(tqdm(items, desc=f"gt depth ({source})", unit="image", disable=not progress)):
        maps[i] = load_gt(item)
    output = output or os.path.join(folder, "gt_depths.npz")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    atomic_write(output, lambda tmp: np.savez_compressed(tmp, data=maps))
    return output


def folder_gt_depths(root, lines):
    """The depth maps (float32 metres, 0 = no value) of test lines '<sequence> <frame index> l' of one's
    own sequences (utils/cameras/folder_layout.py): ROOT/<sequence>/depth/<frame>.npy, or .png / 256. LayoutError
    (one line) for a right-image line, a frame index beyond the sequence or a missing map (the count and
    the first)."""
    names, paths, missing = {}, [], []
    for i, line in enumerate(lines):
        seq, frame, side = folder_layout.parse_split_line(line, f"test_files.txt line {i + 1}")
        if side != "l":
            raise layout.LayoutError(f"test_files.txt line {i + 1}: '{line}': depth maps belong to the left images; "
                                     f"evaluate left frames ('{seq} {frame} l')")
        if seq not in names:
            names[seq] = folder_layout.frame_names(root, seq)
        if frame >= len(names[seq]):
            raise layout.LayoutError(f"test_files.txt line {i + 1}: '{line}': {seq} has {len(names[seq])} left frames")
        path = folder_layout.depth_path(root, seq, names[seq][frame])
        if path is None:
            stem = os.path.splitext(names[seq][frame])[0]
            missing.append(os.path.join(root, seq, "depth", stem + ".npy"))
        paths.append(path)
    if missing:
        raise layout.MissingFileError(f"{len(missing)} of {len(lines)} test frames have no depth map, first: "
                                      f"{missing[0]} (or .png, uint16 metres x 256); evaluation needs one per test "
                                      f"line of ROOT/splits/test_files.txt")
    return [folder_layout.read_depth(p) for p in paths]
