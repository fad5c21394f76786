"""--camera_height (ground-plane scale) in predict.py, inference.py and test.py: each image's relative depth times the
factor utils.geometry.ground_plane computes on that very depth, checked by recomputing it here; refusals in one line."""
import json
import os
import shutil

import cv2
import numpy as np
import pytest

import inference
import predict
from deployment import Predictor, runtime
from test_export import exported, weights  # noqa: F401  (session fixtures: tamed weights, exported folders)
from eval_fixtures import dense_gt, load_script, split_image_paths, synthetic_kitti, tamed_weights  # noqa: F401
from utils.cameras import kitti_layout
from utils.geometry import ground_plane
from utils.io import image_io

test_script = load_script("test")
CAMERA_HEIGHT = 1.65   # synthetic.scene.CAMERA_HEIGHT
SCALE = 7.0            # the stand-in network's depth is the true depth / SCALE


def mono_weights(tamed_weights, folder, **record):  # noqa: F811
    """A copy of the tamed weights whose opt.json says monocular (relative depth), plus `record`."""
    shutil.copytree(tamed_weights, folder)
    path = os.path.join(folder, "opt.json")
    with open(path) as f:
        opt = json.load(f)
    opt.update(use_stereo=False, frame_ids=[0, -1, 1], **record)
    with open(path, "w") as f:
        json.dump(opt, f)
    return str(folder)


def road_disparity(info):
    """disparity(image, predictor) -> the sigmoid disparity, at the predictor's network size, whose
    disp_to_depth depth is the synthetic scene's exact depth / SCALE (sky: 100 m / SCALE), for the
    synthetic test frame `image` (a PIL image). Tamed random weights show no road, so the road's path
    through the scripts is checked with this stand-in for the network."""
    lines, paths = split_image_paths(info)
    by_pixels = {np.asarray(image_io.load_image(p)).tobytes(): gt for p, gt in zip(paths, dense_gt(info, lines))}

    def disparity(image, predictor):
        gt = by_pixels[np.asarray(image_io.load_image(image)).tobytes()]
        depth = np.where(gt > 0, gt, 100.0) / SCALE
        depth = cv2.resize(depth, (predictor.width, predictor.height), interpolation=cv2.INTER_NEAREST)
        min_disp, max_disp = 1 / predictor.max_depth, 1 / predictor.min_depth
        return ((1 / depth - min_disp) / (max_disp - min_disp)).astype(np.float32)
    return disparity, paths


def road_network(info, monkeypatch):
    disparity, paths = road_disparity(info)
    monkeypatch.setattr(Predictor, "predict_disp", lambda self, image: disparity(image, self))
    return paths


def test_predict_writes_relative_depth_times_the_ground_plane_factor(  # noqa: F811
        synthetic_kitti, tamed_weights, tmp_path, monkeypatch, capsys):  # noqa: F811
    weights = mono_weights(tamed_weights, tmp_path / "mono")
    paths = road_network(synthetic_kitti, monkeypatch)
    base = ["--load_weights_folder", weights, "--color_path", paths[2]]
    predict.main(base + ["--output_dir", str(tmp_path / "relative")])
    predict.main(base + ["--output_dir", str(tmp_path / "metric"), "--camera_height", str(CAMERA_HEIGHT)])
    out = capsys.readouterr().out
    assert "metric depth by the ground-plane approximation" in out and "ground plane: KITTI's camera" in out
    assert "pass --pred_depth_scale_factor F for metres" not in out.split("metric depth by")[1]   # no relative note
    relative = np.load(tmp_path / "relative" / "0000000002_depth.npy")
    metric = np.load(tmp_path / "metric" / "0000000002_depth.npy")
    # independent recomputation: the fit on the relative depth with KITTI's K at the photo's size
    h, w = relative.shape
    fit = ground_plane.ground_scale(relative, kitti_layout.intrinsics(w, h), CAMERA_HEIGHT)
    np.testing.assert_allclose(metric, relative * fit.scale, rtol=1e-5)
    assert fit.scale == pytest.approx(SCALE, rel=0.03)   # the true scale of the stand-in network
    assert f"ground-plane scale {fit.scale:.4g}" in out
    # a camera.json of the photos is used as given (here KITTI's, written out: the same factor)
    camera = tmp_path / "camera.json"
    k = kitti_layout.intrinsics(w, h)
    camera.write_text(json.dumps({"fx": float(k[0, 0]), "fy": float(k[1, 1]), "cx": float(k[0, 2]),
                                  "cy": float(k[1, 2]), "width": w, "height": h}))
    predict.main(base + ["--output_dir", str(tmp_path / "cam"), "--camera_height", "1.65", "--camera", str(camera)])
    np.testing.assert_allclose(np.load(tmp_path / "cam" / "0000000002_depth.npy"), metric, rtol=1e-6)


def test_a_photo_without_a_road_is_skipped_and_metric_weights_are_refused(synthetic_kitti, tamed_weights,  # noqa: F811
                                                                          tmp_path, capsys):
    _, paths = split_image_paths(synthetic_kitti)
    weights = mono_weights(tamed_weights, tmp_path / "mono")
    # tamed random weights see no road: the photo is listed, nothing is written, the exit status is non-zero
    with pytest.raises(SystemExit) as e:
        predict.main(["--load_weights_folder", weights, "--color_path", paths[0], "--output_dir",
                      str(tmp_path / "none"), "--camera_height", "1.65"])
    message = str(e.value.code)
    assert message.startswith("predict.py: error:") and "no ground plane" in message and "\n" not in message
    assert not os.path.exists(tmp_path / "none") or not os.listdir(tmp_path / "none")
    metric = mono_weights(tamed_weights, tmp_path / "metric", metric=True)
    for argv, expect in [
        # opt.json "metric": true, and the tamed folder itself (no use_stereo recorded: taken as stereo, x5.4)
        (["--load_weights_folder", metric], "already in metres"),
        (["--load_weights_folder", tamed_weights], "already in metres"),
        (["--load_weights_folder", weights, "--pred_depth_scale_factor", "2"], "exclude each other"),
        (["--load_weights_folder", weights, "--camera_height", "0"], "must be > 0"),
    ]:
        argv = argv + ["--color_path", paths[0], "--output_dir", str(tmp_path / "refused")]
        if "--camera_height" not in argv:
            argv += ["--camera_height", "1.65"]
        with pytest.raises(SystemExit) as e:
            predict.main(argv)
        err = str(e.value.code) if e.value.code != 2 else capsys.readouterr().err.strip()
        assert err.startswith("predict.py: error:") and expect in err and "\n" not in err
        assert not os.path.exists(tmp_path / "refused")


def test_test_py_scales_each_frame_by_its_ground_plane(synthetic_kitti, tmp_path):  # noqa: F811
    """Disparities of the exact depth / SCALE, one frame garbage (no road): that frame takes the median of the
    others' factors; the metrics equal a numpy computation with the factors recomputed here."""
    lines, _ = split_image_paths(synthetic_kitti)
    gts = dense_gt(synthetic_kitti, lines)
    disps = np.stack([SCALE / np.where(g > 0, g, 100.0) for g in gts]).astype(np.float32)
    disps[3] = np.random.default_rng(0).uniform(0.05, 5, disps[3].shape)
    split = tmp_path / "synthetic_test"   # not eigen: every gt > 0, no crop
    split.mkdir()
    (split / "test_files.txt").write_text("".join(" ".join(line) + "\n" for line in lines))
    data = np.empty(len(gts), dtype=object)
    data[:] = gts
    np.savez_compressed(split / "gt_depths.npz", data=data)
    np.save(tmp_path / "disps.npy", disps)
    result = test_script.main(["--ext_disp_to_eval", str(tmp_path / "disps.npy"), "--eval_split", str(split),
                               "--camera_height", str(CAMERA_HEIGHT)])
    h, w = disps.shape[1:]
    fits = [ground_plane.ground_scale(1 / d, kitti_layout.intrinsics(w, h), CAMERA_HEIGHT) for d in disps]
    assert [f.scale is None for f in fits] == [i == 3 for i in range(len(fits))]
    factors = [f.scale for f in fits]
    factors[3] = float(np.median([s for s in factors if s is not None]))
    rows = []
    for d, g, s in zip(disps, gts, factors):
        m = g > 0
        p = np.clip(s / d[m].astype(np.float64), 1e-3, 80)
        rows.append([np.mean(np.abs(g[m] - p) / g[m]), np.mean((g[m] < 1.25 * p) & (p < 1.25 * g[m]))])
    assert result["scaling"] == "ground"
    assert result["metrics"]["abs_rel"] == pytest.approx(np.mean(rows, axis=0)[0], rel=1e-5)
    assert result["metrics"]["a1"] == pytest.approx(np.mean(rows, axis=0)[1], abs=1e-6)
    ground = result["ground_plane"]
    assert ground["failed_share"] == pytest.approx(1 / 7) and ground["camera_height"] == CAMERA_HEIGHT
    assert ground["scale_error_median_abs"] < 0.01   # the road of the exact depth gives the true scale
    assert os.path.isfile(tmp_path / "eval_synthetic_test_ground.json")
    with pytest.raises(SystemExit) as e:
        test_script.main(["--ext_disp_to_eval", str(tmp_path / "disps.npy"), "--eval_split", str(split),
                          "--camera_height", "1.65", "--eval_mono"])
    assert e.value.code == 2


def test_inference_py_scales_as_predict_py_and_refuses_metric_models(synthetic_kitti, exported, tmp_path,  # noqa: F811
                                                                     monkeypatch, capsys):
    _, paths = split_image_paths(synthetic_kitti)
    # the exported tamed weights record no training options: taken as stereo, metres (x5.4), so refused
    with pytest.raises(SystemExit) as e:
        inference.main(["--infer_files_dir", exported["split"], "--backend", "onnxruntime", "--color_path", paths[2],
                        "--output_dir", str(tmp_path / "refused"), "--camera_height", "1.65"])
    assert str(e.value.code).startswith("inference.py: error:") and "already in metres" in str(e.value.code)
    assert not os.path.exists(tmp_path / "refused")
    # the same model marked relative (a monocular export), with the road stand-in for the network
    relative_model = tmp_path / "model"
    shutil.copytree(exported["split"], relative_model)
    with open(relative_model / "deploy.json") as f:
        config = json.load(f)
    config.update(metric=False, depth_scale_factor=1.0)
    (relative_model / "deploy.json").write_text(json.dumps(config))
    disparity, _ = road_disparity(synthetic_kitti)
    monkeypatch.setattr(runtime.DepthPredictor, "__call__", lambda self, image: disparity(image, self)[None, None])
    base = ["--infer_files_dir", str(relative_model), "--backend", "onnxruntime", "--color_path", paths[4]]
    inference.main(base + ["--output_dir", str(tmp_path / "relative")])
    inference.main(base + ["--output_dir", str(tmp_path / "metric"), "--camera_height", str(CAMERA_HEIGHT)])
    assert "metric depth by the ground-plane approximation" in capsys.readouterr().out
    relative = np.load(tmp_path / "relative" / "0000000004_depth.npy")
    h, w = relative.shape
    fit = ground_plane.ground_scale(relative, kitti_layout.intrinsics(w, h), CAMERA_HEIGHT)
    np.testing.assert_allclose(np.load(tmp_path / "metric" / "0000000004_depth.npy"), relative * fit.scale, rtol=1e-5)
    assert fit.scale == pytest.approx(SCALE, rel=0.03)
