"""test.py on one's own sequences (utils/cameras/folder_layout.py): a tiny dataset written here (a non-KITTI
camera, 120 x 80 images, frames whose natural order differs from their names' character order, dense
.npy and sparse uint16 .png depth maps) evaluated against an independent numpy computation of the
protocol, median-scaled and unscaled; scaling choices; refusals."""
import json
import os
import shutil

import cv2
import numpy as np
import paddle
import pytest
from PIL import Image

import networks
from eval_fixtures import load_script
from tests.support.lsuv import tame_weights
from utils.io import image_io

test_script = load_script("test")

NET_H, NET_W = 64, 96
IMG_W, IMG_H = 120, 80
# sequence b is the test sequence of the generated splits (the last of two); natural order of its frames:
# frame1, frame2, frame10 (character order would put frame10 second)
TEST_FRAMES = ("frame1", "frame2", "frame10")


def ramp(k):
    """Dense depth (metres) of test frame k: a horizontal ramp 2..20 m with a vertical tilt."""
    x = np.linspace(2.0, 20.0, IMG_W, dtype=np.float32)[None]
    y = np.linspace(1.0, 1.3, IMG_H, dtype=np.float32)[:, None]
    return (x * y * (1 + 0.25 * k)).astype(np.float32)


def write_image(path, seed):
    rng = np.random.RandomState(seed)
    img = cv2.GaussianBlur(rng.rand(IMG_H, IMG_W, 3).astype(np.float32), (0, 0), 3)
    img = (img - img.min()) / (img.max() - img.min())
    img = img * np.linspace(0.3, 1.0, IMG_W, dtype=np.float32)[None, :, None]   # some structure
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray((255 * img).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def own_data(tmp_path_factory):
    """ROOT with camera.json, sequence a (4 frames, no depth) and b (3 test frames: dense .npy, sparse
    .png, dense .npy); returns (root, ground-truth maps of b in natural order as read back)."""
    root = str(tmp_path_factory.mktemp("own") / "mydata")
    os.makedirs(root)
    with open(os.path.join(root, "camera.json"), "w") as f:
        json.dump({"fx": 100.0, "fy": 110.0, "cx": 60.0, "cy": 40.0, "width": IMG_W, "height": IMG_H}, f)
    for i in range(4):
        write_image(os.path.join(root, "a", "left", f"{i:03d}.jpg"), 100 + i)
    gts = []
    for k, name in enumerate(TEST_FRAMES):
        write_image(os.path.join(root, "b", "left", name + ".png"), k)
        os.makedirs(os.path.join(root, "b", "depth"), exist_ok=True)
        depth = ramp(k)
        if k == 1:   # sparse: 10 % of the pixels, KITTI's uint16 metres x 256
            keep = np.random.RandomState(5).rand(IMG_H, IMG_W) < 0.1
            png = np.where(keep, np.round(depth * 256), 0).astype(np.uint16)
            Image.fromarray(png).save(os.path.join(root, "b", "depth", name + ".png"))
            gts.append(png.astype(np.float32) / 256)
        else:
            np.save(os.path.join(root, "b", "depth", name + ".npy"), depth)
            gts.append(depth)
    return root, gts


@pytest.fixture(scope="module")
def weights(own_data, tmp_path_factory):
    """A relative-depth weights folder at 64 x 96 (tamed on a frame of the dataset) and the same weights
    recorded as metric (opt.json "metric": true, as the folder trainer writes for stereo with a baseline)."""
    root, _ = own_data
    base = tmp_path_factory.mktemp("weights")
    sample = paddle.to_tensor(image_io.preprocess(image_io.load_image(os.path.join(root, "a", "left", "000.jpg")),
                                                  NET_H, NET_W))
    paddle.seed(0)
    nets = tame_weights(networks.build_nets(num_layers=18, scales=(0, 1, 2, 3)), sample)
    relative = str(base / "relative")
    networks.save_weights_folder(relative, nets, {"height": NET_H, "width": NET_W, "num_layers": 18,
                                                   "scales": [0, 1, 2, 3], "min_depth": 0.1, "max_depth": 100.0,
                                                   "dataset": "folder", "metric": False})
    metric = str(base / "metric")
    shutil.copytree(relative, metric)
    with open(os.path.join(metric, "opt.json")) as f:
        opt = json.load(f)
    opt["metric"] = True
    with open(os.path.join(metric, "opt.json"), "w") as f:
        json.dump(opt, f)
    return relative, metric


def numpy_protocol(disps, gts, scaled):
    """Independent: resize each disparity to its map (bilinear, half-pixel), invert, keep gt > 0,
    multiply by median(gt) / median(pred) when `scaled`, clip below at 1e-3; the seven errors averaged
    over the images, and the per-image median ratios."""
    rows, ratios = [], []
    for disp, gt in zip(disps, gts):
        depth = 1.0 / cv2.resize(disp, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_LINEAR)
        m = gt > 0
        g, p = gt[m].astype(np.float64), depth[m].astype(np.float64)
        ratios.append(np.median(g) / np.median(p))
        p = np.maximum(p * (ratios[-1] if scaled else 1.0), 1e-3)
        t = np.maximum(g / p, p / g)
        rows.append([np.mean(np.abs(g - p) / g), np.mean((g - p) ** 2 / g), np.sqrt(np.mean((g - p) ** 2)),
                     np.sqrt(np.mean((np.log(g) - np.log(p)) ** 2)),
                     np.mean(t < 1.25), np.mean(t < 1.25 ** 2), np.mean(t < 1.25 ** 3)])
    return np.mean(rows, axis=0), np.array(ratios)


def metrics_of(result):
    return np.array([result["metrics"][k] for k in ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")])


def test_network_on_own_sequences_median_and_metric(own_data, weights, tmp_path, capsys):
    root, gts = own_data
    relative, metric = weights
    out = tmp_path / "out"
    common = ["--data_path", root, "--num_workers", "0", "--batch_size", "2"]
    result = test_script.main(["--load_weights_folder", relative, "--save_pred_disps", "--eval_out_dir", str(out)]
                              + common)
    printed = capsys.readouterr().out
    # found by ROOT/camera.json; the split made by the layout's rule: the last sequence is the test one
    with open(os.path.join(root, "splits", "test_files.txt")) as f:
        assert f.read().split("\n")[:3] == ["b 0 l", "b 1 l", "b 2 l"]
    disps = np.load(out / "disps_mydata_split.npy")
    assert disps.shape == (3, NET_H, NET_W)
    # line 'b 2 l' is frame10 (natural order): the network's own prediction of that file
    from deployment import Predictor
    direct = 1 / 100 + (1 / 0.1 - 1 / 100) * Predictor(relative, eager=True).predict_disp(os.path.join(root, "b", "left",
                                                                                          "frame10.png"))
    np.testing.assert_allclose(disps[2], direct, rtol=1e-4)
    expect, ratios = numpy_protocol(disps, gts, scaled=True)
    assert result["scaling"] == "median"
    np.testing.assert_allclose(metrics_of(result), expect, rtol=1e-5, atol=1e-7)
    assert result["ratio_median"] == pytest.approx(np.median(ratios), rel=1e-5)
    assert result["ratio_std"] == pytest.approx(np.std(ratios / np.median(ratios)), rel=1e-4, abs=1e-7)
    assert "Scaling ratios" in printed and f"{expect[0]:8.3f}" in printed
    assert json.loads((out / "eval_mydata_mono.json").read_text())["metrics"]["rmse"] == pytest.approx(expect[2])

    # metric weights: no scaling by default; the median ratio is still reported (not applied)
    unscaled, _ = numpy_protocol(disps, gts, scaled=False)
    assert np.abs(unscaled - expect).max() > 1e-3
    res_m = test_script.main(["--load_weights_folder", metric, "--eval_out_dir", str(out)] + common)
    assert res_m["scaling"] == "none"
    np.testing.assert_allclose(metrics_of(res_m), unscaled, rtol=1e-5, atol=1e-7)
    assert res_m["ratio_median"] == pytest.approx(np.median(ratios), rel=1e-5)
    assert "no scaling" in capsys.readouterr().out and os.path.isfile(out / "eval_mydata_metric.json")
    # an explicit flag wins over opt.json; --eval_stereo on this layout is metric (real baseline), not x5.4
    res_mono = test_script.main(["--load_weights_folder", metric, "--eval_mono", "--eval_out_dir", str(out)] + common)
    np.testing.assert_allclose(metrics_of(res_mono), expect, rtol=1e-5, atol=1e-7)
    saved = str(out / "disps_mydata_split.npy")
    res_st = test_script.main(["--ext_disp_to_eval", saved, "--data_path", root, "--eval_stereo"])
    np.testing.assert_allclose(metrics_of(res_st), unscaled, rtol=1e-5, atol=1e-7)
    res_me = test_script.main(["--ext_disp_to_eval", saved, "--data_path", root, "--eval_metric"])
    assert res_me["scaling"] == "none" and metrics_of(res_me)[0] == pytest.approx(unscaled[0], rel=1e-5)


def test_constructed_predictions_dense_and_sparse(own_data, tmp_path):
    """Predictions of exactly 1.1 x the ground truth: unscaled abs_rel 0.1, rmse_log log 1.1, a1 1; median
    scaling removes the factor (ratio 1 / 1.1). --image_metrics is refused while the sparse map is in the
    split and matches numpy on a split of the dense maps."""
    root, gts = own_data
    # disparities at the ground truth's size (the resize is the identity), 1 where there is no gt
    disps = np.stack([np.where(g > 0, 1.0 / (1.1 * np.maximum(g, 1e-6)), 1.0) for g in gts]).astype(np.float32)
    np.save(tmp_path / "disps.npy", disps)
    ext = ["--ext_disp_to_eval", str(tmp_path / "disps.npy"), "--data_path", root]
    metric = test_script.main(ext + ["--eval_metric"])
    assert metric["metrics"]["abs_rel"] == pytest.approx(0.1, rel=1e-5)
    assert metric["metrics"]["rmse_log"] == pytest.approx(np.log(1.1), rel=1e-5)
    assert metric["metrics"]["a1"] == 1.0
    assert metric["ratio_median"] == pytest.approx(1 / 1.1, rel=1e-5) and metric["ratio_std"] < 1e-5
    rmse = np.mean([0.1 * np.sqrt(np.mean(g[g > 0].astype(np.float64) ** 2)) for g in gts])
    assert metric["metrics"]["rmse"] == pytest.approx(rmse, rel=1e-5)
    mono = test_script.main(ext)
    assert mono["scaling"] == "median" and mono["metrics"]["abs_rel"] < 1e-5
    assert mono["ratio_median"] == pytest.approx(1 / 1.1, rel=1e-5)

    before = sorted(os.listdir(tmp_path))
    with pytest.raises(SystemExit) as e:           # frame2's map is sparse (10 % of the pixels)
        test_script.main(ext + ["--image_metrics"])
    assert "needs dense ground truth" in str(e.value.code) and "\n" not in str(e.value.code)
    assert sorted(os.listdir(tmp_path)) == before
    dense = tmp_path / "dense"
    dense.mkdir()
    (dense / "test_files.txt").write_text("b 0 l\nb 2 l\n")
    np.save(tmp_path / "dense_disps.npy", disps[[0, 2]])
    res = test_script.main(["--ext_disp_to_eval", str(tmp_path / "dense_disps.npy"), "--data_path", root,
                            "--eval_split", str(dense), "--eval_metric", "--image_metrics"])
    rmse_255 = []
    for g in (gts[0], gts[2]):
        gg = g.astype(np.float64) / g.max() * 255
        rmse_255.append(np.sqrt(np.mean((np.minimum(1.1 * gg, 255) - gg) ** 2)))
    assert res["image_metrics"]["rmse_255"] == pytest.approx(np.mean(rmse_255), rel=1e-4)
    assert res["image_metrics"]["psnr"] == pytest.approx(np.mean([20 * np.log10(255 / r) for r in rmse_255]),
                                                         rel=1e-4)
    assert os.path.isfile(tmp_path / "eval_dense_metric.json")


def test_refusals_on_own_sequences(own_data, tmp_path):
    root, gts = own_data
    np.save(tmp_path / "d.npy", np.ones((1, IMG_H, IMG_W), np.float32))
    ext = ["--ext_disp_to_eval", str(tmp_path / "d.npy"), "--data_path", root]
    cases = [("a 1 l\n", "have no depth map", os.path.join("a", "depth", "001.npy")),
             ("b 0 r\n", "depth maps belong to the left images", "b 0 l"),
             ("b 7 l\n", "b has 3 left frames", "b 7 l")]
    for i, (lines, message, named) in enumerate(cases):
        split = tmp_path / f"split{i}"
        split.mkdir()
        (split / "test_files.txt").write_text(lines)
        with pytest.raises(SystemExit) as e:
            test_script.main(ext + ["--eval_split", str(split)])
        text = str(e.value.code)
        assert text.startswith("test.py: error:") and message in text and named in text and "\n" not in text
    with pytest.raises(SystemExit) as e:
        test_script.main(ext + ["--eval_split", str(tmp_path / "nowhere")])
    assert "no such folder" in str(e.value.code)
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".json")]
