"""int8 ONNX models for ONNX Runtime behind the task-metric gate (deployment/gate.py); export.py
--precision int8 builds them through deployment/quantize.py. Free of Paddle.

The model: post-training static quantisation of the convolutions by onnxruntime.quantization, QDQ
format: per-output-channel int8 weights, uint8 activations with min-max ranges calibrated on the
user's photos. Everything else (the attention's matmuls and softmax, the guided filter, sigmoids,
resizes, ELU) stays float. ONNX Runtime fuses these QDQ convolutions (int32 biases, output quantised)
into QLinearConv.

Which convolutions stay float, in two steps:
1. every convolution int8. If the gate accepts it (one model built, one pass over the gate split),
   that is the model: no search.
2. otherwise NNCF's accuracy control (nncf.quantize_with_accuracy_control) ranks the convolutions by how
   much returning each alone to float improves the gate's score on RANKING_FRAMES frames (one ONNX Runtime
   model built and run per convolution: the slow part, announced with an estimate from step 1's timings),
   then returns the best-ranked ones to float, one at a time, until the score on the whole split is
   within the bounds. Every candidate is scored as the onnxruntime.quantization model it stands for, not
   as NNCF's own QDQ graph: NNCF's convolutions (float biases) are not fused by ONNX Runtime and ran slower
   than fp32 here (bench/RESULTS.md).
Needs numpy, onnx, onnxruntime (+ ml_dtypes) and nncf.
"""
import contextlib
import io
import logging
import os
import shutil
import tempfile
import time

import numpy as np

from deployment import gate
from deployment.config import DeployError, read_config
from utils.geometry.metrics import mean_metrics
from utils.io import image_io

_CALIB_BATCH = 4  # images per calibration run: the ranges merge, the activations do not pile up
RANKING_FRAMES = 8  # frames NNCF ranks the convolutions on
# KITTI folders below a drive that hold images which are not photos (depth maps)
NOT_PHOTOS = ("proj_depth", "depth_hints", "velodyne_points", "oxts")


def find_images(folder):
    """Every image under `folder`, recursively, folder by folder in sorted order (KITTI's depth-map
    folders NOT_PHOTOS skipped)."""
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


def modules():
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


def session(model, threads):
    """An ONNX Runtime CPU session of a model path or serialised bytes."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def disparities(sess, inputs):
    name = sess.get_inputs()[0].name
    return [sess.run(None, {name: x})[0] for x in inputs]


def prepare_onnx(src, dst):
    """The fp32 model as the quantisers want it: batch norms folded into the convolutions, shapes
    inferred, constants as initialisers (onnxruntime's quant_pre_process), and constant subgraphs folded
    (the attention's stacked K/Q/V kernel is a Concat of three weights, which must become one weight
    to be quantised)."""
    import onnx
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    quantization, _ = modules()
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


def calibrate(prepared, feeds, workdir):
    """Min-max ranges of the convolutions' tensors over `feeds` (onnxruntime.quantization), saved as
    the calibration cache quantize_int8 reads; returns its path."""
    quantization, _ = modules()
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
    quantization, _ = modules()
    from onnxruntime.quantization.calibrate import CalibrationMethod

    quantization.quantize_static(
        prepared, dst, None, quant_format=quantization.QuantFormat.QDQ, per_channel=True,
        activation_type=quantization.QuantType.QUInt8, weight_type=quantization.QuantType.QInt8,
        op_types_to_quantize=["Conv"], nodes_to_exclude=list(excluded), calibrate_method=CalibrationMethod.MinMax,
        calibration_cache_path=ranges)


def conv_names(model):
    return [n.name for n in model.graph.node if n.op_type == "Conv"]


def float_convs(candidate):
    """Names of the convolutions of an NNCF-quantised model whose input or weight is not dequantised."""
    producers = {o: n.op_type for n in candidate.graph.node for o in n.output}
    return tuple(sorted(n.name for n in candidate.graph.node if n.op_type == "Conv"
                        and not producers.get(n.input[0]) == producers.get(n.input[1]) == "DequantizeLinear"))


def choose_float_convs(prepared, evaluate, frames, log=print):
    """The convolutions NNCF's accuracy control keeps float. NNCF quantises every convolution of the
    model at `prepared`, ranks them by how much returning each to float improves the gate's score and
    returns the best-ranked ones to float until the score on frames 0..frames-1 is <= 1.
    evaluate(float convolution names, frame indices) -> (score, per-frame scores) scores the model a
    candidate stands for. Returns (names, number of convolutions)."""
    import onnx

    _, nncf = modules()
    from nncf.quantization.advanced_parameters import (AdvancedAccuracyRestorerParameters,
                                                       AdvancedQuantizationParameters)

    model = onnx.load(prepared)
    others = sorted({n.op_type for n in model.graph.node} - {"Conv"})
    feed = {model.graph.input[0].name: np.zeros([d.dim_value or 1 for d in
                                                 model.graph.input[0].type.tensor_type.shape.dim], np.float32)}
    seen = set()

    def validate(candidate, indices):  # NNCF: higher is better; 1 for fp32, accepted down to 0 (max_drop 1)
        indices, excluded = list(indices), float_convs(candidate)
        value, per_frame = evaluate(excluded, indices)
        if len(indices) == frames and excluded not in seen:  # a whole-split validation of a new candidate
            seen.add(excluded)
            log(f"  int8 accuracy control: {len(excluded)} float convolution(s), gate score {value:.2f} "
                "(accepted at <= 1)")
        return 1.0 - value, [1.0 - v for v in per_frame]

    # NNCF's own ranges are not used (the candidates are scored as ONNX Runtime models): one dummy input
    candidate = nncf.quantize_with_accuracy_control(
        model, nncf.Dataset([feed]), nncf.Dataset(list(range(frames))), validate, max_drop=1.0,
        drop_type=nncf.DropType.ABSOLUTE, preset=nncf.QuantizationPreset.MIXED, subset_size=1,
        ignored_scope=nncf.IgnoredScope(types=others),
        advanced_quantization_parameters=AdvancedQuantizationParameters(disable_bias_correction=True),
        advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
            ranking_subset_size=min(RANKING_FRAMES, frames), num_ranking_workers=1))
    return list(float_convs(candidate)), len(conv_names(model))


class _Scorer:
    """The gate's score of int8 models of the prepared model, by the set of float convolutions: each
    candidate built once (quantize_int8 into `dst`, the last one kept) and each (candidate, frames)
    scored once (`metrics` keeps the mean metrics of each). The all-float candidate is fp32 itself, score
    0 by definition. Remembers how long a build and a frame took (for the search's estimate)."""

    def __init__(self, prepared, dst, ranges, split, errors_fp32, bounds, depth_range, threads):
        self.prepared, self.dst, self.ranges, self.split = prepared, dst, ranges, split
        self.errors_fp32, self.bounds, self.depth_range, self.threads = errors_fp32, bounds, depth_range, threads
        import onnx

        self.all_convs = tuple(sorted(conv_names(onnx.load(prepared))))
        self.session, self.built, self.scores, self.metrics = None, None, {}, {}
        self.build_seconds = self.frame_seconds = 0.0

    def __call__(self, excluded, indices):
        excluded, indices = tuple(sorted(excluded)), tuple(indices)
        if excluded == self.all_convs:
            return 0.0, [0.0] * len(indices)
        if (excluded, indices) not in self.scores:
            if self.built != excluded:
                t = time.perf_counter()
                quantize_int8(self.prepared, self.dst, self.ranges, excluded)
                self.session, self.built = session(self.dst, self.threads), excluded
                self.build_seconds = time.perf_counter() - t
            t = time.perf_counter()
            reduced = disparities(self.session, [self.split.inputs[i] for i in indices])
            self.frame_seconds = (time.perf_counter() - t) / len(indices)
            rows = self.split.errors(reduced, *self.depth_range, indices)
            fp32 = self.errors_fp32[list(indices)]
            per_frame = [gate.score(mean_metrics(f[None]), mean_metrics(r[None]), self.bounds) for f, r in zip(fp32, rows)]
            self.metrics[excluded, indices] = mean_metrics(rows)
            self.scores[excluded, indices] = gate.score(mean_metrics(fp32), self.metrics[excluded, indices],
                                                        self.bounds), per_frame
        return self.scores[excluded, indices]

    def search_estimate(self, frames):
        """(seconds NNCF's ranking will take, seconds of each convolution returned to float afterwards)."""
        ranking = len(self.all_convs) * (self.build_seconds + min(RANKING_FRAMES, frames) * self.frame_seconds)
        return ranking, self.build_seconds + frames * self.frame_seconds


def _minutes(seconds):
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def build_int8(fp32_dir, out_dir, calib_inputs, split, bounds, threads=0, log=print):
    """The int8 ONNX model of the combined deployment folder `fp32_dir` in `out_dir` (an empty folder)
    and the evaluation of both: every convolution int8 if the gate accepts that, else NNCF's choice of
    float convolutions. Returns (config for out_dir without writing it, fp32 per-image errors, int8
    per-image errors, per-pixel figures, {"float_convs", "convs"})."""
    config = read_config(fp32_dir, "onnxruntime")
    threads = threads or os.cpu_count() or 1
    depth_range = config["min_depth"], config["max_depth"]
    src = os.path.join(fp32_dir, config["parts"]["model"]["files"]["onnx"])
    dst = os.path.join(out_dir, config["parts"]["model"]["files"]["onnx"])
    reference = disparities(session(src, threads), split.inputs)
    errors_fp32 = split.errors(reference, *depth_range)
    work = tempfile.mkdtemp(prefix=".quantize_", dir=out_dir)
    try:
        prepared = os.path.join(work, "prepared.onnx")
        prepare_onnx(src, prepared)
        ranges = calibrate(prepared, [{"image": x} for x in calib_inputs], work)
        score = _Scorer(prepared, dst, ranges, split, errors_fp32, bounds, depth_range, threads)
        frames = len(split.inputs)
        value, _ = score((), range(frames))
        excluded = []
        if value > 1:
            ranking, per_step = score.search_estimate(frames)
            abs_rel, a1 = gate.changes(mean_metrics(errors_fp32), score.metrics[(), tuple(range(frames))])
            log(f"int8, every convolution: abs_rel {abs_rel:+.2%}, a1 {a1:+.2f} points on {split.name}, beyond the "
                f"bounds; NNCF's accuracy control now ranks the {len(score.all_convs)} convolutions (about "
                f"{_minutes(ranking)} here: one model built and run on {min(RANKING_FRAMES, frames)} frames each), "
                f"then returns them to float one at a time (about {_minutes(per_step)} each). Ctrl-C stops it; "
                "nothing is written")
            excluded, _ = choose_float_convs(prepared, score, frames, log)
        if score.built != tuple(sorted(excluded)):
            quantize_int8(prepared, dst, ranges, excluded)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    reduced = disparities(session(dst, threads), split.inputs)
    config = dict(config, formats=["onnx"], precision="int8")
    part = config["parts"]["model"]
    config["parts"] = {"model": dict(part, files={"onnx": part["files"]["onnx"]})}
    return (config, errors_fp32, split.errors(reduced, *depth_range),
            gate.pixel_figures(reference, reduced, *depth_range), {"float_convs": excluded, "convs": len(score.all_convs)})
