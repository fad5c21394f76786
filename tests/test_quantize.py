"""export.py --precision int8 / bf16 (deployment/quantize.py, int8.py, gate.py): the task-metric gate
accepts a model whose evaluation metrics on the gate split stay within the bounds and refuses one
beyond them, writing nothing; the figures deploy.json records (both metric sets and the per-pixel
change) equal an independent numpy recomputation; the int8 model runs through inference.py on ONNX
Runtime.

Tamed weights (tests/support/lsuv.py, activations O(1)) at 64 x 96; the gate split is the fixture's
synthetic test split (drive 2), calibration photos come from drive 1. Cases with a KNOWN metric change
replace the quantiser by a deliberate damage (the square root of the disparity) whose metrics the test
computes itself from the fp32 network's output.

Marked slow: each int8 export calibrates, gates and writes through export.py (20-30 s each).
"""
import functools
import json
import os
import re

import cv2
import numpy as np
import paddle
import pytest

import networks
from deployment import gate, int8, quantize
from deployment.config import CONFIG_NAME
from tests.support.lsuv import tame_weights
from tests.synthetic_fixture import synthetic_kitti  # noqa: F401
from utils.cameras import kitti_layout
from utils.io import image_io

pytestmark = pytest.mark.slow

H, W = 64, 96
BOUNDS = ("--max_abs_rel_change", "0.05", "--max_delta1_change", "2")


def split_frames(info):
    """The synthetic test split's photos (drive 2, left camera)."""
    lines = kitti_layout.read_split(os.path.join(info["data_path"], "splits", "test_files.txt"))
    return [kitti_layout.image_path(info["data_path"], *kitti_layout.parse_split_line(line)[:3]) for line in lines]


def calibration_drive(info):
    """Folder of drive 1 (both cameras): the calibration photos; the test frames are drive 2's."""
    return os.path.join(info["data_path"], info["drives"][0])


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Weights tamed at 192 x 640 on a natural photo (activations O(1), as a trained network's), saved
    for 64 x 96 as monocular weights (relative depth: the gate median-scales)."""
    from skimage import data
    paddle.seed(0)
    # Paddle's default initialisation (build_net), not build_nets' init_as_original: its disparity bias
    # of -3 over a nearly constant output is what taming scales up, saturating the sigmoid
    nets = {"depth": networks.build_net("depth")}
    tame_weights(nets, paddle.to_tensor(image_io.preprocess(image_io.load_image(data.astronaut()), 192, 640)))
    folder = str(tmp_path_factory.mktemp("quantize") / "tamed")
    networks.save_weights_folder(folder, nets, {"height": H, "width": W, "use_stereo": False})
    return folder


def export(weights_folder, save_dir, info, *extra):
    import export as export_script
    export_script.main(["--load_weights_folder", weights_folder, "--save_dir", save_dir, "--precision", "int8",
                        "--gate_split", info["data_path"], "--calib_images", calibration_drive(info),
                        "--calib_count", "6", *extra])


@pytest.fixture(scope="module")
def int8_folder(weights, synthetic_kitti, tmp_path_factory):  # noqa: F811
    """A real int8 export (ONNX Runtime's quantiser). Bounds of 5 % and 2 points: these weights move abs_rel
    by ~3 % with every convolution int8, so the first model passes; at the default bounds NNCF would rank
    all 76 convolutions (one ONNX Runtime model each), minutes more than a test should take."""
    out = str(tmp_path_factory.mktemp("int8") / "deploy")
    export(weights, out, synthetic_kitti, *BOUNDS)
    return out


@functools.lru_cache(maxsize=None)
def depth_net(weights_folder):
    return networks.load_weights_folder(weights_folder)[1]["depth"]


def eager(weights_folder, paths):
    net = depth_net(weights_folder)
    with paddle.no_grad():
        return [net.disparity(paddle.to_tensor(image_io.preprocess(image_io.load_image(p), H, W))).numpy()
                for p in paths]


def onnx_disparities(model_path, paths):
    import onnxruntime as ort
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    return [session.run(None, {"image": image_io.preprocess(image_io.load_image(p), H, W)})[0] for p in paths]


def numpy_metrics(disps, info, lo=0.1, hi=100.0):
    """(abs_rel, a1) of sigmoid disparities against the split's velodyne ground truth, written out here:
    scaled disparity resized to the map, inverted, every gt > 0, median-scaled, clipped to [1e-3, 80]."""
    gts = np.load(os.path.join(info["data_path"], "splits", "gt_depths.npz"), allow_pickle=True)["data"]
    rows = []
    for d, gt in zip(disps, gts):
        s = (1 / hi + (1 / lo - 1 / hi) * d[0, 0].astype(np.float64)).astype(np.float32)
        s = cv2.resize(s, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_LINEAR)
        g, p = gt[gt > 0].astype(np.float64), 1.0 / s[gt > 0].astype(np.float64)
        p = np.clip(p * np.median(g) / np.median(p), 1e-3, 80)
        rows.append((np.mean(np.abs(g - p) / g), np.mean(np.maximum(g / p, p / g) < 1.25)))
    return tuple(np.mean(rows, axis=0))


def read_config(folder):
    with open(os.path.join(folder, CONFIG_NAME)) as f:
        return json.load(f)


# ------------------------------------------------------------------------------------------------ the gate

def test_gate_arithmetic_at_its_bounds():
    before = {"abs_rel": 0.200, "a1": 0.800}
    bounds = gate.Bounds(0.01, 0.5)
    within = {"abs_rel": 0.2019, "a1": 0.7952}          # +0.95 % relative, -0.48 points
    assert gate.changes(before, within) == pytest.approx((0.0095, -0.48))
    assert gate.score(before, within, bounds) == pytest.approx(0.96)
    gate.check(before, within, bounds, "int8", "split")
    for after, worst in (({"abs_rel": 0.1978, "a1": 0.8}, 1.1), ({"abs_rel": 0.2, "a1": 0.8060}, 1.2)):
        assert gate.score(before, after, bounds) == pytest.approx(worst)
        with pytest.raises(quantize.DeployError, match="beyond the bounds of 1.00% and 0.5 points; nothing written"):
            gate.check(before, after, bounds, "int8", "split")
    with pytest.raises(quantize.DeployError):  # a NaN metric never passes
        gate.check(before, {"abs_rel": float("nan"), "a1": 0.8}, bounds, "int8", "split")


def sqrt_of_output(prepared, dst, ranges, excluded):
    """A deliberately damaged 'quantisation': the fp32 model with the square root of its disparity."""
    import onnx
    model = onnx.load(prepared)
    out = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [o + "_fp32" if o == out else o for o in node.output]
    model.graph.node.append(onnx.helper.make_node("Sqrt", [out + "_fp32"], [out]))
    onnx.save(model, dst)


@pytest.fixture
def damaged(monkeypatch, weights, synthetic_kitti):  # noqa: F811
    """export.py's int8 path with the quantiser replaced by sqrt_of_output and NNCF's search by a stub that
    records its calls and keeps nothing float, and the fp32 disparities of the eager network, from which
    the test computes the metric change that damage makes."""
    searches = []
    monkeypatch.setattr(int8, "choose_float_convs", lambda *args: searches.append(args) or ([], 0))
    monkeypatch.setattr(int8, "quantize_int8", sqrt_of_output)
    return eager(weights, split_frames(synthetic_kitti)), searches


@pytest.mark.slow
def test_gate_refuses_a_known_change_and_writes_nothing(damaged, weights, synthetic_kitti, tmp_path,  # noqa: F811
                                                        capsys):
    disps, searches = damaged
    out = tmp_path / "deploy"
    with pytest.raises(SystemExit) as exc:
        export(weights, str(out), synthetic_kitti)
    message = str(exc.value.code)
    assert message.startswith("export.py: error: the int8 model moves abs_rel by ") and "\n" not in message
    before = numpy_metrics(disps, synthetic_kitti)
    after = numpy_metrics([np.sqrt(d) for d in disps], synthetic_kitti)
    rel, points = 100 * (after[0] - before[0]) / before[0], 100 * (after[1] - before[1])
    shown = re.search(r"abs_rel by ([-+0-9.]+)% .* a1 by ([-+0-9.]+) points", message)
    assert float(shown.group(1)) == pytest.approx(rel, abs=0.011)
    assert float(shown.group(2)) == pytest.approx(points, abs=0.011)
    assert abs(rel) > 1  # the damage is beyond the default bound
    assert not out.exists() and os.listdir(tmp_path) == []  # no temporary folder left either
    # the first model (every convolution int8) failed: the search ran, announced with its figures and an estimate
    assert len(searches) == 1
    announced = re.search(r"int8, every convolution: abs_rel ([-+0-9.]+)%, a1 ([-+0-9.]+) points on .*, beyond the "
                          r"bounds; NNCF's accuracy control now ranks the (\d+) convolutions \(about \d+ (s|min) here",
                          capsys.readouterr().out)
    assert float(announced.group(1)) == pytest.approx(rel, abs=0.011) and int(announced.group(3)) > 50


@pytest.mark.slow
def test_gate_accepts_the_same_change_within_wider_bounds(damaged, weights, synthetic_kitti, tmp_path):  # noqa: F811
    disps, searches = damaged
    before = numpy_metrics(disps, synthetic_kitti)
    after = numpy_metrics([np.sqrt(d) for d in disps], synthetic_kitti)
    rel, points = (after[0] - before[0]) / before[0], 100 * (after[1] - before[1])
    out = str(tmp_path / "deploy")
    export(weights, out, synthetic_kitti, "--max_abs_rel_change", str(abs(rel) * 1.05),
           "--max_delta1_change", str(abs(points) * 1.05 + 1e-6))
    acc = read_config(out)["accuracy"]
    assert acc["abs_rel_change"] == pytest.approx(rel, rel=1e-3, abs=1e-6)
    assert acc["delta1_change_points"] == pytest.approx(points, abs=1e-3)
    assert acc["metrics_fp32"]["abs_rel"] == pytest.approx(before[0], rel=1e-4)
    assert acc["metrics"]["a1"] == pytest.approx(after[1], abs=1e-5)
    assert searches == [] and acc["float_convs"] == []  # the first model passed: no search


def tiny_conv_chain(path):
    """An ONNX model image -> Conv A -> Relu -> Conv B -> Relu -> Conv C -> Relu (random weights)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    nodes, weights, previous = [], [], "image"
    for name, channels in (("A", 3), ("B", 4), ("C", 4)):
        weights.append(numpy_helper.from_array(rng.normal(size=(4, channels, 3, 3)).astype(np.float32), f"w{name}"))
        nodes += [helper.make_node("Conv", [previous, f"w{name}"], [f"c{name}"], name=name, pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{name}"], [f"r{name}"], name=f"relu{name}")]
        previous = f"r{name}"
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info(previous, TensorProto.FLOAT, [1, 4, 8, 8])], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def test_accuracy_control_returns_the_convolution_the_gate_needs_float(tmp_path):
    """A gate that passes only with convolution B float (score 0.5, else 2): NNCF's search, fed with the
    float set of each candidate, must return exactly B; the fp32 model (all float) is scored too."""
    tiny_conv_chain(str(tmp_path / "tiny.onnx"))
    scored = []

    def evaluate(excluded, indices):
        scored.append(excluded)
        value = 0.5 if "B" in excluded else 2.0
        return value, [value] * len(indices)

    assert int8.choose_float_convs(str(tmp_path / "tiny.onnx"), evaluate, 4, log=lambda _: None) == (["B"], 3)
    assert ("A", "B", "C") in scored and () in scored


# ------------------------------------------------------------------------------------------------ real int8

@pytest.mark.slow
def test_int8_export_records_task_metrics_and_pixel_figures(int8_folder, weights, synthetic_kitti):  # noqa: F811
    config = read_config(int8_folder)
    acc = config["accuracy"]
    assert config["precision"] == "int8" and config["formats"] == ["onnx"] and config["layout"] == "combined"
    assert sorted(os.listdir(int8_folder)) == [CONFIG_NAME, "model.onnx"]
    assert acc["calib_count"] == 6 and acc["gate_frames"] == len(split_frames(synthetic_kitti))
    assert acc["max_abs_rel_change"] == 0.05 and acc["max_delta1_change"] == 2
    assert set(acc["metrics"]) == set(acc["metrics_fp32"]) == {"abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2",
                                                                "a3"}
    paths = split_frames(synthetic_kitti)
    reduced = onnx_disparities(os.path.join(int8_folder, "model.onnx"), paths)
    reference = eager(weights, paths)
    # the recorded metrics of both models equal a numpy recomputation (fp32: the eager network, which
    # the gate's fp32 ONNX model matches to ~1e-5)
    assert numpy_metrics(reduced, synthetic_kitti) == pytest.approx((acc["metrics"]["abs_rel"], acc["metrics"]["a1"]),
                                                                    rel=1e-5)
    assert numpy_metrics(reference, synthetic_kitti) == pytest.approx(
        (acc["metrics_fp32"]["abs_rel"], acc["metrics_fp32"]["a1"]), rel=1e-3)
    assert abs(acc["abs_rel_change"]) <= 0.05 and abs(acc["delta1_change_points"]) <= 2
    scaled = lambda d: 1 / 100 + (1 / 0.1 - 1 / 100) * np.asarray(d, np.float64)  # noqa: E731
    e = np.concatenate([(np.abs(scaled(r) - scaled(f)) / scaled(f)).ravel() for r, f in zip(reduced, reference)])
    assert np.median(e) == pytest.approx(acc["median_rel_error"], rel=0.02, abs=1e-4)
    assert np.percentile(e, 95) == pytest.approx(acc["p95_rel_error"], rel=0.02, abs=1e-4)
    assert acc["convs"] > 0 and len(acc["float_convs"]) <= acc["convs"]


@pytest.mark.slow
def test_int8_runs_through_inference_on_onnxruntime_only(int8_folder, synthetic_kitti, tmp_path, capsys):  # noqa: F811
    import inference
    photo = split_frames(synthetic_kitti)[0]
    inference.main(["--infer_files_dir", int8_folder, "--color_path", photo, "--backend", "onnxruntime",
                    "--output_dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert out.count("precision int8: abs_rel ") == 1 and "per-pixel disparity change against fp32" in out
    stem = os.path.splitext(os.path.basename(photo))[0]
    disp = np.load(tmp_path / f"{stem}_disp.npy")
    assert disp.shape == (H, W) and np.isfinite(disp).all()
    with pytest.raises(SystemExit) as exc:
        inference.main(["--infer_files_dir", int8_folder, "--color_path", photo, "--output_dir", str(tmp_path)])
    assert "an int8 model runs on ONNX Runtime only: use --backend onnxruntime" in str(exc.value.code)


# ------------------------------------------------------------------------------------------------ refusals

def test_calibration_photos_leave_out_the_gate_frames(synthetic_kitti):  # noqa: F811
    photos = int8.find_images(synthetic_kitti["data_path"])
    frames = split_frames(synthetic_kitti)
    calib = int8.calibration_images(photos, frames, 10)
    assert len(calib) == 10 and not {os.path.realpath(p) for p in calib} & {os.path.realpath(p) for p in frames}
    with pytest.raises(quantize.DeployError, match="need --calib_count 1000"):
        int8.calibration_images(photos, frames, 1000)


def test_a_missing_gate_split_is_one_line(weights, synthetic_kitti, tmp_path, capsys):  # noqa: F811
    with pytest.raises(SystemExit) as exc:  # caught by the option checks, before Paddle
        export(weights, str(tmp_path / "a"), dict(synthetic_kitti, data_path=str(tmp_path / "nowhere")))
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--gate_split" in err and "python -m synthetic" in err
    empty = tmp_path / "no_split"
    empty.mkdir()
    with pytest.raises(SystemExit) as exc:
        export(weights, str(tmp_path / "b"), dict(synthetic_kitti, data_path=str(empty)))
    message = str(exc.value.code)
    assert message.startswith(f"export.py: error: --gate_split {empty}: ") and "test_files.txt" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["no_split"]


def test_bf16_without_cpu_support_is_refused_in_one_line(monkeypatch, weights, synthetic_kitti, tmp_path):  # noqa: F811
    import export as export_script
    monkeypatch.setattr(quantize, "bf16_supported", lambda: False)
    with pytest.raises(SystemExit) as exc:
        export_script.main(["--load_weights_folder", weights, "--save_dir", str(tmp_path / "bf16"),
                            "--precision", "bf16", "--gate_split", synthetic_kitti["data_path"]])
    assert str(exc.value.code) == f"export.py: error: {quantize.BF16_REFUSAL}"
    assert list(tmp_path.iterdir()) == []
