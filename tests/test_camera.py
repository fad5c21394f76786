"""utils/cameras/camera.py: the one camera check, intrinsics at a network size, and the mirrored camera of a
flipped sample, whose back-projection must be the exact mirror of the unflipped one's (off-centre camera)."""
import json

import numpy as np
import paddle
import pytest

from networks.layers import BackprojectDepth
from utils.cameras.camera import (CameraError, MissingCameraError, check_camera, intrinsics, read_camera,
                                  scale_camera)
from utils.cameras.kitti_layout import LayoutError, MissingFileError
from utils.geometry.pointcloud import back_project

# principal point far from the centre (a crop of a larger sensor), non-square pixels
OFF_CENTRE = {"fx": 70.0, "fy": 55.0, "cx": 20.0, "cy": 30.0, "width": 96, "height": 72, "baseline": 0.3}


def backprojected(depth, k):
    """networks.layers.BackprojectDepth of one H x W depth map with the 4 x 4 K: H x W x 3 points."""
    h, w = depth.shape
    layer = BackprojectDepth(1, h, w)
    inv_k = paddle.to_tensor(np.linalg.inv(k).astype(np.float32)[None])
    points = layer(paddle.to_tensor(depth[None, None].astype(np.float32)), inv_k).numpy()[0, :3]
    return points.reshape(3, h, w).transpose(1, 2, 0)


@pytest.mark.parametrize("w,h", [(96, 72), (64, 48), (32, 24)])
def test_flipped_sample_backprojects_to_the_exact_mirror(w, h):
    """Depth d and its mirror fliplr(d) with the camera and its flipped camera at a network size: pixel
    (v, W-1-u) of the flipped sample lands on (-X, Y, Z) of pixel (v, u), for the networks' BackprojectDepth
    and for the point clouds' back_project alike."""
    depth = np.random.default_rng(w).uniform(1.0, 30.0, (h, w))
    k, k_flip = intrinsics(OFF_CENTRE, w, h), intrinsics(OFF_CENTRE, w, h, do_flip=True)
    np.testing.assert_allclose(k_flip[0, 2], w - 1 - OFF_CENTRE["cx"] * w / 96, rtol=1e-6)
    mirror = np.array([-1.0, 1.0, 1.0])
    points = backprojected(depth, k)
    flipped = backprojected(depth[:, ::-1], k_flip)[:, ::-1]
    np.testing.assert_allclose(flipped, points * mirror, rtol=1e-5, atol=1e-4)
    both = [back_project(d, k_[0, 0], k_[1, 1], k_[0, 2], k_[1, 2]) for d, k_ in ((depth, k), (depth[:, ::-1], k_flip))]
    np.testing.assert_allclose(both[1][:, ::-1], both[0] * mirror, rtol=1e-6, atol=1e-5)   # K is float32


def test_intrinsics_scale_with_the_image():
    k = intrinsics(OFF_CENTRE, 48, 36)
    np.testing.assert_allclose(k, [[35, 0, 10, 0], [0, 27.5, 15, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    assert scale_camera(check_camera(OFF_CENTRE, "camera"), 48, 36) == pytest.approx((35, 27.5, 10, 15))


def test_one_check_for_every_source(tmp_path):
    """camera.json, opt.json's camera and a caller's dict go through the same check: one line naming the
    source, a LayoutError (datasets.DataError) too, and a missing file a MissingFileError."""
    assert check_camera(dict(OFF_CENTRE, width=96.0), "x") == OFF_CENTRE
    assert check_camera({k: v for k, v in OFF_CENTRE.items() if k != "baseline"}, "x")["baseline"] is None
    bad = {"missing cy": dict(fx=1, fy=1, cx=1, width=2, height=2), "must be numbers": dict(OFF_CENTRE, fx="a"),
           "fy, baseline must be > 0": dict(OFF_CENTRE, fy=0, baseline=-1), "finite": dict(OFF_CENTRE, cx=np.inf),
           "whole numbers": dict(OFF_CENTRE, width=95.5), "not a JSON object": [1, 2]}
    for words, camera in bad.items():
        with pytest.raises(CameraError, match=words) as e:
            check_camera(camera, "opt.json camera")
        assert "\n" not in str(e.value) and str(e.value).startswith("opt.json camera: ")
        assert isinstance(e.value, LayoutError)
    path = tmp_path / "camera.json"
    path.write_text(json.dumps(OFF_CENTRE))
    assert read_camera(path) == OFF_CENTRE
    path.write_text("{oops")
    with pytest.raises(CameraError, match="not readable JSON"):
        read_camera(path)
    with pytest.raises(MissingCameraError, match="missing camera file") as e:
        read_camera(tmp_path / "none.json")
    assert isinstance(e.value, MissingFileError)
