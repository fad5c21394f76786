"""Export the depth network for deployment (Paddle Inference, and ONNX through paddle2onnx).

    python export.py --load_weights_folder WEIGHTS --save_dir deploy/             # model_encoder.* + model_depth.*
    python export.py --load_weights_folder WEIGHTS --save_dir deploy/ --combined  # one model.*
    python export.py --load_weights_folder WEIGHTS --save_dir deploy/ --format onnx   # also the .onnx files

Writes static programs (`.json` + `.pdiparams`, Paddle 3's format) with a dynamic batch dimension at
the weights folder's input size (or --height/--width), and deploy.json with the size, the depth
range, metric or relative depth (as predict.py decides it from the weights' opt.json) and the
preprocessing, so that inference.py needs no flags to match. The models output the scale-0 disparity
only (the other scales serve the training loss); see deployment/config.py for the layout. Nothing is
left half-written on failure.
"""
import utils  # noqa: F401  (first import: silences Paddle's import-time ccache warning)
import os
import sys

# Paddle's C++ tracer logs "PIR not support input out tensor" for each constant (paddle.to_tensor) it
# traces, harmless here; glog reads its level when Paddle loads, so C++ warnings are turned off before.
os.environ.setdefault("GLOG_minloglevel", "2")

import options
from utils.depth import depth_scale


def main(argv=None):
    opt = options.parse("export", argv)
    import paddle

    import networks
    from deployment import DeployError
    from deployment.export import export_models

    paddle.set_device("cpu")  # tracing only: the exported programs run on any device
    try:
        weights, nets = networks.load_weights_folder(opt.load_weights_folder, ("depth",), opt.batch_coupled_filter)
    except networks.CheckpointError as e:
        sys.exit(f"export.py: error: {e}")
    height = opt.height or int(weights.height)
    width = opt.width or int(weights.width)
    layout = "combined" if opt.combined else "split"
    formats = ("paddle", "onnx") if opt.format == "onnx" else ("paddle",)
    factor, metric, note = depth_scale(weights.get("use_stereo"))
    extra = {"min_depth": float(weights.min_depth), "max_depth": float(weights.max_depth),
             "metric": metric, "depth_scale_factor": factor, "depth_note": note,
             "num_layers": int(weights.num_layers), "batch_coupled_filter": bool(opt.batch_coupled_filter),
             "trained_height": int(weights.height), "trained_width": int(weights.width)}
    print(f"exporting {layout} models at {height} x {width} ({' + '.join(formats)}) to {opt.save_dir}")
    try:
        config = export_models(nets["depth"], opt.save_dir, height, width, layout, formats, extra)
    except DeployError as e:
        sys.exit(f"export.py: error: {e}")
    files = sorted(f for part in config["parts"].values() for f in part["files"].values())
    print(f"wrote {', '.join(files)} and deploy.json to {opt.save_dir} "
          f"({'metric depth, x%g' % factor if metric else 'relative depth'})")


if __name__ == "__main__":
    main()
