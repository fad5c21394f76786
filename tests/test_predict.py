"""predict.py: the Python API, the files written for every kind of photo, bad input, and the
velodyne check agreeing with test.py."""
import json
import os
import re
import shutil

import cv2
import numpy as np
import pytest
from PIL import Image

import predict
from deployment import Predictor
from eval_fixtures import (NET_H, NET_W, load_script, split_image_paths, synthetic_kitti,  # noqa: F401
                           tamed_weights)
from utils.sensors.velodyne import generate_depth_map

MIN_D, MAX_D = 0.1 * 5.4, 100 * 5.4


def test_python_api(synthetic_kitti, tamed_weights):  # noqa: F811
    _, paths = split_image_paths(synthetic_kitti)
    predictor = Predictor(tamed_weights)
    depth = predictor(paths[0])
    photo = Image.open(paths[0])
    assert depth.shape == (photo.height, photo.width) and depth.dtype == np.float32
    assert MIN_D <= depth.min() and depth.max() <= MAX_D and depth.std() > 0
    np.testing.assert_allclose(predictor(np.asarray(photo)), depth, rtol=1e-5)
    disp = predictor.predict_disp(photo)
    assert disp.shape == (NET_H, NET_W) and 0 < disp.min() and disp.max() < 1



def test_readme_snippet_runs_as_a_user_pastes_it(synthetic_kitti, tamed_weights):  # noqa: F811
    """The README's Python block for a weights folder (Depth of a photo with existing weights)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    readme = open(os.path.join(root, "README.md")).read()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if 'Predictor("WEIGHTS")' in b]
    assert len(blocks) == 1, "the README shows one Python block with Predictor"
    _, paths = split_image_paths(synthetic_kitti)
    scope = {}
    exec(blocks[0].replace("WEIGHTS", tamed_weights).replace("photo.jpg", paths[0]), scope)  # noqa: S102
    depth, disp, photo = scope["depth"], scope["disp"], Image.open(paths[0])
    assert depth.shape == (photo.height, photo.width) and disp.shape == (NET_H, NET_W)
    assert scope["predictor"].metric   # stereo-trained weights: metres, x5.4 the network's depth
    resized = cv2.resize(disp, photo.size, interpolation=cv2.INTER_LINEAR).astype(np.float64)
    np.testing.assert_allclose(depth, 5.4 / (1 / 100 + (1 / 0.1 - 1 / 100) * resized), rtol=1e-5)


@pytest.mark.parametrize("record, words", [
    ({"dataset": "synthetic", "split": "synthetic", "use_stereo": True}, ["demonstration weights", "not meaningful"]),
    ({"dataset": "kitti", "split": "eigen_zhou", "use_stereo": True},
     ["weights trained on KITTI raw", "metres assume the training camera; this photo's camera is unknown"]),
    ({}, ["unknown training data", "metres assume the training camera"]),   # the tamed weights' opt.json: no record
])
def test_console_and_depth_json_say_what_the_weights_learned(synthetic_kitti, tamed_weights,  # noqa: F811
                                                             tmp_path, capsys, record, words):
    """The caption (utils/geometry/provenance.py) is printed once and written into each <stem>_depth.json;
    demonstration weights never call their numbers metres."""
    weights = tmp_path / "w"
    shutil.copytree(tamed_weights, weights)
    opt = json.loads((weights / "opt.json").read_text())
    (weights / "opt.json").write_text(json.dumps({**opt, **record}))
    _, paths = split_image_paths(synthetic_kitti)
    predict.main(["--load_weights_folder", str(weights), "--color_path", paths[0], "--output_dir", str(tmp_path / "o")])
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("depth: ")]
    stem = os.path.splitext(os.path.basename(paths[0]))[0]
    saved = json.loads((tmp_path / "o" / f"{stem}_depth.json").read_text())
    assert len(line) == 1 and line[0] == f"depth: {saved['caption']}"
    assert all(w in saved["caption"] for w in words), saved["caption"]
    assert ("metres" in saved["caption"]) == (record.get("dataset") != "synthetic")
    assert saved["weights"] == {"synthetic": "demonstration", "kitti": "trained"}.get(record.get("dataset"), "unknown")
    assert Predictor(str(weights)).caption == saved["caption"]


def test_folder_of_mixed_photos(synthetic_kitti, tamed_weights, tmp_path, capsys, monkeypatch):  # noqa: F811
    _, paths = split_image_paths(synthetic_kitti)
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(paths[0], photos / "street.jpg")
    rgb = np.asarray(Image.open(paths[1]))
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(photos / "alpha.png")
    Image.fromarray(rgb).convert("L").resize((90, 70)).save(photos / "grey.png")
    Image.open(paths[0]).save(photos / "street.png")  # same stem and pixels as street.jpg, lossless
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    inputs = sorted(os.listdir(photos))
    monkeypatch.chdir(tmp_path)   # the default output folder is relative to the working directory
    with pytest.raises(SystemExit) as e:
        predict.main(["--load_weights_folder", tamed_weights, "--color_path", str(photos)])
    message = str(e.value.code)
    assert "broken.jpg" in message and "\n" not in message
    out = tmp_path / "outputs" / "predict" / "photos"  # the documented default
    assert sorted(os.listdir(photos)) == inputs   # nothing written into the input folder
    sizes = {"street_jpg": rgb.shape[:2], "street_png": rgb.shape[:2], "alpha": rgb.shape[:2], "grey": (70, 90)}
    kinds = ("disp.npy", "disp.jpeg", "depth.npy", "depth.json")
    assert sorted(os.listdir(out)) == sorted(f"{s}_{k}" for s in sizes for k in kinds)
    for stem, (h, w) in sizes.items():
        disp = np.load(out / f"{stem}_disp.npy")
        assert disp.shape == (NET_H, NET_W) and disp.dtype == np.float32 and 0 < disp.min() and disp.max() < 1
        depth = np.load(out / f"{stem}_depth.npy")
        assert depth.shape == (h, w) and depth.dtype == np.float32
        assert MIN_D <= depth.min() and depth.max() <= MAX_D
        jpeg = Image.open(out / f"{stem}_disp.jpeg")
        assert jpeg.format == "JPEG" and jpeg.mode == "RGB" and jpeg.size == (w, h)
    # same decoded pixels, same prediction, two separate output names
    np.testing.assert_allclose(np.load(out / "street_jpg_disp.npy"), np.load(out / "street_png_disp.npy"), atol=1e-6)
    assert "4 of 5 image(s) written" in capsys.readouterr().out


def test_single_image_png16_and_bad_input(synthetic_kitti, tamed_weights, tmp_path, capsys):  # noqa: F811
    _, paths = split_image_paths(synthetic_kitti)
    predict.main(["--load_weights_folder", tamed_weights, "--color_path", paths[2], "--output_dir",
                  str(tmp_path / "o"), "--save_png16", "--colormap", "gray"])
    png = np.asarray(Image.open(tmp_path / "o" / "0000000002_depth.png"))
    depth = np.load(tmp_path / "o" / "0000000002_depth.npy")
    np.testing.assert_allclose(png / 256.0, np.minimum(depth, 65535 / 256.0), atol=0.5 / 256 + 1e-4)
    empty = tmp_path / "empty"
    empty.mkdir()
    for argv, expect in [
        (["--load_weights_folder", tamed_weights, "--color_path", str(empty)], "holds no images"),
        (["--load_weights_folder", str(empty), "--color_path", paths[0]], "encoder.pdparams not found"),
    ]:
        with pytest.raises(SystemExit) as e:
            predict.main(argv)
        assert expect in str(e.value.code) and "\n" not in str(e.value.code)
    with pytest.raises(SystemExit) as e:
        predict.main(["--load_weights_folder", tamed_weights, "--color_path", paths[0], "--velo_filename", "x.bin"])
    assert e.value.code == 2 and "needs --calib_path" in capsys.readouterr().err
    assert os.listdir(empty) == []


def test_velodyne_metrics_match_test_py(synthetic_kitti, tamed_weights, tmp_path, capsys):  # noqa: F811
    lines, paths = split_image_paths(synthetic_kitti)
    root = synthetic_kitti["data_path"]
    date_drive, frame = lines[1][0], int(lines[1][1])
    calib = os.path.join(root, date_drive.split("/")[0])
    velo = os.path.join(root, date_drive, "velodyne_points", "data", f"{frame:010d}.bin")
    predict.main(["--load_weights_folder", tamed_weights, "--color_path", paths[1], "--output_dir",
                  str(tmp_path / "p"), "--calib_path", calib, "--velo_filename", velo])
    printed = capsys.readouterr().out
    values = [float(v) for v in re.findall(r"-?\d+\.\d{3}", printed.split("a3")[1].splitlines()[1])]
    # test.py on a one-line split of the same frame, without gt_depths.npz; named eigen so that test.py
    # applies eigen's rules (Garg crop, 80 m cap), those of predict.py's check against a raw scan
    split = tmp_path / "eigen"
    split.mkdir()
    (split / "test_files.txt").write_text(" ".join(lines[1]) + "\n")
    result = load_script("test").main(["--load_weights_folder", tamed_weights, "--data_path", root,
                                       "--eval_split", str(split), "--eval_stereo", "--num_workers", "0",
                                       "--eval_out_dir", str(tmp_path / "eval")])   # not into the shared weights
    # test.py computed the missing ground truth from the scan (velodyne distance, docs/MLDA_NET.md §8)
    gt = np.load(split / "gt_depths.npz", allow_pickle=True)["data"]
    np.testing.assert_array_equal(gt[0], generate_depth_map(calib, velo, cam=2, vel_depth=True))
    expect = [round(result["metrics"][k], 3) for k in ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")]
    assert values == pytest.approx(expect, abs=1.5e-3)
    assert (gt[0] > 0).mean() < 0.5  # really the sparse scan, not the dense map


RELATIVE_NOTE = "relative depth: these weights were trained without stereo; pass --pred_depth_scale_factor F for metres"


def weights_with(folder, tmp_path, **opt):
    """A copy of a weights folder (weights hard-linked) whose opt.json has `opt` on top."""
    copy = tmp_path / "_".join(f"{k}{v}" for k, v in opt.items())
    copy.mkdir()
    for name in os.listdir(folder):
        if name.endswith(".pdparams"):
            os.link(os.path.join(folder, name), copy / name)
    with open(os.path.join(folder, "opt.json")) as f:
        (copy / "opt.json").write_text(json.dumps(dict(json.load(f), **opt)))
    return str(copy)


def test_metric_depth_only_for_stereo_weights_and_explicit_factor_wins(synthetic_kitti, tamed_weights,  # noqa: F811
                                                                      tmp_path, capsys):
    """depth = F / (1/100 + (1/0.1 - 1/100) disp) with F = 1 for monocular-only weights (and the note
    once per run), 5.4 for stereo-trained ones, and F = --pred_depth_scale_factor whenever given."""
    _, paths = split_image_paths(synthetic_kitti)
    photos = tmp_path / "photos"  # two photos: the note is said once per run, not per image
    photos.mkdir()
    shutil.copy(paths[0], photos / "photo.jpg")
    shutil.copy(paths[1], photos / "other.jpg")
    mono = weights_with(tamed_weights, tmp_path, use_stereo=False, frame_ids=[0, -1, 1])
    w, h = Image.open(paths[0]).size

    def relative_depth(out):  # independent: disp resized bilinearly, then 1 / (1/max + (1/min - 1/max) disp)
        disp = cv2.resize(np.load(out / "photo_disp.npy"), (w, h), interpolation=cv2.INTER_LINEAR)
        return 1 / (1 / 100 + (1 / 0.1 - 1 / 100) * disp.astype(np.float64))

    for argv, factor, notes in [([], 1.0, 1), (["--pred_depth_scale_factor", "2.5"], 2.5, 0)]:
        out = tmp_path / f"out_{factor}"
        predict.main(["--load_weights_folder", mono, "--color_path", str(photos), "--output_dir", str(out)] + argv)
        assert capsys.readouterr().out.count(RELATIVE_NOTE) == notes
        np.testing.assert_allclose(np.load(out / "photo_depth.npy"), factor * relative_depth(out), rtol=1e-5)
    stereo = Predictor(weights_with(tamed_weights, tmp_path, use_stereo=True, frame_ids=[0]))
    assert (stereo.metric, stereo.scale_factor, stereo.scale_note) == (True, 5.4, None)
    np.testing.assert_allclose(stereo(paths[0]), 5.4 * relative_depth(tmp_path / "out_1.0"), rtol=1e-5)


def test_output_dir_naming_a_file_is_one_line_exit_2(synthetic_kitti, tamed_weights, tmp_path, capsys):  # noqa: F811
    _, paths = split_image_paths(synthetic_kitti)
    taken = tmp_path / "results.txt"
    taken.write_text("mine")
    with pytest.raises(SystemExit) as e:
        predict.main(["--load_weights_folder", tamed_weights, "--color_path", paths[0], "--output_dir", str(taken)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("predict.py: error: --output_dir") and err.count("\n") == 1
    assert "is a file" in err and taken.read_text() == "mine" and os.listdir(tmp_path) == ["results.txt"]
