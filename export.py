"""Export the depth network for deployment (Paddle Inference, and ONNX through paddle2onnx).

    python export.py --load_weights_folder WEIGHTS --save_dir deploy/             # model_encoder.* + model_depth.*
    python export.py --load_weights_folder WEIGHTS --save_dir deploy/ --combined  # one model.*
    python export.py --load_weights_folder WEIGHTS --save_dir deploy/ --format onnx   # also the .onnx files

Writes static programs (`.json` + `.pdiparams`, Paddle 3's format) with a dynamic batch dimension at
the weights folder's input size (or --height/--width), and deploy.json with the size, the depth
range, the stereo scale factor and the preprocessing, so that inference.py needs no flags to match.
The models output the scale-0 disparity only (the other scales serve the training loss); see
utils/deploy.py for the layout. Nothing is left half-written on failure.
"""
import utils  # noqa: F401  (first import: silences Paddle's import-time ccache warning)
import sys

import options


def main(argv=None):
    opt = options.parse("export", argv)
    import paddle

    import networks
    from utils.deploy import DeployError, export_models

    paddle.set_device("cpu")  # tracing only: the exported programs run on any device
    try:
        weights = networks.read_opt(opt.load_weights_folder)
        models = networks.load_models(opt.load_weights_folder, ("encoder", "depth"), opt.batch_coupled_filter)
    except networks.CheckpointError as e:
        sys.exit(f"export.py: error: {e}")
    height = opt.height or int(weights.height)
    width = opt.width or int(weights.width)
    layout = "combined" if opt.combined else "split"
    formats = ("paddle", "onnx") if opt.format == "onnx" else ("paddle",)
    extra = {"min_depth": float(weights.min_depth), "max_depth": float(weights.max_depth),
             "num_layers": int(weights.num_layers), "batch_coupled_filter": bool(opt.batch_coupled_filter),
             "trained_height": int(weights.height), "trained_width": int(weights.width)}
    print(f"exporting {layout} models at {height} x {width} ({' + '.join(formats)}) to {opt.save_dir}")
    try:
        config = export_models(models["encoder"], models["depth"], opt.save_dir, height, width, layout,
                               formats, extra)
    except DeployError as e:
        sys.exit(f"export.py: error: {e}")
    files = sorted(f for part in config["parts"].values() for f in part["files"].values())
    print(f"wrote {', '.join(files)} and deploy.json to {opt.save_dir}")


if __name__ == "__main__":
    main()
