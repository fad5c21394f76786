"""Depth from photos with an exported model: Paddle Inference (CPU with oneDNN, GPU, TensorRT) or ONNX Runtime.

    python export.py --load_weights_folder WEIGHTS --save_dir deploy/ [--format onnx]
    python inference.py --infer_files_dir deploy/ --color_path photo.jpg [--output_dir OUT]
    python inference.py --infer_files_dir deploy/ --color_path folder/ --backend onnxruntime
    python inference.py --infer_files_dir deploy/ --color_path folder/ --device gpu --use_trt --trt_precision fp16

The same inputs, outputs and messages as predict.py: per image <stem>_disp.npy, <stem>_disp.jpeg,
<stem>_depth.npy (and --save_png16 <stem>_depth.png) in --output_dir (default: 'predictions' beside
the image / inside the folder); unreadable images are reported and skipped, and the exit status is
then non-zero. Size, depth range and preprocessing come from the folder's deploy.json.
"""
import os
import sys

from tqdm import tqdm

import options
from utils import image_io
from utils.deploy import DeployError, DepthPredictor


def default_output_dir(color_path):
    """'predictions' beside the image, or inside the folder (as predict.py)."""
    folder = color_path if os.path.isdir(color_path) else os.path.dirname(os.path.abspath(color_path))
    return os.path.join(folder, "predictions")


def main(argv=None):
    opt = options.parse("inference", argv)
    try:
        paths = image_io.list_images(opt.color_path)
        predictor = DepthPredictor(opt.infer_files_dir, opt.backend, opt.device, opt.cpu_threads, opt.onednn,
                                   opt.use_trt, opt.trt_precision)
    except (image_io.ImageLoadError, DeployError) as e:
        sys.exit(f"inference.py: error: {e}")
    config = predictor.config
    min_depth, max_depth = config["min_depth"], config["max_depth"]
    if opt.velo_filename:
        for f in (opt.velo_filename, os.path.join(opt.calib_path, "calib_cam_to_cam.txt"),
                  os.path.join(opt.calib_path, "calib_velo_to_cam.txt")):
            if not os.path.isfile(f):
                sys.exit(f"inference.py: error: {f} not found (--velo_filename / --calib_path)")
    output_dir = opt.output_dir or default_output_dir(opt.color_path)
    failed = []
    for path, stem in tqdm(list(zip(paths, image_io.output_stems(paths))), desc="inference", unit="image",
                           disable=len(paths) == 1):
        try:
            image = image_io.load_image(path)
        except image_io.ImageLoadError as e:
            failed.append(str(e))
            tqdm.write(f"skipped {e}", file=sys.stderr)
            continue
        disp = predictor(image_io.preprocess(image, predictor.height, predictor.width))[0, 0]
        image_io.write_prediction(output_dir, stem, disp, image.size, opt.pred_depth_scale_factor, opt.colormap,
                                  opt.save_png16, min_depth, max_depth)
        if opt.velo_filename:
            print_velodyne_errors(disp, path, opt, min_depth, max_depth)
    done = len(paths) - len(failed)
    print(f"{done} of {len(paths)} image(s) written to {output_dir}")
    if failed:
        sys.exit("inference.py: error: could not read " + "; ".join(failed))


def print_velodyne_errors(disp, path, opt, min_depth, max_depth):
    """predict.py's velodyne check (the seven metrics against the scan, as test.py computes them)."""
    from types import SimpleNamespace

    from predict import velodyne_errors

    scale = SimpleNamespace(min_depth=min_depth, max_depth=max_depth, scale_factor=opt.pred_depth_scale_factor)
    errors, ratio = velodyne_errors(scale, disp, path, opt.calib_path, opt.velo_filename, opt.eval_mono)
    names = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
    print("  " + " | ".join(f"{n:>8}" for n in names))
    print("  " + " | ".join(f"{v:8.3f}" for v in errors))
    print(f"  scale: {'median ratio' if opt.eval_mono else 'fixed factor'} {ratio:.3f}")


if __name__ == "__main__":
    main()
