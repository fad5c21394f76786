"""export.py --precision int8 / bf16 (deployment/quantize.py): the accuracy gate refuses a model whose
error is too large and writes nothing; the figures it records equal a recomputation; the int8 model
agrees with fp32 on the synthetic test frames within the bound it was accepted under and runs
through inference.py on ONNX Runtime.

Tamed weights (tests/support/lsuv.py, activations O(1)) at 64 x 96. The bound is 5 % here, given
explicitly: MLDA-Net's global attention is a hard argmax over channels (softmax of the unscaled
q v^T), so perturbations of the size of int8 rounding flip a few channel choices; with such weights
the median error is 1-2 % at 64 x 96 and about 5 % at 192 x 640 (bench/RESULTS.md), above the
default bound of 1 %. The quick-start weights are worse conditioned still (7 % at 64 x 192) and need
minutes of training: they are measured in bench/RESULTS.md, not here.

Marked slow: each int8 export calibrates, gates and writes through export.py (the module's set-up and
the gate test take 20-30 s each).
"""
import functools
import json
import os

import numpy as np
import paddle
import pytest

import networks
from deployment import quantize
from deployment.config import CONFIG_NAME
from tests.support.lsuv import tame_weights
from tests.synthetic_fixture import synthetic_kitti  # noqa: F401
from utils.cameras import kitti_layout
from utils.io import image_io

pytestmark = pytest.mark.slow

H, W = 64, 96
BOUND = 0.05


def synthetic_test_frames(info):
    """The synthetic test split's photos (drive 2, left camera)."""
    import synthetic
    lines = kitti_layout.read_split(os.path.join(synthetic.split_dir(info["data_path"]), "test_files.txt"))
    return [kitti_layout.image_path(info["data_path"], *kitti_layout.parse_split_line(line)[:3]) for line in lines]


def calibration_drive(info):
    """Folder of drive 1 (both cameras): the calibration photos; the test frames are drive 2's."""
    return os.path.join(info["data_path"], info["drives"][0])


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """{"tamed": folder}: weights tamed at 192 x 640 on a natural photo (activations O(1), as a trained
    network's), saved for 64 x 96. (Tamed at 64 x 96 itself, the attention logits come out
    ill-conditioned: int8 then moves the disparity by 11-13 % median, and the gate refuses.)"""
    from skimage import data
    paddle.seed(0)
    # Paddle's default initialisation (build_net), not build_nets' init_as_original: its disparity bias
    # of -3 over a nearly constant output is what taming scales up, saturating the sigmoid to ~1e-13,
    # where every disparity error would be 0
    nets = {"depth": networks.build_net("depth")}
    tame_weights(nets, paddle.to_tensor(image_io.preprocess(image_io.load_image(data.astronaut()), 192, 640)))
    root = tmp_path_factory.mktemp("quantize")
    folders = {"tamed": str(root / "tamed")}
    networks.save_weights_folder(folders["tamed"], nets, {"height": H, "width": W})
    return folders


def export(weights_folder, save_dir, calib_images, *extra):
    import export as export_script
    export_script.main(["--load_weights_folder", weights_folder, "--save_dir", save_dir, "--combined",
                        "--precision", "int8", "--calib_images", calib_images, "--calib_count", "6",
                        "--calib_method", "minmax", *extra])


@pytest.fixture(scope="module")
def int8_folder(weights, synthetic_kitti, tmp_path_factory):  # noqa: F811
    """An int8 export through export.py's command line, calibrated on drive 1 (minmax, bound 5 %)."""
    import export as export_script
    out = str(tmp_path_factory.mktemp("int8") / "deploy")
    saved, export_script.SYNTHETIC_ROOT = export_script.SYNTHETIC_ROOT, synthetic_kitti["data_path"]
    try:  # the metrics of the fixture's test split (7 frames), not of a data/ folder that may be there
        export(weights["tamed"], out, calibration_drive(synthetic_kitti), "--max_rel_error", str(BOUND))
    finally:
        export_script.SYNTHETIC_ROOT = saved
    return out


def scaled(d, config):
    lo, hi = config["min_depth"], config["max_depth"]
    return 1 / hi + (1 / lo - 1 / hi) * np.asarray(d, np.float64)


@functools.lru_cache(maxsize=None)
def depth_net(weights_folder):
    return networks.load_weights_folder(weights_folder)[1]["depth"]


def int8_and_eager(folder, weights_folder, paths):
    """Disparities of the int8 ONNX model and of the eager fp32 network for photos `paths`."""
    import onnxruntime as ort
    session = ort.InferenceSession(os.path.join(folder, "model.onnx"), providers=["CPUExecutionProvider"])
    net = depth_net(weights_folder)
    reduced, reference = [], []
    for p in paths:
        x = image_io.preprocess(image_io.load_image(p), H, W)
        reduced.append(session.run(None, {"image": x})[0])
        with paddle.no_grad():
            reference.append(net.disparity(paddle.to_tensor(x)).numpy())
    return reduced, reference


def test_recorded_figures_equal_a_recomputation(int8_folder, weights):
    with open(os.path.join(int8_folder, CONFIG_NAME)) as f:
        config = json.load(f)
    acc = config["accuracy"]
    assert config["precision"] == "int8" and config["formats"] == ["onnx"]
    assert sorted(os.listdir(int8_folder)) == [CONFIG_NAME, "model.onnx"]
    assert acc["bound"] == BOUND and acc["calib_method"] == "minmax" and acc["calib_count"] == 6
    assert len(acc["heldout"]) == quantize.HELDOUT_COUNT
    assert set(acc["metrics"]) == {"abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3"}
    assert all(acc["metrics_change"][k] == pytest.approx(acc["metrics"][k] - acc["metrics_fp32"][k])
               for k in acc["metrics"])
    paths = [os.path.join(acc["calib_images"], p) for p in acc["heldout"]]
    reduced, reference = int8_and_eager(int8_folder, weights["tamed"], paths)
    e = np.concatenate([(np.abs(scaled(r, config) - scaled(f, config)) / scaled(f, config)).ravel()
                        for r, f in zip(reduced, reference)])
    # the gate compared with the fp32 ONNX model, this with the eager network (they differ by ~1e-6)
    assert np.median(e) == pytest.approx(acc["median_rel_error"], rel=0.01, abs=1e-4)
    assert np.percentile(e, 95) == pytest.approx(acc["p95_rel_error"], rel=0.01, abs=1e-4)
    assert 0 < acc["median_rel_error"] <= BOUND


def test_int8_agrees_with_fp32_on_the_test_frames(int8_folder, weights, synthetic_kitti):  # noqa: F811
    with open(os.path.join(int8_folder, CONFIG_NAME)) as f:
        config = json.load(f)
    reduced, reference = int8_and_eager(int8_folder, weights["tamed"], synthetic_test_frames(synthetic_kitti))
    e = np.concatenate([(np.abs(scaled(r, config) - scaled(f, config)) / scaled(f, config)).ravel()
                        for r, f in zip(reduced, reference)])
    assert np.median(e) <= config["accuracy"]["bound"]


def test_gate_refuses_a_broken_calibration_and_writes_nothing(weights, synthetic_kitti, tmp_path, capsys):  # noqa: F811
    """Calibrated on one constant grey photo, every activation range is far too narrow."""
    from PIL import Image
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (416, 128), (128, 128, 128)).save(photos / "grey.png")
    for k, p in enumerate(quantize.find_images(calibration_drive(synthetic_kitti))[:4]):
        image_io.load_image(p).save(photos / f"photo{k}.png")
    # the held-out photos are the real ones: with calib_count 1 the grey image (sorted first) calibrates
    out = tmp_path / "deploy"
    with pytest.raises(SystemExit) as exc:
        export(weights["tamed"], str(out), str(photos), "--calib_count", "1")
    message = str(exc.value.code)
    assert message.startswith("export.py: error: the int8 model's median relative disparity error is ")
    assert "above the bound of 1.00%; nothing written" in message and "--max_rel_error" in message
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["photos"]  # no temporary folder left either


def test_int8_runs_through_inference_on_onnxruntime_only(int8_folder, synthetic_kitti, tmp_path, capsys):  # noqa: F811
    import inference
    photo = synthetic_test_frames(synthetic_kitti)[0]
    inference.main(["--infer_files_dir", int8_folder, "--color_path", photo, "--backend", "onnxruntime",
                    "--output_dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert out.count("precision int8: median relative disparity error") == 1
    stem = os.path.splitext(os.path.basename(photo))[0]
    disp = np.load(tmp_path / f"{stem}_disp.npy")
    assert disp.shape == (H, W) and np.isfinite(disp).all()
    with pytest.raises(SystemExit) as exc:
        inference.main(["--infer_files_dir", int8_folder, "--color_path", photo, "--output_dir", str(tmp_path)])
    assert "an int8 model runs on ONNX Runtime only: use --backend onnxruntime" in str(exc.value.code)

