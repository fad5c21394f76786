"""The per-photo loop that predict.py (eager Paddle) and inference.py (Paddle Inference or
ONNX Runtime) share: same files, same messages, same velodyne check. Free of Paddle."""
import os
import sys

from tqdm import tqdm

from utils import image_io
from utils.depth import disp_to_depth
from utils.metrics import METRIC_NAMES, evaluate_depth


def default_output_dir(color_path):
    """'predictions' beside the image, or inside the folder."""
    folder = color_path if os.path.isdir(color_path) else os.path.dirname(os.path.abspath(color_path))
    return os.path.join(folder, "predictions")


def missing_velodyne_file(opt):
    """The first of the scan and calibration files that does not exist, or None."""
    for f in (opt.velo_filename, os.path.join(opt.calib_path, "calib_cam_to_cam.txt"),
              os.path.join(opt.calib_path, "calib_velo_to_cam.txt")):
        if not os.path.isfile(f):
            return f
    return None


def velodyne_errors(disp, image_path, calib_path, velo_filename, min_depth, max_depth, median_scaling,
                    scale_factor):
    """The seven metrics of a sigmoid disparity against its velodyne scan, exactly as test.py
    computes them (utils.metrics.evaluate_depth on the velodyne-distance ground truth)."""
    from utils.kitti_utils import generate_depth_map

    cam = 3 if "image_03" in os.path.abspath(image_path) else 2
    gt = generate_depth_map(calib_path, velo_filename, cam=cam, vel_depth=True)
    scaled_disp, _ = disp_to_depth(disp, min_depth, max_depth)
    return evaluate_depth(gt, scaled_disp, mode="median" if median_scaling else "stereo", stereo_factor=scale_factor)


def run(prog, opt, predict_disp, min_depth, max_depth):
    """Predict every image of opt.color_path with `predict_disp(PIL image) -> H x W sigmoid disparity`
    and write its files; unreadable images are skipped and listed. Exits non-zero if any was."""
    try:
        paths = image_io.list_images(opt.color_path)
    except image_io.ImageLoadError as e:
        sys.exit(f"{prog}: error: {e}")
    if opt.velo_filename and missing_velodyne_file(opt):
        sys.exit(f"{prog}: error: {missing_velodyne_file(opt)} not found (--velo_filename / --calib_path)")
    output_dir = opt.output_dir or default_output_dir(opt.color_path)
    failed = []
    for path, stem in tqdm(list(zip(paths, image_io.output_stems(paths))), desc=prog, unit="image",
                           disable=len(paths) == 1):
        try:
            image = image_io.load_image(path)
        except image_io.ImageLoadError as e:
            failed.append(str(e))
            tqdm.write(f"skipped {e}", file=sys.stderr)
            continue
        disp = predict_disp(image)
        image_io.write_prediction(output_dir, stem, disp, image.size, opt.pred_depth_scale_factor, opt.colormap,
                                  opt.save_png16, min_depth, max_depth)
        if opt.velo_filename:
            errors, ratio = velodyne_errors(disp, path, opt.calib_path, opt.velo_filename, min_depth, max_depth,
                                            opt.eval_mono, opt.pred_depth_scale_factor)
            print("  " + " | ".join(f"{n:>8}" for n in METRIC_NAMES))
            print("  " + " | ".join(f"{v:8.3f}" for v in errors))
            print(f"  scale: {'median ratio' if opt.eval_mono else 'fixed factor'} {ratio:.3f}")
    print(f"{len(paths) - len(failed)} of {len(paths)} image(s) written to {output_dir}")
    if failed:
        sys.exit(f"{prog}: error: could not read " + "; ".join(failed))
