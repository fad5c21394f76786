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

ROOT = os.path.dirname(os.path.abspath(__file__))


def split_folder(split):
    """A folder under the project's splits/, or a path to a folder."""
    return split if os.path.isdir(split) else os.path.join(ROOT, "splits", split)


def gt_sources(data_path, lines, source):
    """Per line the file(s) its map comes from: (velodyne scan, calib folder, camera) or (annotated png,)."""
    from datasets.kitti import SIDE_TO_CAM, parse_split_line
    out = []
    for i, line in enumerate(lines):
        folder, frame, side = parse_split_line(line, f"test_files.txt line {i + 1}")
        cam = SIDE_TO_CAM[side]
        if source == "velodyne":
            out.append((os.path.join(data_path, folder, "velodyne_points", "data", f"{frame:010d}.bin"),
                        os.path.join(data_path, folder.split("/")[0]), cam))
        else:
            out.append((os.path.join(data_path, folder, "proj_depth", "groundtruth", f"image_0{cam}",
                                     f"{frame:010d}.png"),))
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
    from datasets.kitti import DataError, read_split
    folder = split_folder(split)
    source = source or ("annotated" if os.path.basename(os.path.normpath(split)) == "eigen_benchmark" else "velodyne")
    lines = read_split(os.path.join(folder, "test_files.txt"))
    items = gt_sources(data_path, lines, source)
    needed = [p for item in items for p in ((item[0], os.path.join(item[1], "calib_cam_to_cam.txt"),
                                              os.path.join(item[1], "calib_velo_to_cam.txt"))
                                             if len(item) == 3 else item)]
    missing = sorted({p for p in needed if not os.path.isfile(p)})
    if missing:
        raise DataError(f"{len(missing)} ground-truth files missing, first: {missing[0]} "
                        f"(check --data_path; {source} ground truth)")
    maps = np.empty(len(items), dtype=object)
    for i, item in enumerate(tqdm(items, desc=f"gt depth ({source})", unit="image", disable=not progress)):
        maps[i] = load_gt(item)
    output = output or os.path.join(folder, "gt_depths.npz")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    tmp = output + ".tmp.npz"
    np.savez_compressed(tmp, data=maps)
    os.replace(tmp, output)
    return output


def main(argv=None):
    import options
    from datasets.kitti import DataError

    opt = options.parse("export_gt_depth", argv)
    if not os.path.isfile(os.path.join(split_folder(opt.split), "test_files.txt")):
        sys.exit(f"export_gt_depth.py: error: --split {opt.split}: no test_files.txt in {split_folder(opt.split)}")
    try:
        path = export_gt_depth(opt.data_path, opt.split, opt.source, opt.output)
    except (DataError, ValueError) as e:
        sys.exit(f"export_gt_depth.py: error: {e}")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
