"""Reduced precision for the CPU behind a task-metric gate (deployment/gate.py): int8 ONNX models
(ONNX Runtime) and bf16 (Paddle Inference with oneDNN), each evaluated against the fp32 model on a
test split with ground truth before anything is written.

int8: post-training static quantisation of the convolutions, QDQ format: per-output-channel int8
weights, uint8 activations with min-max ranges calibrated on the user's photos. Everything else (the
attention's matmuls and softmax, the guided filter, sigmoids, resizes, ELU) stays float. Which
convolutions stay float too is decided by NNCF's accuracy control (nncf.quantize_with_accuracy_control):
it quantises, ranks the quantised convolutions by how much each moves the gate's score on the split
and returns the most sensitive ones to float until the score is within the bounds. The model written
is then made by onnxruntime.quantization with those convolutions excluded: ONNX Runtime fuses its QDQ
convolutions (int32 biases, output quantised) into QLinearConv, NNCF's (float biases) it does not, and
ran them slower than fp32 here (bench/RESULTS.md). The gate measures that final model.

bf16: the fp32 Paddle programs run with oneDNN's bfloat16 kernels (Config.enable_onednn_bfloat16);
Paddle 3.3 ignores set_bfloat16_op under PIR, so no op can be kept in fp32 there.

The gate split (export.py's GateSplit) gives `name`, `scaling`, `inputs` (network inputs of its
frames), `paths` and `errors(disparities, min_depth, max_depth, indices)` (per-image evaluation rows).
Needs numpy, onnx, onnxruntime (+ ml_dtypes) and nncf for int8; Paddle only for bf16.
"""
import contextlib
import io
import logging
import os
import shutil
import tempfile

import numpy as np

from deployment import gate
from deployment.config import CONFIG_NAME, DeployError, read_config, write_config
from utils import image_io

_CALIB_BATCH = 4  # images per calibration run: the ranges merge, the activations do not pile up
RANKING_FRAMES = 8  # frames NNCF ranks the quantised convolutions on


# ------------------------------------------------------------------------------------------------
# Photos
# ------------------------------------------------------------------------------------------------

# KITTI folders below a drive that hold images which are not photos (depth maps)
NOT_PHOTOS = ("proj_depth", "depth_hints", "velodyne_points", "oxts")


def find_images(folder):
    """Every image under `folder`, recursively, folder by folder in sorted order (this project's
    outputs and KITTI's depth-map folders NOT_PHOTOS skipped)."""
    if not os.path.isdir(folder):
        raise DeployError(f"--calib_images {folder}: no such folder")
    paths = []
    for root, dirs, _ in os.walk(folder):  # top-down: the pruning and sorting below take effect
        dirs[:] = sorted(d for d in dirs if d not in NOT_PHOTOS)
        try:
            paths += image_io.list_images(root)
        except image_io.ImageLoadError:
            continue  # a folder without images (KITTI's drive folders hold only sub-folders)
    if not paths:
        raise DeployError(f"--calib_images {folder}: no images in it or below it")
    return paths


def calibration_images(paths, held_out, count):
    """`count` of `paths` spread evenly over them, none of `held_out` (the gate split's frames)."""
    held = {os.path.realpath(p) for p in held_out}
    free = [p for p in paths if os.path.realpath(p) not in held]
    if count < 1 or len(free) < count:
        raise DeployError(f"{len(free)} calibration photo(s) found besides the gate split's frames, need "
                          f"--calib_count {count}; give a folder with more photos or a smaller --calib_count")
    return [free[i] for i in sorted(set(np.linspace(0, len(free) - 1, count).round().astype(int).tolist()))]


def load_inputs(paths, height, width):
    """Network inputs (1 x 3 x height x width float32 each) of photos, as inference.py makes them."""
    return [image_io.preprocess(image_io.load_image(p), height, width) for p in paths]


# ------------------------------------------------------------------------------------------------
# int8: NNCF chooses the float convolutions, ONNX Runtime quantises the rest
# ------------------------------------------------------------------------------------------------

def _int8_modules():
    """(onnxruntime.quantization, nncf), or DeployError naming what to install."""
    os.environ.setdefault("NNCF_CI", "1")  # NNCF sends usage telemetry unless it is told it runs in CI
    try:
        import onnx  # noqa: F401
        import onnxruntime
        from onnxruntime import quantization
        import nncf
    except ImportError as e:
        raise DeployError(f"--precision int8 needs onnx, onnxruntime, ml_dtypes and nncf ({e}); "
                          "pip install onnx onnxruntime ml_dtypes nncf") from None
    onnxruntime.set_default_logger_severity(3)  # its optimiser lists every unused constant otherwise
    logging.getLogger("nncf").setLevel(logging.WARNING)  # one INFO line per tensor otherwise
    return quantization, nncf


def _session(model, threads):
    """An ONNX Runtime CPU session of a model path or serialised bytes."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _disparities(session, inputs):
    name = session.get_inputs()[0].name
    return [session.run(None, {name: x})[0] for x in inputs]


def prepare_onnx(src, dst):
    """The fp32 model as the quantisers want it: batch norms folded into the convolutions, shapes
    inferred, constants as initialisers (onnxruntime's quant_pre_process), and constant subgraphs folded
    (the attention's stacked K/Q/V kernel is a Concat of three weights, which must become one weight
    to be quantised)."""
    import onnx
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    quantization, _ = _int8_modules()
    # paddle2onnx's graphs defeat the symbolic shape inference (dynamic reshapes); onnx's own suffices
    quantization.quant_pre_process(src, dst, skip_symbolic_shape=True)
    model = onnx.load(dst)
    inits = {t.name: t for t in model.graph.initializer}
    kept = []
    for node in model.graph.node:  # topological order: a folded output is an initialiser for later nodes
        if node.input and len(node.output) == 1 and all(i in inits for i in node.input if i):
            graph = onnx.helper.make_graph([node], "fold", [], [onnx.helper.make_tensor_value_info(
                node.output[0], onnx.TensorProto.FLOAT, None)], initializer=[inits[i] for i in node.input if i])
            value = ReferenceEvaluator(onnx.helper.make_model(graph, opset_imports=model.opset_import)).run(None, {})[0]
            tensor = numpy_helper.from_array(np.asarray(value), node.output[0])
            model.graph.initializer.append(tensor)
            inits[node.output[0]] = tensor
        else:
            kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)
    onnx.save(model, dst)


def float_convs(candidate):
    """Names of the convolutions of an NNCF-quantised model whose input or weight is not dequantised."""
    producers = {o: n.op_type for n in candidate.graph.node for o in n.output}
    return tuple(sorted(n.name for n in candidate.graph.node if n.op_type == "Conv"
                        and not producers.get(n.input[0]) == producers.get(n.input[1]) == "DequantizeLinear"))


def choose_float_convs(prepared, score, frames, log=print):
    """The convolutions NNCF's accuracy control keeps float. NNCF quantises every convolution of the
    model at `prepared`, ranks them by how much returning each to float improves the score and returns
    the best-ranked ones to float until score(float_convs, indices) <= 1 on the split's frames
    0..frames-1; `score` evaluates the model the candidate stands for. Returns (names, convolutions)."""
    import onnx

    _, nncf = _int8_modules()
    from nncf.quantization.advanced_parameters import (AdvancedAccuracyRestorerParameters,
                                                       AdvancedQuantizationParameters)

    model = onnx.load(prepared)
    others = sorted({n.op_type for n in model.graph.node} - {"Conv"})
    feed = {model.graph.input[0].name: np.zeros([d.dim_value or 1 for d in
                                                 model.graph.input[0].type.tensor_type.shape.dim], np.float32)}
    seen = set()

    def validate(candidate, indices):  # NNCF: higher is better; 1 for fp32, accepted down to 0 (max_drop 1)
        indices, excluded = list(indices), float_convs(candidate)
        value = score(excluded, indices)
        if len(indices) == frames and excluded not in seen:  # a whole-split validation of a new candidate
            seen.add(excluded)
            log(f"  int8 accuracy control: {len(excluded)} float convolution(s), gate score {value:.2f} "
                "(accepted at <= 1)")
        return 1.0 - value, None

    # NNCF's own ranges are not used (the candidates are scored as ONNX Runtime models): one dummy input
    candidate = nncf.quantize_with_accuracy_control(
        model, nncf.Dataset([feed]), nncf.Dataset(list(range(frames))), validate, max_drop=1.0,
        drop_type=nncf.DropType.ABSOLUTE, preset=nncf.QuantizationPreset.MIXED, subset_size=1,
        ignored_scope=nncf.IgnoredScope(types=others),
        advanced_quantization_parameters=AdvancedQuantizationParameters(disable_bias_correction=True),
        advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
            ranking_subset_size=min(RANKING_FRAMES, frames), num_ranking_workers=1))
    return list(float_convs(candidate)), sum(n.op_type == "Conv" for n in model.graph.node)


def calibrate(prepared, feeds, workdir):
    """Min-max ranges of the convolutions' tensors over `feeds` (onnxruntime.quantization), saved as
    the calibration cache quantize_int8 reads; returns its path."""
    quantization, _ = _int8_modules()
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator

    class Reader(quantization.CalibrationDataReader):
        def __init__(self, items):
            self.items = iter(items)

        def get_next(self):
            return next(self.items, None)

    cache = os.path.join(workdir, "ranges.json")
    calibrator = create_calibrator(prepared, ["Conv"], augmented_model_path=os.path.join(workdir, "augmented.onnx"),
                                   calibrate_method=CalibrationMethod.MinMax)
    with contextlib.redirect_stdout(io.StringIO()):
        for start in range(0, len(feeds), _CALIB_BATCH):
            calibrator.collect_data(Reader(feeds[start:start + _CALIB_BATCH]))
        quantization.save_tensors_data(calibrator.compute_data(), cache)
    return cache


def quantize_int8(prepared, dst, ranges, excluded):
    """onnxruntime.quantization's QDQ int8 model of a prepared fp32 model: every convolution but
    `excluded`, per-channel int8 weights, uint8 activations with the min-max `ranges` (calibrate)."""
    quantization, _ = _int8_modules()
    from onnxruntime.quantization.calibrate import CalibrationMethod

    quantization.quantize_static(
        prepared, dst, None, quant_format=quantization.QuantFormat.QDQ, per_channel=True,
        activation_type=quantization.QuantType.QUInt8, weight_type=quantization.QuantType.QInt8,
        op_types_to_quantize=["Conv"], nodes_to_exclude=list(excluded), calibrate_method=CalibrationMethod.MinMax,
        calibration_cache_path=ranges)


def build_int8(fp32_dir, out_dir, calib_inputs, split, bounds, threads=0, log=print):
    """The int8 ONNX model of the combined deployment folder `fp32_dir` in `out_dir` (an empty
    folder) and the evaluation of both. Returns (config for out_dir without writing it, fp32 per-image
    errors, int8 per-image errors, per-pixel figures, {"float_convs", "convs"})."""
    config = read_config(fp32_dir, "onnxruntime")
    threads = threads or os.cpu_count() or 1
    lo, hi = config["min_depth"], config["max_depth"]
    src = os.path.join(fp32_dir, config["parts"]["model"]["files"]["onnx"])
    reference = _disparities(_session(src, threads), split.inputs)
    errors_fp32 = split.errors(reference, lo, hi)
    dst = os.path.join(out_dir, config["parts"]["model"]["files"]["onnx"])
    work = tempfile.mkdtemp(prefix=".quantize_", dir=out_dir)
    sessions = {}

    def score(excluded, indices):  # the gate's score of the int8 model with `excluded` float, on frames `indices`
        if excluded not in sessions:  # one model per candidate (the last one kept)
            sessions.clear()
            quantize_int8(prepared, dst, ranges, excluded)
            sessions[excluded] = _session(dst, threads)
        reduced = split.errors(_disparities(sessions[excluded], [split.inputs[i] for i in indices]), lo, hi, indices)
        return gate.score(gate.mean_metrics(errors_fp32[indices]), gate.mean_metrics(reduced), bounds)

    try:
        prepared = os.path.join(work, "prepared.onnx")
        prepare_onnx(src, prepared)
        ranges = calibrate(prepared, [{"image": x} for x in calib_inputs], work)
        log(f"int8: NNCF's accuracy control on {split.name} ({len(split.inputs)} frames) chooses the float "
            "convolutions (minutes)")
        excluded, convs = choose_float_convs(prepared, score, len(split.inputs), log)
        quantize_int8(prepared, dst, ranges, excluded)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    reduced = _disparities(_session(dst, threads), split.inputs)
    config = dict(config, formats=["onnx"], precision="int8")
    part = config["parts"]["model"]
    config["parts"] = {"model": dict(part, files={"onnx": part["files"]["onnx"]})}
    return (config, errors_fp32, split.errors(reduced, lo, hi), gate.pixel_figures(reference, reduced, lo, hi),
            {"float_convs": excluded, "convs": convs})


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
        _int8_modules()  # a missing package is reported before minutes of work
        calib = calibration_images(find_images(calib_images), split.paths, calib_count)
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
            built = build_int8(fp32_dir, out_dir, load_inputs(calib, height, width), split, bounds, threads, log)
        else:
            built = build_bf16(fp32_dir, out_dir, split, threads)
        config, errors_fp32, errors_reduced, figures, extra = built
        before, after = gate.mean_metrics(errors_fp32), gate.mean_metrics(errors_reduced)
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

