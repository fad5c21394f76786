"""Reduced precision for the CPU behind a task-metric gate (deployment/gate.py): export.py --precision
int8 | bf16 exports the fp32 model to a temporary folder, builds the reduced model from it, evaluates both
on the gate split and installs the reduced model only if the gate accepts it (nothing is written
otherwise).

int8: an ONNX model for ONNX Runtime, every convolution int8 unless the gate needs some float
(deployment/int8.py: onnxruntime.quantization, NNCF's accuracy control).
bf16: the fp32 Paddle programs run with oneDNN's bfloat16 kernels (Config.enable_onednn_bfloat16);
Paddle 3.3 ignores set_bfloat16_op under PIR, so no op can be kept in fp32 there.
"""
import os
import shutil
import tempfile

from deployment import gate
from deployment.config import CONFIG_NAME, DeployError, read_config, write_config
from utils.geometry.metrics import mean_metrics
from utils.io import image_io


# ------------------------------------------------------------------------------------------------
# bf16 (Paddle Inference, oneDNN)
# ------------------------------------------------------------------------------------------------

def bf16_supported():
    """True where Paddle's oneDNN can run bfloat16 on this CPU (AVX-512 BF16 or AMX)."""
    try:
        from paddle.base import core
    except ImportError:
        return False
    return bool(core.supports_bfloat16())


BF16_REFUSAL = ("--precision bf16: this CPU (or this Paddle build) has no bfloat16 support in oneDNN (needs "
                "AVX-512 BF16 or AMX); use --precision int8 or fp32")


def build_bf16(fp32_dir, out_dir, split, threads=0):
    """The Paddle programs of `fp32_dir` marked for oneDNN bfloat16 in `out_dir`, and the evaluation of
    fp32 and bf16 Paddle Inference. Returns (config, fp32 errors, bf16 errors, per-pixel figures, {})."""
    from deployment.runtime import DepthPredictor

    if not bf16_supported():
        raise DeployError(BF16_REFUSAL)
    config = read_config(fp32_dir, "paddle")
    lo, hi = config["min_depth"], config["max_depth"]
    reference = [DepthPredictor(fp32_dir, "paddle", cpu_threads=threads)(x) for x in split.inputs]
    bf16 = DepthPredictor(fp32_dir, "paddle", cpu_threads=threads, bf16=True)
    reduced = [bf16(x) for x in split.inputs]
    for info in config["parts"].values():
        for kind in ("program", "params"):
            shutil.copy2(os.path.join(fp32_dir, info["files"][kind]), os.path.join(out_dir, info["files"][kind]))
    config = dict(config, formats=["paddle"], precision="bf16")
    config["parts"] = {p: dict(info, files={k: v for k, v in info["files"].items() if k != "onnx"})
                       for p, info in config["parts"].items()}
    return (config, split.errors(reference, lo, hi), split.errors(reduced, lo, hi),
            gate.pixel_figures(reference, reduced, lo, hi), {})


# ------------------------------------------------------------------------------------------------
# export.py --precision int8 | bf16
# ------------------------------------------------------------------------------------------------

def install(src, save_dir, config):
    """Move the model files of `src` into save_dir (created) and write config there last, after
    removing any old deploy.json first (no moment where an old config describes new files)."""
    os.makedirs(save_dir, exist_ok=True)
    stale = os.path.join(save_dir, CONFIG_NAME)
    if os.path.exists(stale):
        os.remove(stale)
    for name in sorted(os.listdir(src)):
        if name != CONFIG_NAME and not name.startswith("."):
            os.replace(os.path.join(src, name), os.path.join(save_dir, name))
    write_config(save_dir, config)


def export_reduced(net, save_dir, height, width, layout, extra_config, precision, split, calib_images=None,
                   calib_count=16, bounds=gate.DEFAULT_BOUNDS, threads=0, log=print):
    """Export `net` in fp32 to a temporary folder, build the `precision` model from it (int8: one
    combined model, calibrated on `calib_count` photos of `calib_images`), evaluate both on the gate
    split and install the reduced model into save_dir only if gate.check accepts it (DeployError
    otherwise, nothing written). Returns the config written."""
    from deployment.export import export_models

    if precision not in ("int8", "bf16"):
        raise DeployError(f"precision {precision!r}: choose int8 or bf16 (fp32 is the plain export)")
    if precision == "int8":
        from deployment import int8
        int8.modules()  # a missing package is reported before minutes of work
        calib = int8.calibration_images(int8.find_images(calib_images), split.paths, calib_count)
        layout = "combined"  # the accuracy control quantises the network as one model
    elif not bf16_supported():
        raise DeployError(BF16_REFUSAL)
    parent = os.path.dirname(os.path.abspath(save_dir))
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".export_", dir=parent)
    try:
        fp32_dir, out_dir = os.path.join(work, "fp32"), os.path.join(work, precision)
        os.makedirs(out_dir)
        formats = ("paddle", "onnx") if precision == "int8" else ("paddle",)
        export_models(net, fp32_dir, height, width, layout, formats, extra_config)
        if precision == "int8":
            log(f"int8: {len(calib)} calibration photo(s) from {calib_images}")
            inputs = [image_io.preprocess(image_io.load_image(p), height, width) for p in calib]
            built = int8.build_int8(fp32_dir, out_dir, inputs, split, bounds, threads, log)
        else:
            built = build_bf16(fp32_dir, out_dir, split, threads)
        config, errors_fp32, errors_reduced, figures, extra = built
        before, after = mean_metrics(errors_fp32), mean_metrics(errors_reduced)
        log(f"{precision} on {split.name}: abs_rel {before['abs_rel']:.4f} (fp32) -> {after['abs_rel']:.4f}, "
            f"a1 {100 * before['a1']:.2f} -> {100 * after['a1']:.2f} %; per-pixel disparity change median "
            f"{figures['median_rel_error']:.2%}" + (f"; {len(extra['float_convs'])} of {extra['convs']} "
                                                    "convolutions kept float" if extra else ""))
        gate.check(before, after, bounds, precision, split.name)
        config["accuracy"] = gate.record(before, after, bounds, split, figures)
        if precision == "int8":
            config["accuracy"].update(extra, calib_images=calib_images, calib_count=len(calib))
        install(out_dir, save_dir, config)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return config

