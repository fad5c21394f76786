"""test.py: the section-8 protocol on the synthetic KITTI against an independent numpy computation,
constructed cases for median and fixed scaling, image metrics and bad input."""
import json
import os
import shutil

import cv2
import numpy as np
import pytest

from eval_fixtures import load_script
test_script = load_script("test")  # by path: "test" is also the name of Python's own test package

from eval_fixtures import NET_H, NET_W, dense_gt, split_image_paths, synthetic_kitti, tamed_weights  # noqa: F401


def numpy_protocol(disps, gts, mode, factor=5.4, eigen=True):
    """docs/MLDA_NET.md §8 written out independently: resize, invert, mask (eigen: 1e-3 < gt < 80 and the
    Garg crop; any other split: gt > 0, as Monodepth2), scale, clip."""
    rows = []
    for disp, gt in zip(disps, gts):
        h, w = gt.shape
        depth = 1.0 / cv2.resize(disp, (w, h), interpolation=cv2.INTER_LINEAR)
        crop = np.zeros_like(gt, dtype=bool)
        crop[int(0.40810811 * h):int(0.99189189 * h), int(0.03594771 * w):int(0.96405229 * w)] = True
        m = (gt > 1e-3) & (gt < 80) & crop if eigen else gt > 0
        g, p = gt[m].astype(np.float64), depth[m].astype(np.float64)
        p = p * (np.median(g) / np.median(p) if mode == "mono" else factor)
        p = np.clip(p, 1e-3, 80)
        t = np.maximum(g / p, p / g)
        rows.append([np.mean(np.abs(g - p) / g), np.mean((g - p) ** 2 / g), np.sqrt(np.mean((g - p) ** 2)),
                     np.sqrt(np.mean((np.log(g) - np.log(p)) ** 2)),
                     np.mean(t < 1.25), np.mean(t < 1.25 ** 2), np.mean(t < 1.25 ** 3)])
    return np.mean(rows, axis=0)


def make_split(folder, lines, gts):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "test_files.txt"), "w") as f:
        f.write("".join(" ".join(line) + "\n" for line in lines))
    data = np.empty(len(gts), dtype=object)
    data[:] = gts
    np.savez_compressed(os.path.join(folder, "gt_depths.npz"), data=data)
    return str(folder)


def metrics_of(result):
    return np.array([result["metrics"][k] for k in ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")])


def test_synthetic_kitti_matches_independent_numpy(synthetic_kitti, tamed_weights, tmp_path, capsys):  # noqa: F811
    lines, paths = split_image_paths(synthetic_kitti)
    gts = dense_gt(synthetic_kitti, lines)
    split = make_split(tmp_path / "split", lines, gts)
    out = tmp_path / "out"
    argv = ["--load_weights_folder", tamed_weights, "--data_path", synthetic_kitti["data_path"],
            "--eval_split", split, "--eval_mono", "--save_pred_disps", "--eval_out_dir", str(out),
            "--num_workers", "0", "--batch_size", "2", "--image_metrics"]
    result = test_script.main(argv)
    printed = capsys.readouterr().out
    disps = np.load(out / "disps_split_split.npy")
    assert disps.shape == (len(lines), NET_H, NET_W) and disps.dtype == np.float32
    # the saved predictions are the network's: scaled disparity of one image computed directly (test.py runs
    # the eager network; the compiled one is held to 1e-4 of the largest disparity, tests/test_compiled.py)
    from deployment import Predictor
    predictor = Predictor(tamed_weights, eager=True)
    one = 1 / 100 + (1 / 0.1 - 1 / 100) * predictor.predict_disp(paths[1])
    np.testing.assert_allclose(disps[1], one, rtol=1e-4)
    assert (np.concatenate([g.ravel() for g in gts]) > 80).any()          # beyond the cap: counted here
    expect = numpy_protocol(disps, gts, "mono", eigen=False)              # a split folder not named eigen
    np.testing.assert_allclose(metrics_of(result), expect, rtol=1e-5, atol=1e-7)
    assert json.loads((out / "eval_split_mono.json").read_text())["metrics"]["rmse"] == pytest.approx(expect[2])
    assert f"{expect[0]:8.3f}" in printed and "LaTeX:" in printed and "Scaling ratios" in printed
    assert set(result["image_metrics"]) == {"rmse_255", "psnr", "ssim"}

    # the same saved predictions evaluated without a network, stereo factor this time
    res2 = test_script.main(["--ext_disp_to_eval", str(out / "disps_split_split.npy"), "--eval_split", split,
                             "--eval_stereo"])
    np.testing.assert_allclose(metrics_of(res2), numpy_protocol(disps, gts, "stereo", eigen=False), rtol=1e-5, atol=1e-7)
    # the same maps as the eigen split: Garg crop and the 80 m cap
    eigen = make_split(tmp_path / "eigen", lines, gts)
    res3 = test_script.main(["--ext_disp_to_eval", str(out / "disps_split_split.npy"), "--eval_split", eigen,
                             "--eval_mono"])
    np.testing.assert_allclose(metrics_of(res3), numpy_protocol(disps, gts, "mono"), rtol=1e-5, atol=1e-7)
    assert abs(res3["metrics"]["rmse"] - result["metrics"]["rmse"]) > 1e-3
    assert os.path.isfile(out / "eval_split_stereo.json")


def test_post_process_blends_with_the_mirrored_prediction(synthetic_kitti, tamed_weights, tmp_path):  # noqa: F811
    lines, _ = split_image_paths(synthetic_kitti)
    lines = lines[:1]
    split = make_split(tmp_path / "s", lines, dense_gt(synthetic_kitti, lines))
    common = ["--load_weights_folder", tamed_weights, "--data_path", synthetic_kitti["data_path"],
              "--eval_split", split, "--num_workers", "0", "--save_pred_disps"]
    test_script.main(common + ["--eval_out_dir", str(tmp_path / "a")])
    plain = np.load(tmp_path / "a" / "disps_s_split.npy")[0]
    test_script.main(common + ["--eval_out_dir", str(tmp_path / "b"), "--post_process"])
    pp = np.load(tmp_path / "b" / "disps_s_split.npy")[0]
    # Monodepth's ramps: the right border keeps the plain prediction alone, the left border the
    # mirrored one, the middle their mean
    np.testing.assert_allclose(pp[:, -1], plain[:, -1], rtol=1e-5)
    assert np.abs(pp[:, 0] - plain[:, 0]).max() > 1e-4
    assert np.abs(pp[:, NET_W // 2] - plain[:, NET_W // 2]).max() > 1e-4


def constructed_case(tmp_path, factor):
    """Dense ramps 5..50 m; disparities such that stereo scaling gives factor x gt exactly."""
    gts = [np.tile(np.linspace(5, 50, 60, dtype=np.float32), (40, 1)) * s for s in (1.0, 1.5)]
    disps = np.stack([5.4 / (factor * g) for g in gts]).astype(np.float32)  # at gt size: resize is identity
    split = make_split(tmp_path / "eigen", [["d", str(i), "l"] for i in range(2)], gts)   # eigen: Garg crop
    np.save(tmp_path / "disps.npy", disps)
    return split, str(tmp_path / "disps.npy"), gts


def test_median_and_fixed_scaling_on_a_constructed_case(tmp_path):
    split, disps, gts = constructed_case(tmp_path, 1.1)
    stereo = test_script.main(["--ext_disp_to_eval", disps, "--eval_split", split, "--eval_stereo",
                               "--image_metrics"])
    # crop of a 40 x 60 map: rows 16:39, columns 2:57
    g = np.concatenate([x[16:39, 2:57].ravel() for x in gts]).astype(np.float64)
    per = [x[16:39, 2:57].astype(np.float64) for x in gts]
    assert stereo["metrics"]["abs_rel"] == pytest.approx(0.1, rel=1e-5)
    assert stereo["metrics"]["sq_rel"] == pytest.approx(np.mean([0.01 * p.mean() for p in per]), rel=1e-5)
    assert stereo["metrics"]["rmse"] == pytest.approx(np.mean([0.1 * np.sqrt((p ** 2).mean()) for p in per]), rel=1e-5)
    assert stereo["metrics"]["rmse_log"] == pytest.approx(np.log(1.1), rel=1e-5)
    assert stereo["metrics"]["a1"] == 1.0 and g.size > 0
    # image metrics: 0-255 by each map's maximum, prediction clipped at 255
    rmse = []
    for x in gts:
        gg = x / x.max() * 255
        rmse.append(np.sqrt(np.mean((np.clip(1.1 * gg, 0, 255) - gg) ** 2)))
    assert stereo["image_metrics"]["rmse_255"] == pytest.approx(np.mean(rmse), rel=1e-4)
    mono = test_script.main(["--ext_disp_to_eval", disps, "--eval_split", split, "--eval_mono", "--image_metrics"])
    assert mono["metrics"]["abs_rel"] < 1e-6 and mono["metrics"]["a1"] == 1.0
    assert mono["ratio_median"] == pytest.approx(5.4 / 1.1, rel=1e-5) and mono["ratio_std"] < 1e-6
    assert mono["image_metrics"]["ssim"] == pytest.approx(1.0, abs=1e-6)
    # --eval_metric: the depth as predicted (1.1 / 5.4 x gt); the median ratio is reported, not applied
    metric = test_script.main(["--ext_disp_to_eval", disps, "--eval_split", split, "--eval_metric"])
    assert metric["scaling"] == "none" and metric["metrics"]["abs_rel"] == pytest.approx(1 - 1.1 / 5.4, rel=1e-5)
    assert metric["ratio_median"] == pytest.approx(5.4 / 1.1, rel=1e-5)
    assert stereo["ratio_median"] == pytest.approx(5.4 / 1.1, rel=1e-5)
    assert os.path.isfile(os.path.join(os.path.dirname(disps), "eval_eigen_metric.json"))
    with pytest.raises(SystemExit) as e:
        test_script.main(["--ext_disp_to_eval", disps, "--eval_split", split, "--eval_mono", "--eval_metric"])
    assert e.value.code == 2


def test_refusals_are_one_line(tmp_path, capsys):
    split, disps, gts = constructed_case(tmp_path, 1.0)
    sparse = [np.where(np.random.RandomState(0).rand(*g.shape) < 0.05, g, 0).astype(np.float32) for g in gts]
    sparse_split = make_split(tmp_path / "sparse", [["d", str(i), "l"] for i in range(2)], sparse)
    first = test_script.main(["--ext_disp_to_eval", disps, "--eval_split", sparse_split])
    json_path = tmp_path / "eval_sparse_mono.json"
    before = json_path.read_text()
    assert json.loads(before)["metrics"]["abs_rel"] == pytest.approx(first["metrics"]["abs_rel"])
    with pytest.raises(SystemExit) as e:
        test_script.main(["--ext_disp_to_eval", disps, "--eval_split", sparse_split, "--image_metrics"])
    assert "needs dense ground truth" in str(e.value.code) and "\n" not in str(e.value.code)
    assert json_path.read_text() == before                    # a refused run leaves the earlier result
    assert sorted(os.listdir(tmp_path)) == ["disps.npy", "eigen", "eval_sparse_mono.json", "sparse"]
    (tmp_path / "no_weights").mkdir()
    with pytest.raises(SystemExit) as e:                       # refused before any weights are read
        test_script.main(["--load_weights_folder", str(tmp_path / "no_weights"), "--eval_split", sparse_split,
                          "--image_metrics", "--save_pred_disps", "--eval_out_dir", str(tmp_path / "out")])
    assert "needs dense ground truth" in str(e.value.code) and not os.path.exists(tmp_path / "out")
    with pytest.raises(SystemExit) as e:
        test_script.main(["--ext_disp_to_eval", disps, "--eval_split", str(tmp_path / "nowhere")])
    assert "test_files.txt not found" in str(e.value.code)
    with pytest.raises(SystemExit) as e:
        test_script.main(["--eval_split", split])
    assert e.value.code == 2 and "--load_weights_folder is required" in capsys.readouterr().err
    empty = tmp_path / "w"
    empty.mkdir()
    with pytest.raises(SystemExit) as e:
        test_script.main(["--load_weights_folder", str(empty), "--eval_split", split])
    assert "encoder.pdparams not found" in str(e.value.code)
    assert not any(n.endswith(".json") for n in os.listdir(empty))
    shutil.rmtree(empty)


def test_tae_beside_the_errors_for_consecutive_frames_with_poses(synthetic_kitti, tmp_path, capsys):  # noqa: F811
    """The test drive's exact depth as saved disparities: TAE at the floor of exact depth (nearest-pixel
    rounding); a whole-sequence scale leaves it there (one disparity fit per run); every other frame 10 %
    too far raises it to about 1 - 1 / 1.1 per pair (the fit splits the difference)."""
    from utils.cameras.poses import camera_matrix, sequence_poses
    from utils.geometry.temporal import temporal_alignment_error

    lines, _ = split_image_paths(synthetic_kitti)
    gts = dense_gt(synthetic_kitti, lines)
    assert [int(i) for _, i, _ in lines] == list(range(int(lines[0][1]), int(lines[0][1]) + len(lines)))
    split = make_split(tmp_path / "split", lines, gts)
    exact = np.stack([1.0 / np.where(g > 0, g, 1000.0) for g in gts]).astype(np.float32)
    factors = {"exact": np.ones(len(gts)), "scaled": np.full(len(gts), 2.0),
               "alternating": np.where(np.arange(len(gts)) % 2, 1 / 1.1, 1.0)}
    taes = {}
    for name, f in factors.items():
        path = tmp_path / f"{name}.npy"
        np.save(path, exact * f[:, None, None].astype(np.float32))
        result = test_script.main(["--ext_disp_to_eval", str(path), "--eval_split", split, "--eval_mono",
                                   "--data_path", synthetic_kitti["data_path"]])
        taes[name] = result["tae"]["tae"]
        assert result["tae"]["runs"] == 1 and result["tae"]["frames"] == len(gts)
    printed = capsys.readouterr().out
    assert f"TAE (temporal alignment error, one disparity scale and shift per run): {100 * taes['exact']:.2f} %" in printed
    # the same number from the library directly, with the drive's poses and camera
    root, drive = synthetic_kitti["data_path"], lines[0][0]
    poses = sequence_poses("kitti", root, drive, [int(i) for _, i, _ in lines])
    k = camera_matrix(os.path.join(root, drive.split("/")[0]))
    direct = temporal_alignment_error([1 / d for d in exact], poses, k, gts=gts,
                                      masks=[g > 0 for g in gts]).tae
    assert taes["exact"] == pytest.approx(direct, rel=1e-6)
    assert taes["exact"] < 0.015 and taes["scaled"] == pytest.approx(taes["exact"], abs=1e-4)
    assert 0.07 < taes["alternating"] - taes["exact"] < 0.11
