"""utils/cameras/photo.py and its wiring into predict.py, inference.py, Predictor and the web page: each photo's
camera (--camera, else EXIF, else the training camera) and the focal rescaling of metric depth, on a synthetic
scene seen through two focal lengths by a stand-in for a network that learned metric depth from apparent size."""
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

import app
import inference
import options
import predict
from deployment import Predictor, runtime
from eval_fixtures import synthetic_kitti, tamed_weights  # noqa: F401  (session fixtures)
from test_export import exported, weights  # noqa: F401  (session fixtures: tamed weights, exported folders)
from utils.cameras import exif
from utils.cameras.camera import CameraError
from utils.cameras.photo import FocalRescale, PhotoCameras
from utils.geometry import pointcloud
from utils.io import image_io, photo_loop

W, H = 320, 240
SIDE, DEPTH = 2.0, 6.0                    # a square 2 m wide, 6 m ahead
F35 = 32                                  # the photo's 35 mm equivalent focal length (an integer, as EXIF stores it)
FX_PHOTO = F35 * np.hypot(W, H) / np.hypot(36, 24)   # its focal length in pixels (utils/cameras/exif.py)
TRAIN = {"fx": 200.0, "fy": 200.0, "cx": W / 2, "cy": H / 2, "width": W, "height": H}   # the training camera


def square_photo(fx, supersample=8):
    """RGB uint8 W x H photo of the bright square (SIDE wide at DEPTH) on a dark background through a centred
    pinhole of focal length fx, anti-aliased by supersampling."""
    half = fx * SIDE / DEPTH / 2
    u = (np.arange(W * supersample) + 0.5) / supersample - 0.5 - W / 2
    v = (np.arange(H * supersample) + 0.5) / supersample - 0.5 - H / 2
    inside = (np.abs(u)[None, :] < half) & (np.abs(v)[:, None] < half)
    grey = inside.reshape(H, supersample, W, supersample).mean(axis=(1, 3)) * 200 + 30
    return np.repeat(np.round(grey).astype(np.uint8)[..., None], 3, axis=2)


def apparent_width(image):
    """The square's width in pixels, from the anti-aliased middle row."""
    row = np.asarray(image, np.float64)[np.asarray(image).shape[0] // 2, :, 0]
    return float(((row - 30) / 200).sum())


def stand_in_disparity(image, min_depth, max_depth, size):
    """A network trained on TRAIN: the depth at which TRAIN's camera sees the square this wide, as the constant
    sigmoid disparity that disp_to_depth maps to it (network size `size` = (height, width))."""
    depth = TRAIN["fx"] * SIDE / apparent_width(image)
    disp = (1 / depth - 1 / max_depth) / (1 / min_depth - 1 / max_depth)
    return np.full(size, disp, np.float32)


@pytest.fixture
def photos(tmp_path):
    """{"exif": the photo through FX_PHOTO with its EXIF, "plain": the same without EXIF, "train": the scene
    through the training camera, "corrupt": the first with corrupt EXIF}."""
    folder = tmp_path / "photos"
    folder.mkdir()
    out = {"plain": folder / "plain.png", "train": folder / "train.png"}
    Image.fromarray(square_photo(FX_PHOTO)).save(out["plain"])
    Image.fromarray(square_photo(TRAIN["fx"])).save(out["train"])
    tags = Image.Exif()
    tags[0x010F] = "Phone"                 # Make (a PNG's EXIF needs a tag in IFD0 to be written at all)
    tags.get_ifd(exif.EXIF_IFD)[exif.FOCAL_35] = F35
    Image.fromarray(square_photo(FX_PHOTO)).save(folder / "exif.png", exif=tags)
    Image.fromarray(square_photo(FX_PHOTO)).save(folder / "corrupt.png", exif=b"MM\x00*garbage")
    out.update(exif=folder / "exif.png", corrupt=folder / "corrupt.png")
    return {k: str(v) for k, v in out.items()}


@pytest.fixture
def metric_weights(tamed_weights, tmp_path, monkeypatch):  # noqa: F811
    """Weights whose opt.json records metric depth learned with the camera TRAIN, the stand-in as their network."""
    folder = tmp_path / "metric"
    shutil.copytree(tamed_weights, folder)
    opt = json.loads((folder / "opt.json").read_text())
    opt.update(metric=True, camera=TRAIN)
    (folder / "opt.json").write_text(json.dumps(opt))
    def predict_disp_and_size(self, image):
        image = image_io.load_image(image)
        return stand_in_disparity(image, self.min_depth, self.max_depth, (self.height, self.width)), image.size
    monkeypatch.setattr(Predictor, "predict_disp_and_size", predict_disp_and_size)
    return str(folder)


def test_the_stand_in_network_and_the_focal_ratio(photos):
    depth_of = lambda path: TRAIN["fx"] * SIDE / apparent_width(Image.open(path))  # noqa: E731
    assert depth_of(photos["train"]) == pytest.approx(DEPTH, rel=0.005)               # right on its own camera
    assert depth_of(photos["plain"]) == pytest.approx(DEPTH * TRAIN["fx"] / FX_PHOTO, rel=0.005)   # short on another
    factor, note, metadata = FocalRescale(PhotoCameras(None, TRAIN)).of(photos["exif"], W, H)
    assert factor == pytest.approx(FX_PHOTO / TRAIN["fx"]) and metadata["focal_rescale"] == factor
    assert "its EXIF" in note
    assert FocalRescale(PhotoCameras(None, TRAIN)).of(photos["plain"], W, H) == (1.0, None, None)
    given = dict(TRAIN, fx=2 * FX_PHOTO, width=2 * W, height=2 * H)       # a camera.json of a 2x larger copy
    assert FocalRescale(PhotoCameras(given, TRAIN)).of(photos["exif"], W, H)[0] == pytest.approx(FX_PHOTO / TRAIN["fx"])
    # KITTI-trained weights (no camera recorded): fx_train = 0.58 W
    assert FocalRescale(PhotoCameras(None, None)).of(photos["exif"], W, H)[0] == pytest.approx(FX_PHOTO / W / 0.58)


def test_each_photo_s_camera_given_then_exif_then_training(photos):
    cameras = PhotoCameras(None, TRAIN)
    assert cameras.intrinsics(W, H, photos["exif"]) == pytest.approx((FX_PHOTO, FX_PHOTO, W / 2, H / 2))
    assert cameras.intrinsics(W, H, photos["plain"]) == pytest.approx((200, 200, 160, 120))
    assert list(cameras.notes) == [photos["exif"]]
    assert "35 mm equivalent focal length 32 mm" in cameras.notes[photos["exif"]]
    given = dict(TRAIN, fx=250.0, fy=250.0)
    assert PhotoCameras(given, TRAIN).intrinsics(W, H, photos["exif"]) == pytest.approx((250, 250, 160, 120))
    with pytest.raises(CameraError, match="corrupt EXIF"):
        cameras.intrinsics(W, H, photos["corrupt"])


def test_predict_rescales_metric_depth_and_records_it(metric_weights, photos, tmp_path, capsys):
    base = ["--load_weights_folder", metric_weights, "--color_path"]
    predict.main(base + [photos["exif"], "--output_dir", str(tmp_path / "on")])
    out = capsys.readouterr().out
    depth = np.load(tmp_path / "on" / "exif_depth.npy")
    assert np.median(depth) == pytest.approx(DEPTH, rel=0.01)                 # the true depth
    record = json.loads((tmp_path / "on" / "exif_depth.json").read_text())
    assert record["focal_rescale"] == pytest.approx(FX_PHOTO / TRAIN["fx"]) and record["photo_camera"] == "its EXIF"
    assert f"metric depth x {FX_PHOTO / TRAIN['fx']:.4g} for the photo's focal length" in out
    # the caption: metres only with the caveat that this photo's camera is not the training camera
    assert "metres assume the training camera; this photo's camera differs" in record["caption"]
    assert "depth: unknown training data; metres assume the training camera; this photo's camera is unknown" in out
    predict.main(base + [photos["exif"], "--output_dir", str(tmp_path / "off"), "--no-focal_rescale"])
    off = np.load(tmp_path / "off" / "exif_depth.npy")
    assert np.median(off) == pytest.approx(DEPTH * TRAIN["fx"] / FX_PHOTO, rel=0.01)   # the training camera's answer
    assert sorted(os.listdir(tmp_path / "off")) == ["exif_depth.json", "exif_depth.npy", "exif_disp.jpeg",
                                                    "exif_disp.npy"]
    record = json.loads((tmp_path / "off" / "exif_depth.json").read_text())   # not rescaled: camera unknown
    assert "focal_rescale" not in record and record["caption"].endswith("this photo's camera is unknown")
    # a --camera of the photos does the same for a photo without EXIF
    camera = tmp_path / "camera.json"
    camera.write_text(json.dumps(dict(TRAIN, fx=FX_PHOTO, fy=FX_PHOTO)))
    predict.main(base + [photos["plain"], "--output_dir", str(tmp_path / "given"), "--camera", str(camera)])
    assert np.median(np.load(tmp_path / "given" / "plain_depth.npy")) == pytest.approx(DEPTH, rel=0.01)


def test_predictor_api_rescales_by_exif_or_the_given_camera(metric_weights, photos):
    predictor = Predictor(metric_weights)
    assert np.median(predictor.depth(photos["exif"])) == pytest.approx(DEPTH, rel=0.01)
    assert np.median(predictor.depth(Image.open(photos["exif"]))) == pytest.approx(DEPTH, rel=0.01)   # a PIL image
    assert np.median(predictor.depth(photos["plain"], camera=dict(TRAIN, fx=FX_PHOTO, fy=FX_PHOTO))) == \
        pytest.approx(DEPTH, rel=0.01)
    predictor.focal_rescale = False   # as Predictor(..., focal_rescale=False)
    assert np.median(predictor.depth(photos["exif"])) == pytest.approx(DEPTH * TRAIN["fx"] / FX_PHOTO, rel=0.01)


def test_point_clouds_take_the_exif_camera(metric_weights, photos, tmp_path, capsys):
    predict.main(["--load_weights_folder", metric_weights, "--color_path", photos["exif"], "--output_dir",
                  str(tmp_path / "out"), "--save_ply", "--no-focal_rescale"])
    out = capsys.readouterr().out
    assert "camera from its EXIF 35 mm equivalent focal length 32 mm" in out
    with open(tmp_path / "out" / "exif_points.ply", "rb") as f:
        points = np.frombuffer(f.read().split(b"end_header\n", 1)[1], pointcloud.PLY_DTYPE)
    depth = np.load(tmp_path / "out" / "exif_depth.npy")
    u = np.tile(np.arange(W), H)
    # X = (u - cx) Z / fx with the EXIF camera: fx = FX_PHOTO, cx = W / 2
    np.testing.assert_allclose(points["x"], (u - W / 2) * depth.ravel() / FX_PHOTO, rtol=1e-4, atol=1e-5)
    xyz, _ = Predictor(metric_weights, focal_rescale=False).points(photos["exif"])
    np.testing.assert_allclose(xyz[:, 0], points["x"], rtol=1e-5, atol=1e-6)


def test_corrupt_exif_and_unused_camera_are_one_line(metric_weights, tamed_weights, photos,  # noqa: F811
                                                     tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        predict.main(["--load_weights_folder", metric_weights, "--color_path", photos["corrupt"], "--output_dir",
                      str(tmp_path / "out")])
    message = str(e.value.code)
    assert message.startswith("predict.py: error:") and "corrupt EXIF" in message and "\n" not in message
    assert not os.path.exists(tmp_path / "out") or not os.listdir(tmp_path / "out")
    relative = tmp_path / "relative"
    shutil.copytree(tamed_weights, relative)
    opt = json.loads((relative / "opt.json").read_text())
    (relative / "opt.json").write_text(json.dumps(dict(opt, use_stereo=False, frame_ids=[0, -1, 1])))
    camera = tmp_path / "camera.json"
    camera.write_text(json.dumps(TRAIN))
    with pytest.raises(SystemExit) as e:
        predict.main(["--load_weights_folder", str(relative), "--color_path", photos["plain"], "--camera", str(camera),
                      "--output_dir", str(tmp_path / "unused")])
    assert "these weights give relative depth" in str(e.value.code) and not os.path.exists(tmp_path / "unused")
    # relative weights read no EXIF: the corrupt photo is predicted as before
    predict.main(["--load_weights_folder", str(relative), "--color_path", photos["corrupt"], "--output_dir",
                  str(tmp_path / "rel")])
    assert (tmp_path / "rel" / "corrupt_depth.npy").is_file()


def test_inference_and_the_web_page_rescale_alike(exported, metric_weights, photos, tmp_path,  # noqa: F811
                                                  monkeypatch):
    model = tmp_path / "model"
    shutil.copytree(exported["split"], model)
    config = json.loads((model / "deploy.json").read_text())
    config.update(metric=True, depth_scale_factor=1.0, camera=TRAIN)
    (model / "deploy.json").write_text(json.dumps(config))
    monkeypatch.setattr(runtime.DepthPredictor, "__call__", lambda self, image: stand_in_disparity(
        image_io.load_image(image), self.min_depth, self.max_depth, (self.height, self.width))[None, None])
    inference.main(["--infer_files_dir", str(model), "--backend", "onnxruntime", "--color_path", photos["exif"],
                    "--output_dir", str(tmp_path / "inf")])
    assert np.median(np.load(tmp_path / "inf" / "exif_depth.npy")) == pytest.approx(DEPTH, rel=0.01)
    assert json.loads((tmp_path / "inf" / "exif_depth.json").read_text())["focal_rescale"] == \
        pytest.approx(FX_PHOTO / TRAIN["fx"])
    service = app.Service(options.parse("app", ["--load_weights_folder", metric_weights]))
    upload = {"path": photos["exif"], "orig_name": "e.png"}
    _, _, downloads, summary = app.photo_outputs(service, app.Requests(), upload, "magma", 10 ** 8)
    depth = np.load([d for d in downloads if d.endswith("_depth.npy")][0])
    assert np.median(depth) == pytest.approx(DEPTH, rel=0.01)
    assert "Point cloud: camera from its EXIF" in summary and "Metric depth x" in summary


def test_photo_loop_refuses_relative_weights_camera_only():
    with pytest.raises(photo_loop.InputError, match="relative depth"):
        photo_loop.focal_setup(True, False, "camera.json", None)
    assert photo_loop.focal_setup(False, True, None, None) is None
    assert isinstance(photo_loop.focal_setup(True, True, None, None), FocalRescale)


def test_video_frames_take_a_given_camera_s_focal_ratio(tmp_path):
    """Frames carry no EXIF: a video is rescaled only by a given camera's ratio, fx_photo / fx_train at one width."""
    from test_video import write_video
    from utils.io.output_options import OutputOptions

    source = tmp_path / "clip.avi"
    write_video(source, frames=2)
    disp = lambda image: np.full((32, 48), 0.25, np.float32)  # noqa: E731  (a constant stand-in network)
    given = dict(TRAIN, fx=FX_PHOTO, fy=FX_PHOTO)
    for name, focal in (("plain", None), ("given", FocalRescale(PhotoCameras(given, TRAIN))),
                        ("exif", FocalRescale(PhotoCameras(None, TRAIN)))):
        result = photo_loop.predict_photos([str(source)], disp, OutputOptions(str(tmp_path / name), focal=focal))
        assert len(result.videos) == 1 and not result.failed
    depth = {n: np.load(tmp_path / n / "clip" / "clip_000001_depth.npy") for n in ("plain", "given", "exif")}
    np.testing.assert_allclose(depth["given"], depth["plain"] * FX_PHOTO / TRAIN["fx"], rtol=1e-5)
    np.testing.assert_allclose(depth["exif"], depth["plain"], rtol=1e-6)
