"""Export the depth network for deployment (Paddle Inference, and ONNX through paddle2onnx).

    python export.py --load_weights_folder WEIGHTS --save_dir deploy/             # model_encoder.* + model_depth.*
    python export.py --load_weights_folder WEIGHTS --save_dir deploy/ --combined  # one model.*
    python export.py --load_weights_folder WEIGHTS --save_dir deploy/ --format onnx   # also the .onnx files
    python export.py --load_weights_folder WEIGHTS --save_dir deploy_int8/ --precision int8 --calib_images PHOTOS

Writes static programs (`.json` + `.pdiparams`, Paddle 3's format) with a dynamic batch dimension at
the weights folder's input size (or --height/--width), and deploy.json with the size, the depth
range, metric or relative depth (as predict.py decides it from the weights' opt.json), the training
data record (utils/geometry/provenance.py) and the preprocessing, so that inference.py needs no flags
to match. --precision int8 (ONNX Runtime) or bf16
(Paddle Inference, oneDNN) writes a reduced-precision model only if its evaluation metrics on the
test split of --gate_split stay within --max_abs_rel_change (abs_rel, relative) and --max_delta1_change
(a1, points) of fp32's (deployment/gate.py, deployment/quantize.py), and records them and the
per-pixel disparity change in deploy.json. The models output the scale-0 disparity
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
from utils.geometry import provenance
from utils.geometry.depth import depth_scale


def export_refine_head(opt, depth_net, height, width, formats):
    """The weights folder's diffusion head (refine.pdparams) too: step programs and one unrolled program
    per --ddim_steps (deployment/export_refine.py), described by refine.json in --save_dir."""
    import networks
    from deployment.export_refine import export_refine

    try:
        net = networks.RefinedDepthNet(depth_net, networks.load_refine_head(opt.load_weights_folder))
    except networks.CheckpointError as e:
        sys.exit(f"export.py: error: {e}")
    cfg = net.head.config
    strength = opt.strength or cfg["strength"]
    unrolled = [(n, strength) for n in (opt.ddim_steps or [cfg["ddim_steps"]])]
    print(f"exporting the diffusion head: step programs and unrolled {', '.join(f'N={n}' for n, _ in unrolled)} "
          f"at strength {strength}")
    export_refine(net, opt.save_dir, height, width, unrolled, formats)


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
    factor, metric, note = depth_scale(weights.get("use_stereo"), metric=weights.get("metric"))
    extra = {"min_depth": float(weights.min_depth), "max_depth": float(weights.max_depth),
             "camera": weights.get("camera"),
             "metric": metric, "depth_scale_factor": factor, "depth_note": note,
             provenance.RECORD_KEY: provenance.read_record(weights),   # what the weights were trained on
             "num_layers": int(weights.num_layers), "batch_coupled_filter": bool(opt.batch_coupled_filter),
             "trained_height": int(weights.height), "trained_width": int(weights.width)}
    try:
        if opt.precision == "fp32":
            print(f"exporting {layout} models at {height} x {width} ({' + '.join(formats)}) to {opt.save_dir}")
            config = export_models(nets["depth"], opt.save_dir, height, width, layout, formats, extra)
        else:
            from deployment.gate import Bounds, GateSplit
            from deployment.quantize import export_reduced
            print(f"exporting {opt.precision} models at {height} x {width} to {opt.save_dir}, gated on the test split "
                  f"of {opt.gate_split}")
            split = GateSplit(opt.gate_split, height, width, metric, factor)
            config = export_reduced(nets["depth"], opt.save_dir, height, width, layout, extra, opt.precision, split,
                                    opt.calib_images, opt.calib_count,
                                    Bounds(opt.max_abs_rel_change, opt.max_delta1_change))
    except DeployError as e:
        sys.exit(f"export.py: error: {e}")
    except KeyboardInterrupt:  # the temporary folders are gone already (finally clauses)
        sys.exit(f"export.py: interrupted; nothing written to {opt.save_dir}")
    if opt.refine and opt.precision == "fp32" and networks.has_refine_head(opt.load_weights_folder):
        export_refine_head(opt, nets["depth"], height, width, formats)
    files = sorted(f for part in config["parts"].values() for f in part["files"].values())
    print(f"wrote {', '.join(files)} and deploy.json to {opt.save_dir} "
          f"({'metric depth, x%g' % factor if metric else 'relative depth'})")
    if "accuracy" in config:
        acc = config["accuracy"]
        print(f"{opt.precision} accepted: abs_rel {acc['abs_rel_change']:+.2%} (bound "
              f"{acc['max_abs_rel_change']:.2%}), "
              f"a1 {acc['delta1_change_points']:+.2f} points (bound {acc['max_delta1_change']:g}) against fp32 on "
              f"{acc['gate_split']}, recorded in deploy.json")


if __name__ == "__main__":
    main()
