"""inference.py writes the files predict.py writes (same names, values to 1e-4, same skipping of
unreadable images and exit status), on Paddle Inference and ONNX Runtime, and refuses bad folders
with one line."""
import json
import os
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

import inference
import predict
from utils.io import photo_loop
from test_export import exported, weights  # noqa: F401  (session fixtures: tamed weights, exported folders)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

STEMS = ("astronaut", "chelsea")


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """Two photos of different sizes, and a file that is not an image."""
    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(data.astronaut()).save(folder / "astronaut.jpg", quality=95)
    Image.fromarray(data.chelsea()).save(folder / "chelsea.png")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return str(folder)


@pytest.fixture(scope="module")
def predict_outputs(weights, photo_folder, tmp_path_factory):  # noqa: F811
    out = str(tmp_path_factory.mktemp("predict_out"))
    with pytest.raises(SystemExit) as exc:
        predict.main(["--load_weights_folder", weights, "--color_path", photo_folder, "--output_dir", out])
    return out, str(exc.value)


def run_inference(argv):
    with pytest.raises(SystemExit) as exc:
        inference.main(argv)
    return str(exc.value)


@pytest.mark.parametrize("layout,backend", [("split", "paddle"), ("combined", "onnxruntime")])
def test_inference_writes_the_files_predict_writes(exported, photo_folder, predict_outputs, tmp_path,  # noqa: F811
                                                   layout, backend):
    out = str(tmp_path / "out")
    message = run_inference(["--infer_files_dir", exported[layout], "--color_path", photo_folder,
                             "--output_dir", out, "--backend", backend])
    predict_dir, predict_message = predict_outputs
    # the unreadable file is skipped and reported the same way, with a non-zero exit
    assert message.replace("inference.py", "predict.py") == predict_message
    assert "broken.jpg" in message
    assert sorted(os.listdir(out)) == sorted(os.listdir(predict_dir)) == sorted(
        f"{s}_{k}" for s in STEMS for k in ("disp.npy", "disp.jpeg", "depth.npy", "depth.json"))
    for stem in STEMS:
        disp = np.load(os.path.join(out, f"{stem}_disp.npy"))
        np.testing.assert_allclose(disp, np.load(os.path.join(predict_dir, f"{stem}_disp.npy")), rtol=0, atol=1e-4)
        depth = np.load(os.path.join(out, f"{stem}_depth.npy"))
        ref_depth = np.load(os.path.join(predict_dir, f"{stem}_depth.npy"))
        assert depth.shape == ref_depth.shape == Image.open(os.path.join(photo_folder, [
            n for n in os.listdir(photo_folder) if n.startswith(stem)][0])).size[::-1]
        np.testing.assert_allclose(depth, ref_depth, rtol=1e-4, atol=0)  # metres: relative
        jpeg = np.asarray(Image.open(os.path.join(out, f"{stem}_disp.jpeg")), np.float32)
        ref_jpeg = np.asarray(Image.open(os.path.join(predict_dir, f"{stem}_disp.jpeg")), np.float32)
        assert jpeg.shape == ref_jpeg.shape and np.abs(jpeg - ref_jpeg).mean() < 0.5


def test_depth_range_comes_from_deploy_json(exported, photo_folder, tmp_path):  # noqa: F811
    """The weights were saved with min/max depth 0.2/80: depth = 5.4 / (1/80 + (1/0.2 - 1/80) disp),
    disp resized bilinearly to the photo's 512 x 512."""
    out = str(tmp_path / "out")
    photo = os.path.join(photo_folder, "astronaut.jpg")
    inference.main(["--infer_files_dir", exported["combined"], "--color_path", photo, "--output_dir", out,
                    "--backend", "onnxruntime"])
    disp = cv2.resize(np.load(os.path.join(out, "astronaut_disp.npy")), (512, 512), interpolation=cv2.INTER_LINEAR)
    expected = 5.4 / (1 / 80 + (1 / 0.2 - 1 / 80) * disp.astype(np.float64))
    np.testing.assert_allclose(np.load(os.path.join(out, "astronaut_depth.npy")), expected, rtol=1e-5)


def test_default_output_folders_per_command_and_backend(exported, photo_folder, tmp_path, capsys,  # noqa: F811
                                                       monkeypatch):
    photo = os.path.join(photo_folder, "astronaut.jpg")
    assert photo_loop.default_output_dir(photo, "predict") == os.path.join("outputs", "predict", "astronaut")
    folder_name = os.path.basename(os.path.abspath(photo_folder))
    for path in (photo_folder, photo_folder + os.sep):
        assert photo_loop.default_output_dir(path, "inference_paddle") == os.path.join("outputs", "inference_paddle",
                                                                                        folder_name)
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(photo, folder / "a.jpg")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)   # the default is relative to the working directory
    files = ["a_depth.json", "a_depth.npy", "a_disp.jpeg", "a_disp.npy"]
    argv = ["--infer_files_dir", exported["combined"], "--color_path", str(folder)]
    for backend in ("onnxruntime", "paddle"):
        inference.main(argv + ["--backend", backend])
        assert "replaced" not in capsys.readouterr().out   # the second backend has its own folder
    assert sorted(os.listdir(folder)) == ["a.jpg"]   # nothing written into the input
    assert sorted(os.listdir(work / "outputs")) == ["inference_onnxruntime", "inference_paddle"]
    for backend in ("onnxruntime", "paddle"):
        assert sorted(os.listdir(work / "outputs" / f"inference_{backend}" / "photos")) == files
    inference.main(argv + ["--backend", "onnxruntime"])  # a second run says, once, that it replaced the first one's
    out = capsys.readouterr().out
    assert out.count("replaced") == 1 and "replaced the earlier files of 1 image(s)" in out


def test_onnx_route_of_inference_py_runs_without_paddle(exported, photo_folder, tmp_path):  # noqa: F811
    """The whole script, in a process where `import paddle` fails, writes the same disparity."""
    out = str(tmp_path / "no_paddle")
    photo = os.path.join(photo_folder, "astronaut.jpg")
    code = ("import sys; sys.modules['paddle'] = None; import inference; "
            f"inference.main(['--infer_files_dir', {exported['combined']!r}, '--color_path', {photo!r}, "
            f"'--output_dir', {out!r}, '--backend', 'onnxruntime'])")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ref = str(tmp_path / "with_paddle")
    inference.main(["--infer_files_dir", exported["combined"], "--color_path", photo, "--output_dir", ref,
                    "--backend", "onnxruntime"])
    np.testing.assert_array_equal(np.load(os.path.join(out, "astronaut_disp.npy")),
                                  np.load(os.path.join(ref, "astronaut_disp.npy")))


def test_bad_folders_end_with_one_line(exported, photo_folder, tmp_path, capsys):  # noqa: F811
    message = run_inference(["--infer_files_dir", str(tmp_path), "--color_path", photo_folder])
    assert message.startswith("inference.py: error:") and "no deploy.json" in message and "\n" not in message
    paddle_only = str(tmp_path / "paddle_only")   # links to the shared export's files, none changed
    os.makedirs(paddle_only)
    for name in os.listdir(exported["split"]):
        if not name.endswith(".onnx"):
            os.link(os.path.join(exported["split"], name), os.path.join(paddle_only, name))
    message = run_inference(["--infer_files_dir", paddle_only, "--color_path", photo_folder,
                             "--backend", "onnxruntime", "--output_dir", str(tmp_path / "never")])
    assert "incomplete" in message and "model_encoder.onnx" in message
    assert not os.path.exists(tmp_path / "never")
    with pytest.raises(SystemExit) as exc:
        inference.main(["--infer_files_dir", exported["split"], "--color_path", photo_folder, "--use_trt"])
    assert exc.value.code == 2 and "--use_trt needs --device gpu" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        inference.main(["--infer_files_dir", exported["split"], "--color_path", str(tmp_path / "none.jpg")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("inference.py: error:") and "none.jpg" in err


def test_velodyne_check_prints_what_predict_prints(weights, exported, tmp_path, capsys):  # noqa: F811
    import synthetic

    synthetic.generate(str(tmp_path / "kitti"), num_drives=2, frames_per_drive=3, width=256, height=80,
                       progress=False)
    date = tmp_path / "kitti" / "2000_01_02"
    drive = date / "2000_01_02_drive_0002_sync"
    args = ["--color_path", str(drive / "image_02" / "data" / "0000000002.jpg"), "--calib_path", str(date),
            "--velo_filename", str(drive / "velodyne_points" / "data" / "0000000002.bin")]
    predict.main(["--load_weights_folder", weights, "--output_dir", str(tmp_path / "p")] + args)
    expected = [line for line in capsys.readouterr().out.splitlines()   # predict.py's one line on its compiled network
                if not line.startswith(("using the network compiled", "compiled the network"))]
    inference.main(["--infer_files_dir", exported["combined"], "--backend", "onnxruntime",
                    "--output_dir", str(tmp_path / "i")] + args)
    printed = capsys.readouterr().out.splitlines()
    # the same note (these weights record no training options: taken as stereo, metres), the same caption (the
    # training data record in deploy.json), then the metrics
    assert "mono+stereo" in expected[0] and "abs_rel" in expected[2] and len(printed) == len(expected) == 6
    assert expected[1] == "depth: weights trained on KITTI raw; metres assume the training camera; this photo's " \
                          "camera is unknown"
    assert printed[:3] == expected[:3] and printed[4] == expected[4]  # note, caption, header, scale line
    # ONNX and eager disparities differ by ~1e-5, which can move a printed metric by one in the third decimal
    values = [[float(v) for v in lines[3].split("|")] for lines in (printed, expected)]
    assert np.allclose(values[0], values[1], rtol=0, atol=1.5e-3)


RELATIVE_NOTE = "relative depth: these weights were trained without stereo; pass --pred_depth_scale_factor F for metres"


def test_export_records_metric_or_relative_depth_from_the_weights(weights, tmp_path, monkeypatch):  # noqa: F811
    """export.py writes metric/depth_scale_factor/depth_note from opt.json's use_stereo (tracing stubbed)."""
    import deployment.export
    import export as export_script

    recorded = {}
    monkeypatch.setattr(deployment.export, "export_models",
                        lambda net, save_dir, h, w, layout, formats, extra: recorded.update(extra) or {"parts": {}})
    for use_stereo, metric, factor in [(False, False, 1.0)]:  # stereo: the same rule (predict's tests)
        folder = tmp_path / f"stereo_{use_stereo}"
        shutil.copytree(weights, folder)
        opt = json.loads((folder / "opt.json").read_text())
        (folder / "opt.json").write_text(json.dumps(dict(opt, use_stereo=use_stereo)))
        export_script.main(["--load_weights_folder", str(folder), "--save_dir", str(tmp_path / "d")])
        assert (recorded["metric"], recorded["depth_scale_factor"]) == (metric, factor)
        assert recorded["depth_note"] == (None if use_stereo else RELATIVE_NOTE)


def test_inference_follows_the_metric_flag_of_deploy_json(exported, photo_folder, tmp_path, capsys):  # noqa: F811
    """A folder exported from monocular-only weights: relative depth (factor 1) and the note once;
    an explicit --pred_depth_scale_factor wins."""
    folder = str(tmp_path / "mono")
    shutil.copytree(exported["combined"], folder)
    path = os.path.join(folder, "deploy.json")
    config = json.load(open(path))
    config.update(metric=False, depth_scale_factor=1.0, depth_note=RELATIVE_NOTE)
    json.dump(config, open(path, "w"))
    photo = os.path.join(photo_folder, "astronaut.jpg")
    for factor, argv in [(1.0, []), (3.0, ["--pred_depth_scale_factor", "3"])]:
        out = str(tmp_path / f"out{factor}")
        inference.main(["--infer_files_dir", folder, "--backend", "onnxruntime", "--color_path", photo,
                        "--output_dir", out] + argv)
        printed = capsys.readouterr().out
        assert printed.count(RELATIVE_NOTE) == (1 if factor == 1.0 else 0)
        disp = cv2.resize(np.load(os.path.join(out, "astronaut_disp.npy")), (512, 512),
                          interpolation=cv2.INTER_LINEAR).astype(np.float64)
        expected = factor / (1 / 80 + (1 / 0.2 - 1 / 80) * disp)  # the weights' depth range 0.2 .. 80
        np.testing.assert_allclose(np.load(os.path.join(out, "astronaut_depth.npy")), expected, rtol=1e-5)


def readme_snippet():
    """The README's Python block that runs an exported model (Export and deploy), as a user copies it."""
    readme = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")).read()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "DepthPredictor(" in b]
    assert len(blocks) == 1, "the README shows one Python block with DepthPredictor"
    return blocks[0]


def test_readme_snippet_runs_on_a_path_a_pil_image_of_any_mode_and_an_array(exported, photo_folder):  # noqa: F811
    photo = os.path.join(photo_folder, "chelsea.png")
    code = readme_snippet().replace("inference_model", exported["combined"]).replace("photo.jpg", photo)
    scope = {}
    exec(code, scope)  # noqa: S102  (the README's lines, as a user pastes them)
    depth, disp, predictor = scope["depth"], scope["disp"], scope["predictor"]
    image = Image.open(photo)
    assert depth.shape == (image.height, image.width) and disp.shape == (1, 1, 64, 128)
    resized = cv2.resize(disp[0, 0], image.size, interpolation=cv2.INTER_LINEAR).astype(np.float64)
    np.testing.assert_allclose(depth, 5.4 / (1 / 80 + (1 / 0.2 - 1 / 80) * resized), rtol=1e-5)
    assert predictor.metric and predictor.scale_factor == 5.4
    np.testing.assert_array_equal(predictor(image.convert("RGB")), disp)
    np.testing.assert_array_equal(predictor(np.asarray(image.convert("RGB"))), disp)
    rgba = image.convert("RGBA")  # opaque: the same pixels after compositing onto white
    np.testing.assert_array_equal(predictor(rgba), disp)
    grey = image.convert("L")  # any mode is converted to RGB first
    np.testing.assert_array_equal(predictor(grey), predictor(np.asarray(grey.convert("RGB"))))
