"""Export the evaluation ground truth of a test split to <split folder>/gt_depths.npz (spec sections 8, 9).

    python export_gt_depth.py --data_path kitti_data --split eigen             # velodyne, 697 maps
    python export_gt_depth.py --data_path kitti_data --split eigen_benchmark   # KITTI's annotated depth
    python export_gt_depth.py --data_path data/synthetic_kitti --split data/synthetic_kitti/splits

The file holds key "data": an object array of float32 maps, one per line of test_files.txt (load with
allow_pickle=True), the same file Monodepth2 writes. Velodyne maps store the forward distance x
(vel_depth=True) in the image's camera (l: 2, r: 3); annotated maps are
<data_path>/<drive>/proj_depth/groundtruth/image_0x/<frame>.png / 256.
"""
import utils  # noqa: F401  (first import: silences Paddle's import-time ccache warning)
import os
import sys

import numpy as np

from utils import kitti_layout as layout
from utils.fileio import atomic_write


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
    from utils.kitti_utils import generate_depth_map
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


def main(argv=None):
    import options

    opt = options.parse("export_gt_depth", argv)
    folder = layout.split_folder(opt.split)
    if not os.path.isfile(os.path.join(folder, "test_files.txt")):
        sys.exit(f"export_gt_depth.py: error: --split {opt.split}: no test_files.txt in {folder}")
    try:
        path = export_gt_depth(opt.data_path, opt.split, opt.source, opt.output)
    except ValueError as e:   # layout.LayoutError (= datasets.DataError) included
        sys.exit(f"export_gt_depth.py: error: {e}")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
