"""Reduced precision for the CPU with an accuracy gate: int8 ONNX models (ONNX Runtime) and bf16
(Paddle Inference with oneDNN), each compared with the fp32 model before anything is written.

int8: post-training static quantisation (onnxruntime.quantization), QDQ format: every convolution
gets per-output-channel int8 weights and uint8 activations whose ranges are calibrated on the user's
photos with one of
    minmax      the range seen on the calibration images
    percentile  the 0.001 %- and 99.999 %-quantiles of each tensor's histogram
    entropy     the clipping that minimises the KL divergence of the 8-bit histogram (TensorRT's)
("auto" builds all three and keeps the one with the lowest median error). fp32 islands: everything
that is not a convolution (the guided filter and its normalisation, the attention softmax and
matmuls, sigmoids, resizes, ELU) stays float; so do the convolutions that read the image and the
one that writes the disparity logits (where the sigmoid saturates, the relative disparity error is
the logit's absolute error: quantising that convolution alone moved the quick-start weights'
disparity by 9.5 % median, bench/RESULTS.md).

bf16: the fp32 Paddle programs run with oneDNN's bfloat16 kernels (Config.enable_onednn_bfloat16);
Paddle 3.3 ignores set_bfloat16_op under PIR, so no op can be kept in fp32 there.

Gate: the relative disparity error of every pixel of images NOT used for calibration,
    e = |s_r - s_f| / s_f,   s = 1/max_depth + (1/min_depth - 1/max_depth) disp
(s is disp_to_depth's scaled disparity, an inverse depth that is never 0, so e is also the relative
depth error |D_r - D_f| / D_r). The figures (median, 95th percentile) go into deploy.json under
"accuracy"; a model whose median exceeds the bound (1 % unless --max_rel_error says otherwise) is
refused and nothing is written.

Needs numpy, onnx and onnxruntime (+ ml_dtypes, which onnxruntime.quantization imports); no Paddle
except for bf16, which is measured with Paddle Inference.
"""
import contextlib
import io
import os
import shutil
import tempfile

import numpy as np

from deployment.config import CONFIG_NAME, LAYOUTS, DeployError, read_config, write_config
from utils.io import image_io

CALIB_METHODS = ("minmax", "percentile", "entropy")
DEFAULT_MAX_REL_ERROR = 0.01
# Histogram settings: onnxruntime's defaults give entropy 128 bins for 128 quantised bins, i.e. no
# clipping at all (the same ranges as minmax); 2048 bins let it choose, as TensorRT's calibrator.
_CALIBRATOR_OPTIONS = {"minmax": {},
                       "percentile": {"percentile": 99.999, "symmetric": False, "num_bins": 2048},
                       "entropy": {"num_bins": 2048, "num_quantized_bins": 128}}
# Only convolutions: also quantising Concat/Slice/Reshape/Transpose/Split/MaxPool saved 5 % of the time
# and raised the error from 5.0 to 7.3 % (bench/RESULTS.md)
QUANTIZED_OPS = ("Conv",)
_CALIB_BATCH = 4  # images per calibration run: the histograms merge, the activations do not pile up


# ------------------------------------------------------------------------------------------------
# Images and errors
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


def split_images(paths, calib_count, holdout_count):
    """(calibration, held-out): `calib_count` images spread evenly over `paths`, and up to
    `holdout_count` of the others, also spread evenly; never the same file in both."""
    if calib_count < 1 or holdout_count < 1:
        raise DeployError("--calib_count and the number of held-out images must be at least 1")
    if len(paths) < calib_count + 1:
        raise DeployError(f"{len(paths)} image(s) found for calibration, need at least --calib_count + 1 = "
                          f"{calib_count + 1} (the rest measure the error); give a folder with more photos "
                          "or a smaller --calib_count")
    calib_idx = set(np.linspace(0, len(paths) - 1, calib_count).round().astype(int).tolist())
    rest = [p for i, p in enumerate(paths) if i not in calib_idx]
    calib = [paths[i] for i in sorted(calib_idx)]
    held_idx = np.linspace(0, len(rest) - 1, min(holdout_count, len(rest))).round().astype(int)
    return calib, [rest[i] for i in sorted(set(held_idx.tolist()))]


def load_inputs(paths, height, width):
    """Network inputs (1 x 3 x height x width float32 each) of photos, as inference.py makes them."""
    return [image_io.preprocess(image_io.load_image(p), height, width) for p in paths]


def scaled_disparity(disp, min_depth, max_depth):
    """disp_to_depth's scaled disparity 1/max + (1/min - 1/max) disp (float64), an inverse depth > 0."""
    return 1.0 / max_depth + (1.0 / min_depth - 1.0 / max_depth) * np.asarray(disp, np.float64)


def relative_errors(reference, reduced, min_depth, max_depth):
    """Per-pixel |s_r - s_f| / s_f of lists of disparities (fp32 `reference`, `reduced`), flattened."""
    out = []
    for f, r in zip(reference, reduced):
        s_f, s_r = scaled_disparity(f, min_depth, max_depth), scaled_disparity(r, min_depth, max_depth)
        out.append((np.abs(s_r - s_f) / s_f).ravel())
    return np.concatenate(out)


def error_figures(errors):
    """{"median_rel_error", "p95_rel_error", "worst_pixel_rel_error"} of per-pixel errors."""
    return {"median_rel_error": float(np.median(errors)), "p95_rel_error": float(np.percentile(errors, 95)),
            "worst_pixel_rel_error": float(np.max(errors))}


# ------------------------------------------------------------------------------------------------
# int8 (ONNX Runtime)
# ------------------------------------------------------------------------------------------------

def _quantization_module():
    try:
        import onnx  # noqa: F401
        import onnxruntime
        from onnxruntime import quantization
    except ImportError as e:
        raise DeployError(f"--precision int8 needs onnx, onnxruntime and ml_dtypes ({e}); "
                          "pip install onnx onnxruntime ml_dtypes") from None
    onnxruntime.set_default_logger_severity(3)  # its optimiser lists every unused constant otherwise
    return quantization


def _session(path, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _run_chain(sessions, image):
    arrays = [image]
    for s in sessions:
        arrays = s.run(None, {i.name: a for i, a in zip(s.get_inputs(), arrays)})
    return arrays


def prepare_onnx(src, dst):
    """The fp32 model as the quantiser wants it: batch norms folded into the convolutions, constants
    as initialisers (onnxruntime's quant_pre_process), and constant subgraphs folded (the attention's
    stacked K/Q/V kernel is a Concat of three weights, which must become one weight to be quantised)."""
    import onnx
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    quantization = _quantization_module()
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


def fp32_island_convs(model, reads_image=True, writes_disparity=True):
    """Names of the convolutions kept in fp32: those reached from the model's inputs (`reads_image`:
    the first part, whose input is the image) and those that reach its outputs (`writes_disparity`:
    the last part), without passing another convolution."""
    producers = {o: n for n in model.graph.node for o in n.output}
    consumers = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    islands = set()

    def walk(tensors, downward):
        seen = set()
        while tensors:
            t = tensors.pop()
            for node in (consumers.get(t, []) if downward else [producers[t]] if t in producers else []):
                if node.name in seen:
                    continue
                seen.add(node.name)
                if node.op_type == "Conv":
                    islands.add(node.name)
                else:
                    tensors.extend(node.output if downward else node.input)

    if reads_image:
        walk([i.name for i in model.graph.input], True)
    if writes_disparity:
        walk([o.name for o in model.graph.output], False)
    return sorted(islands)


def _calibrate(prepared, feeds, method, cache, workdir):
    """Tensor ranges of `method` over `feeds` (list of {input: array}) saved to `cache` (JSON)."""
    quantization = _quantization_module()
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator

    class Reader(quantization.CalibrationDataReader):
        def __init__(self, items):
            self.items = iter(items)

        def get_next(self):
            return next(self.items, None)

    kind = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
            "entropy": CalibrationMethod.Entropy}[method]
    calibrator = create_calibrator(prepared, list(QUANTIZED_OPS),
                                   augmented_model_path=os.path.join(workdir, "augmented.onnx"),
                                   calibrate_method=kind, extra_options=dict(_CALIBRATOR_OPTIONS[method]))
    with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print their progress
        for start in range(0, len(feeds), _CALIB_BATCH):
            calibrator.collect_data(Reader(feeds[start:start + _CALIB_BATCH]))
        quantization.save_tensors_data(calibrator.compute_data(), cache)
    return kind


def quantize_int8(prepared, dst, feeds, method, workdir, reads_image=True, writes_disparity=True):
    """QDQ int8 model of a prepared fp32 model (prepare_onnx) calibrated with `method` on `feeds`,
    with the fp32 islands of fp32_island_convs. Returns the island convolutions' names."""
    import onnx

    quantization = _quantization_module()
    cache = os.path.join(workdir, f"ranges_{method}.json")
    kind = _calibrate(prepared, feeds, method, cache, workdir)
    islands = fp32_island_convs(onnx.load(prepared, load_external_data=False), reads_image, writes_disparity)
    quantization.quantize_static(
        prepared, dst, None, quant_format=quantization.QuantFormat.QDQ, per_channel=True,
        activation_type=quantization.QuantType.QUInt8, weight_type=quantization.QuantType.QInt8,
        op_types_to_quantize=list(QUANTIZED_OPS), nodes_to_exclude=islands, calibrate_method=kind,
        calibration_cache_path=cache)
    return islands


def build_int8(fp32_dir, out_dir, calib_inputs, held_inputs, method="auto", threads=0, log=print):
    """int8 ONNX models of the deployment folder `fp32_dir` (exported with ONNX) into `out_dir` (an
    empty folder): each part calibrated on its inputs under the fp32 parts before it, the error
    measured end to end on `held_inputs`. method "auto" tries every calibration method and keeps the
    lowest median error. Returns (config for out_dir without writing it, figures, per-method medians)."""
    config = read_config(fp32_dir, "onnxruntime")
    threads = threads or os.cpu_count() or 1
    parts = LAYOUTS[config["layout"]]
    fp32 = [_session(os.path.join(fp32_dir, config["parts"][p]["files"]["onnx"]), threads) for p in parts]
    reference = [_run_chain(fp32, x)[0] for x in held_inputs]
    lo, hi = config["min_depth"], config["max_depth"]
    work = tempfile.mkdtemp(prefix=".quantize_", dir=out_dir)
    try:
        prepared, feeds = [], []
        calib_arrays = [[x] for x in calib_inputs]
        for part, session in zip(parts, fp32):
            src = os.path.join(fp32_dir, config["parts"][part]["files"]["onnx"])
            prepared.append(os.path.join(work, f"{part}.prepared.onnx"))
            prepare_onnx(src, prepared[-1])
            names = [i.name for i in session.get_inputs()]
            feeds.append([dict(zip(names, arrays)) for arrays in calib_arrays])
            calib_arrays = [session.run(None, f) for f in feeds[-1]]
        best, results = None, {}
        for m in (CALIB_METHODS if method == "auto" else (method,)):
            files = [os.path.join(work, f"{part}.{m}.onnx") for part in parts]
            islands = []
            for k, (src, dst, part_feeds) in enumerate(zip(prepared, files, feeds)):
                islands += quantize_int8(src, dst, part_feeds, m, work, k == 0, k == len(parts) - 1)
            reduced = [_run_chain([_session(f, threads) for f in files], x)[0] for x in held_inputs]
            figures = error_figures(relative_errors(reference, reduced, lo, hi))
            results[m] = figures["median_rel_error"]
            log(f"int8 with {m} calibration: median relative disparity error {figures['median_rel_error']:.2%}, "
                f"95th percentile {figures['p95_rel_error']:.2%} on {len(held_inputs)} held-out image(s)")
            if best is None or figures["median_rel_error"] < best[1]["median_rel_error"]:
                best = (m, figures, files, islands)
        m, figures, files, islands = best
        for part, f in zip(parts, files):
            os.replace(f, os.path.join(out_dir, config["parts"][part]["files"]["onnx"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    config = dict(config, formats=["onnx"], precision="int8")
    config["parts"] = {p: dict(info, files={"onnx": info["files"]["onnx"]}) for p, info in config["parts"].items()}
    figures.update(calib_method=m, calib_methods_tried=results, fp32_island_convs=len(islands))
    return config, figures


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


def build_bf16(fp32_dir, out_dir, held_inputs, threads=0, log=print):
    """The Paddle programs of `fp32_dir` marked for oneDNN bfloat16 in `out_dir`, with the error of
    bf16 against fp32 Paddle Inference on `held_inputs`. Returns (config, figures)."""
    from deployment.runtime import DepthPredictor

    if not bf16_supported():
        raise DeployError("--precision bf16: this CPU (or this Paddle build) has no bfloat16 support in "
                          "oneDNN (needs AVX-512 BF16 or AMX); use --precision int8 or fp32")
    config = read_config(fp32_dir, "paddle")
    fp32 = DepthPredictor(fp32_dir, "paddle", cpu_threads=threads)
    bf16 = DepthPredictor(fp32_dir, "paddle", cpu_threads=threads, bf16=True)
    reference = [fp32(x) for x in held_inputs]
    reduced = [bf16(x) for x in held_inputs]
    figures = error_figures(relative_errors(reference, reduced, config["min_depth"], config["max_depth"]))
    log(f"bf16: median relative disparity error {figures['median_rel_error']:.2%}, 95th percentile "
        f"{figures['p95_rel_error']:.2%} on {len(held_inputs)} held-out image(s)")
    for info in config["parts"].values():
        for kind in ("program", "params"):
            shutil.copy2(os.path.join(fp32_dir, info["files"][kind]), os.path.join(out_dir, info["files"][kind]))
    config = dict(config, formats=["paddle"], precision="bf16")
    config["parts"] = {p: dict(info, files={k: v for k, v in info["files"].items() if k != "onnx"})
                       for p, info in config["parts"].items()}
    return config, figures


# ------------------------------------------------------------------------------------------------
# The gate
# ------------------------------------------------------------------------------------------------

def gate(figures, max_rel_error, precision):
    """Raise DeployError (nothing is written then) when the median error exceeds the bound."""
    median = figures["median_rel_error"]
    if not median <= max_rel_error:  # NaN fails too
        raise DeployError(
            f"the {precision} model's median relative disparity error is {median:.2%} on held-out images "
            f"(95th percentile {figures['p95_rel_error']:.2%}), above the bound of {max_rel_error:.2%}; nothing "
            f"written. Calibrate on more (and more typical) photos with --calib_images/--calib_count, try "
            f"another --calib_method, or accept it explicitly with --max_rel_error")


def accuracy_record(figures, max_rel_error, calib_paths, held_paths, calib_root):
    """The "accuracy" entry of deploy.json."""
    rel = lambda p: os.path.relpath(p, calib_root)  # noqa: E731
    return dict(figures, bound=float(max_rel_error), metric=(
        "|s_r - s_f| / s_f per pixel, s = 1/max_depth + (1/min_depth - 1/max_depth) disp, over the held-out images"),
        calib_images=calib_root, calib_count=len(calib_paths), heldout=[rel(p) for p in held_paths])


def describe(config):
    """The one line inference.py prints about a folder's precision (None for fp32 folders)."""
    precision = config.get("precision", "fp32")
    if precision == "fp32":
        return None
    acc = config.get("accuracy", {})
    if "median_rel_error" not in acc:
        return f"precision {precision} (no recorded error)"
    line = (f"precision {precision}: median relative disparity error {acc['median_rel_error']:.2%}, 95th "
            f"percentile {acc['p95_rel_error']:.2%} against fp32 on {len(acc.get('heldout', []))} held-out image(s)")
    if "metrics_change" in acc:
        line += f"; abs_rel change on the test split {acc['metrics_change'].get('abs_rel', 0):+.4f}"
    return line


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


# ------------------------------------------------------------------------------------------------
# export.py --precision int8 | bf16
# ------------------------------------------------------------------------------------------------

HELDOUT_COUNT = 8  # held-out photos the error is measured on


def export_reduced(net, save_dir, height, width, layout, extra_config, precision, calib_images, calib_count=16,
                   calib_method="auto", max_rel_error=DEFAULT_MAX_REL_ERROR, threads=0, log=print, evaluate=None):
    """Export `net` in fp32 to a temporary folder, build the `precision` model from it, measure it
    against fp32 on held-out photos of `calib_images` and install it into save_dir only if its
    median relative disparity error is within `max_rel_error` (DeployError otherwise, nothing
    written). `evaluate(DepthPredictor) -> {metric: value}` (optional): the evaluation metrics of a
    test split, recorded for fp32 and for the reduced model. Returns the config written."""
    from deployment.export import export_models

    if precision not in ("int8", "bf16"):
        raise DeployError(f"precision {precision!r}: choose int8 or bf16 (fp32 is the plain export)")
    if precision == "int8":
        _quantization_module()  # a missing package is reported before minutes of work
    elif not bf16_supported():
        raise DeployError("--precision bf16: this CPU (or this Paddle build) has no bfloat16 support in "
                          "oneDNN (needs AVX-512 BF16 or AMX); use --precision int8 or fp32")
    paths = find_images(calib_images)
    if precision == "int8":
        calib, held = split_images(paths, calib_count, HELDOUT_COUNT)
    else:  # nothing is calibrated: any photos measure the error
        calib, held = [], [paths[i] for i in sorted(set(np.linspace(0, len(paths) - 1, HELDOUT_COUNT).round()
                                                        .astype(int).tolist()))] if paths else []
        if not held:
            raise DeployError(f"--calib_images {calib_images}: no images found to measure the bf16 error on")
    parent = os.path.dirname(os.path.abspath(save_dir))
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".export_", dir=parent)
    try:
        fp32_dir, out_dir = os.path.join(work, "fp32"), os.path.join(work, precision)
        os.makedirs(out_dir)
        formats = ("paddle", "onnx") if precision == "int8" else ("paddle",)
        export_models(net, fp32_dir, height, width, layout, formats, extra_config)
        log(f"{precision}: {len(calib)} calibration and {len(held)} held-out image(s) from {calib_images}")
        held_inputs = load_inputs(held, height, width)
        if precision == "int8":
            config, figures = build_int8(fp32_dir, out_dir, load_inputs(calib, height, width), held_inputs,
                                         calib_method, threads, log)
        else:
            config, figures = build_bf16(fp32_dir, out_dir, held_inputs, threads, log)
        gate(figures, max_rel_error, precision)
        config["accuracy"] = accuracy_record(figures, max_rel_error, calib, held, calib_images)
        if evaluate is not None:
            from deployment.runtime import DepthPredictor
            write_config(out_dir, config)  # the predictor reads it; install() writes it again, last
            backend = "onnxruntime" if precision == "int8" else "paddle"
            before = evaluate(DepthPredictor(fp32_dir, backend, cpu_threads=threads))
            after = evaluate(DepthPredictor(out_dir, backend, cpu_threads=threads))
            if before is not None:
                config["accuracy"].update(metrics_fp32=before, metrics=after,
                                          metrics_change={k: after[k] - before[k] for k in before})
                log(f"{precision} on the test split: abs_rel {before['abs_rel']:.4f} (fp32) -> {after['abs_rel']:.4f}, "
                    f"a1 {before['a1']:.4f} -> {after['a1']:.4f}")
        install(out_dir, save_dir, config)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return config
