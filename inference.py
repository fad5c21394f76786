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
import utils  # noqa: F401  (first import: silences Paddle's import-time ccache warning)
import sys

import options
from utils import image_io, photo_loop
from utils.deploy import DeployError, DepthPredictor


def main(argv=None):
    opt = options.parse("inference", argv)
    try:
        predictor = DepthPredictor(opt.infer_files_dir, opt.backend, opt.device, opt.cpu_threads, opt.onednn,
                                   opt.use_trt, opt.trt_precision)
    except DeployError as e:
        sys.exit(f"inference.py: error: {e}")
    config = predictor.config

    def predict_disp(image):
        return predictor(image_io.preprocess(image, predictor.height, predictor.width))[0, 0]

    photo_loop.run("inference.py", opt, predict_disp, config["min_depth"], config["max_depth"])


if __name__ == "__main__":
    main()
