"""Point clouds: back-projection of a known plane lands on that plane in metres, the PLY reads back with
numpy, cameras scale to resized photos and refuse other aspect ratios; predict.py --save_ply and the
Python API write / return the cloud of the predicted depth with the camera they say they used."""
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

import predict
from deployment import Predictor
from eval_fixtures import split_image_paths, synthetic_kitti, tamed_weights  # noqa: F401
from test_predict import weights_with
from utils.cameras.camera import CameraChoice, CameraError, check_camera, read_camera, scale_camera
from utils.geometry import pointcloud

CAMERA = {"fx": 50.0, "fy": 60.0, "cx": 39.5, "cy": 29.0, "width": 80, "height": 60}


def read_ply(path):
    """(header lines, structured vertices) of a binary little-endian PLY, parsed independently."""
    data = open(path, "rb").read()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    count = int(next(line.split()[2] for line in header if line.startswith("element vertex")))
    dtype = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1")])
    assert len(data) - end == count * dtype.itemsize
    return header, np.frombuffer(data[end:], dtype)


def test_tilted_plane_lands_on_its_plane_in_metres_and_the_ply_reads_back(tmp_path):
    # plane n . X = d (metres), tilted towards the camera; each pixel's depth is where its ray meets it
    n, d = np.array([0.2, -0.5, 1.0]), 4.0
    v, u = np.mgrid[0:60, 0:80]
    rays = np.stack([(u - CAMERA["cx"]) / CAMERA["fx"], (v - CAMERA["cy"]) / CAMERA["fy"], np.ones(u.shape)], -1)
    depth = d / (rays @ n)
    assert depth.min() > 0
    depth[5, 7] = 0.0       # no value: no point
    depth[6, 8] = np.nan
    rgb = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    camera = check_camera(CAMERA, "camera")
    points, colours = pointcloud.cloud(depth, rgb, scale_camera(camera, 80, 60))
    assert points.shape == (80 * 60 - 2, 3) and points.dtype == np.float32 and colours.dtype == np.uint8
    np.testing.assert_allclose(points.astype(np.float64) @ n, d, rtol=1e-6)         # on the plane
    valid = np.isfinite(depth) & (depth > 0)
    np.testing.assert_allclose(points[:, 2], depth[valid], rtol=1e-6)               # z is the depth
    np.testing.assert_allclose(points[:, 0], ((u - 39.5) * depth / 50.0)[valid], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(colours, rgb[valid])
    path = tmp_path / "plane.ply"
    pointcloud.write_ply(str(path), points, colours)
    header, vertices = read_ply(path)
    assert header[:2] == ["ply", "format binary_little_endian 1.0"] and f"element vertex {len(points)}" in header
    np.testing.assert_array_equal(np.stack([vertices["x"], vertices["y"], vertices["z"]], 1), points)
    np.testing.assert_array_equal(np.stack([vertices["r"], vertices["g"], vertices["b"]], 1), colours)
    assert os.listdir(tmp_path) == ["plane.ply"]


def test_camera_scales_to_a_resized_copy_and_refuses_another_aspect_ratio(tmp_path):
    path = tmp_path / "camera.json"
    path.write_text(json.dumps(dict(CAMERA, baseline=0.12)))
    choice = CameraChoice(str(path))
    assert choice.intrinsics(40, 30) == pytest.approx((25.0, 30.0, 19.75, 14.5))
    with pytest.raises(CameraError, match="another aspect ratio"):
        choice.intrinsics(60, 60)
    # KITTI's normalised K fits any size: fx = 0.58 W, fy = 1.92 H, centre (0.5 W, 0.5 H)
    assert CameraChoice().intrinsics(100, 50) == pytest.approx((58.0, 96.0, 50.0, 25.0))
    path.write_text('{"fx": 50, "fy": 60, "cx": 40}')
    with pytest.raises(CameraError, match="missing cy, width, height"):
        read_camera(str(path))


def test_predict_save_ply_with_camera_json_and_aspect_mismatch(synthetic_kitti, tamed_weights, tmp_path,  # noqa: F811
                                                                capsys):
    _, paths = split_image_paths(synthetic_kitti)
    photo = tmp_path / "street.jpg"
    shutil.copy(paths[0], photo)
    w, h = Image.open(photo).size
    camera = {"fx": 1.1 * w, "fy": 1.3 * w, "cx": w, "cy": 0.9 * h, "width": 2 * w, "height": 2 * h}  # a 2x original
    camera_path = tmp_path / "camera.json"
    camera_path.write_text(json.dumps(camera))
    mono = weights_with(tamed_weights, tmp_path, use_stereo=False, frame_ids=[0, -1, 1])
    out = tmp_path / "out"
    predict.main(["--load_weights_folder", mono, "--color_path", str(photo), "--output_dir", str(out), "--save_ply",
                  "--camera", str(camera_path)])
    printed = capsys.readouterr().out
    assert printed.count(f"point clouds: camera {camera_path}") == 1 and printed.count("relative depth") == 1
    depth = np.load(out / "street_depth.npy").astype(np.float64)
    _, vertices = read_ply(out / "street_points.ply")
    v, u = np.mgrid[0:h, 0:w]
    expect = np.stack([(u - camera["cx"] / 2) * depth / (camera["fx"] / 2),
                       (v - camera["cy"] / 2) * depth / (camera["fy"] / 2), depth], -1).reshape(-1, 3)
    np.testing.assert_allclose(np.stack([vertices["x"], vertices["y"], vertices["z"]], 1), expect, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.stack([vertices["r"], vertices["g"], vertices["b"]], 1),
                                  np.asarray(Image.open(photo).convert("RGB")).reshape(-1, 3))
    # a camera of another aspect ratio: one line, non-zero exit, nothing written
    camera_path.write_text(json.dumps(dict(camera, height=camera["width"])))
    with pytest.raises(SystemExit) as e:
        predict.main(["--load_weights_folder", mono, "--color_path", str(photo), "--output_dir",
                      str(tmp_path / "refused"), "--save_ply", "--camera", str(camera_path)])
    message = str(e.value.code)
    assert message.startswith("predict.py: error: ") and "another aspect ratio" in message and "\n" not in message
    assert not os.path.exists(tmp_path / "refused")


def test_metric_weights_give_points_in_metres_with_the_training_camera(synthetic_kitti, tamed_weights,  # noqa: F811
                                                                       tmp_path):
    """opt.json metric: true (the folder dataset's stereo with a real baseline): factor 1, metres; points()
    without a camera uses opt.json's camera scaled to the photo."""
    _, paths = split_image_paths(synthetic_kitti)
    photo = Image.open(paths[1]).convert("RGB")
    w, h = photo.size
    trained = {"fx": 0.9 * w, "fy": 0.9 * w, "cx": 0.5 * w, "cy": 0.5 * h, "width": w, "height": h}
    weights = weights_with(tamed_weights, tmp_path, use_stereo=True, frame_ids=[0], metric=True,
                           camera=trained)
    predictor = Predictor(weights)
    assert (predictor.metric, predictor.scale_factor, predictor.scale_note) == (True, 1.0, None)
    disp = predictor.disparity(photo).astype(np.float64)
    assert disp.shape == (h, w)
    depth = 1 / (1 / 100 + (1 / 0.1 - 1 / 100) * disp)  # disp_to_depth, factor 1: metres
    np.testing.assert_allclose(predictor.depth(photo), depth, rtol=1e-5)
    points, colours = predictor.points(photo)
    u = np.arange(w)[None, :].repeat(h, 0)
    np.testing.assert_allclose(points[:, 0], ((u - 0.5 * w) * depth / (0.9 * w)).ravel(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(points[:, 2], depth.ravel(), rtol=1e-5)
    np.testing.assert_array_equal(colours, np.asarray(photo).reshape(-1, 3))
