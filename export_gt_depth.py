"""Export the evaluation ground truth of a test split to <split folder>/gt_depths.npz (docs/MLDA_NET.md §8, §9).

    python export_gt_depth.py --data_path kitti_data --split eigen             # velodyne, 697 maps
    python export_gt_depth.py --data_path kitti_data --split eigen_benchmark   # KITTI's annotated depth
    python export_gt_depth.py --data_path data/synthetic_kitti --split data/synthetic_kitti/splits

The file holds key "data": an object array of float32 maps, one per line of test_files.txt, the same file
Monodepth2 writes (utils/io/ground_truth.py, which test.py also uses, says what the maps hold). One's own
sequences (utils/cameras/folder_layout.py) need no export: test.py reads their depth maps on every run.
"""
import utils  # noqa: F401  (first import: silences Paddle's import-time ccache warning)
import os
import sys

from utils.cameras import kitti_layout as layout
from utils.io.ground_truth import export_gt_depth


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
