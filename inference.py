"""Depth from photos and videos with an exported model: Paddle Inference (CPU with oneDNN, GPU, TensorRT)
or ONNX Runtime.

    python export.py --load_weights_folder WEIGHTS --save_dir deploy/ [--format onnx]
    python inference.py --infer_files_dir deploy/ --color_path photo.jpg [--output_dir OUT]
    python inference.py --infer_files_dir deploy/ --color_path folder/ --backend onnxruntime
    python inference.py --infer_files_dir deploy/ --color_path folder/ --device gpu --use_trt --trt_precision fp16

The same files, values and messages as predict.py: per image <stem>_disp.npy, <stem>_disp.jpeg,
<stem>_depth.npy (and --save_png16 <stem>_depth.png, --save_ply <stem>_points.ply; a video frame by frame
in <stem>/ plus <stem>_depth.mp4) in --output_dir (default:
outputs/inference_<backend>/<input name>/, so that predict.py's outputs/predict/ and the other backend's
files are not overwritten); unreadable images are reported and skipped, and the exit status is then non-zero.
Size, depth range, preprocessing and metric vs relative depth come from the folder's deploy.json
(--pred_depth_scale_factor F always wins; --camera_height H: metres from the ground plane, as predict.py).
Cameras as predict.py: --camera, else each photo's EXIF focal length, else the training camera; metric depth
is rescaled by the photo's focal ratio unless --no-focal_rescale.
"""
import utils  # noqa: F401  (first import: silences Paddle's import-time ccache warning)
import sys

import options
from deployment import DeployError, DepthPredictor
from deployment.gate import describe as describe_precision
from utils.geometry import provenance
from utils.io import photo_loop
from utils.io.output_options import OutputOptions


def main(argv=None):
    opt = options.parse("inference", argv)
    try:
        paths = photo_loop.list_inputs(opt.color_path, opt.velo_filename, opt.calib_path)
        predictor = DepthPredictor(opt.infer_files_dir, opt.backend, opt.device, opt.cpu_threads, opt.onednn,
                                   opt.use_trt, opt.trt_precision, scale_factor=opt.pred_depth_scale_factor)
        photo_loop.ground_setup(opt.camera_height, predictor.metric)
        camera = photo_loop.camera_choice(opt.camera, predictor.config.get("camera"), opt.save_ply, opt.camera_height)
        focal = photo_loop.focal_setup(opt.focal_rescale and opt.pred_depth_scale_factor is None, predictor.metric,
                                       opt.camera, predictor.config.get("camera"), opt.save_ply, opt.camera_height)
    except (photo_loop.InputError, DeployError) as e:
        sys.exit(f"inference.py: error: {e}")
    if predictor.scale_note and not opt.camera_height:   # the ground plane gives relative depth metres
        print(predictor.scale_note)
    print(provenance.run_line(predictor.provenance, focal, opt.camera_height))   # what the depth means
    precision = describe_precision(predictor.config)  # export.py --precision int8 | bf16
    if precision:
        print(precision)
    output_dir = opt.output_dir or photo_loop.default_output_dir(opt.color_path, f"inference_{opt.backend}")
    out = OutputOptions.from_run(opt, predictor, camera, output_dir, "inference.py", focal)
    lines, error = photo_loop.predict_and_report("inference.py", paths, lambda image: predictor(image)[0, 0], out)
    if lines:
        print("\n".join(lines))
    if error:
        sys.exit(error)


if __name__ == "__main__":
    main()
