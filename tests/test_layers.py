"""Geometry and SSIM against analytic cases."""
import numpy as np
import paddle
import pytest

from networks.layers import (SSIM, BackprojectDepth, Project3D, disp_to_depth, get_smooth_loss,
                             rot_from_axisangle, transformation_from_parameters)
from losses import warp_image
from utils.cameras.kitti_layout import intrinsics as kitti_intrinsics


def textured(b, c, h, w, seed=0):
    rng = np.random.RandomState(seed)
    return paddle.to_tensor(rng.rand(b, c, h, w).astype(np.float32))


def test_ssim_zero_for_identical_and_grows_with_distortion():
    x = textured(1, 3, 24, 32)
    ssim = SSIM()
    assert float(ssim(x, x).abs().max()) < 1e-6
    rng = np.random.RandomState(1)
    means = []
    for sigma in (0.02, 0.1, 0.3):
        noisy = paddle.clip(x + paddle.to_tensor(rng.randn(*x.shape).astype(np.float32) * sigma), 0, 1)
        loss = ssim(noisy, x)
        assert loss.shape == x.shape and float(loss.min()) >= 0 and float(loss.max()) <= 1
        means.append(float(loss.mean()))
    assert means[0] < means[1] < means[2]


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_rodrigues_quarter_turns(axis):
    vec = np.zeros((1, 1, 3), np.float32)
    vec[0, 0, axis] = np.pi / 2
    R = rot_from_axisangle(paddle.to_tensor(vec)).numpy()[0]
    c, s = 0.0, 1.0
    expected = {0: [[1, 0, 0], [0, c, -s], [0, s, c]],
                1: [[c, 0, s], [0, 1, 0], [-s, 0, c]],
                2: [[c, -s, 0], [s, c, 0], [0, 0, 1]]}[axis]
    np.testing.assert_allclose(R[:3, :3], expected, atol=1e-6)
    np.testing.assert_allclose(R[3], [0, 0, 0, 1])


def test_inverse_transform_is_transpose_and_inverse():
    rng = np.random.RandomState(3)
    aa = paddle.to_tensor(rng.randn(4, 1, 3).astype(np.float32) * 0.5)
    t = paddle.to_tensor(rng.randn(4, 1, 3).astype(np.float32))
    R = rot_from_axisangle(aa).numpy()[:, :3, :3]
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.tile(np.eye(3), (4, 1, 1)), atol=1e-5)
    M = transformation_from_parameters(aa, t).numpy()
    M_inv = transformation_from_parameters(aa, t, invert=True).numpy()
    np.testing.assert_allclose(M_inv @ M, np.tile(np.eye(4), (4, 1, 1)), atol=1e-5)
    np.testing.assert_allclose(M[:, :3, 3], t.numpy()[:, 0], atol=1e-6)  # M = T R


def test_disp_to_depth_bounds():
    scaled, depth = disp_to_depth(paddle.to_tensor([0.0, 1.0, 0.5]), 0.1, 100)
    np.testing.assert_allclose(depth.numpy()[:2], [100, 0.1], rtol=1e-6)
    np.testing.assert_allclose(scaled.numpy()[2], 0.01 + 0.5 * (10 - 0.01), rtol=1e-6)


def test_backproject_project_identity_returns_pixel_grid_any_batch():
    h, w, b = 6, 10, 3
    K = np.stack([kitti_intrinsics(w, h)] * b)
    depth = paddle.to_tensor(np.random.RandomState(0).uniform(1, 50, (b, 1, h, w)).astype(np.float32))
    backproject, project = BackprojectDepth(1, h, w), Project3D(1, h, w)  # built for batch 1, run with 3
    points = backproject(depth, paddle.to_tensor(np.linalg.inv(K)))
    grid = project(points, paddle.to_tensor(K), paddle.to_tensor(np.tile(np.eye(4, dtype=np.float32), (b, 1, 1))))
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    expected = np.stack([u / (w - 1), v / (h - 1)], -1) * 2 - 1
    assert grid.shape == [b, h, w, 2]
    np.testing.assert_allclose(grid.numpy(), np.broadcast_to(expected, (b, h, w, 2)), atol=1e-4)


def test_stereo_warp_reproduces_shifted_image():
    """A fronto-parallel scene at depth d seen by a camera moved by t_x shows a disparity of
    fx t_x / d pixels; pick d so that it is exactly 3 px."""
    h, w, shift, t_x = 16, 40, 3, 0.1
    K = kitti_intrinsics(w, h)
    depth_value = K[0, 0] * t_x / shift
    src = textured(1, 3, h, w, seed=5)
    T = np.eye(4, dtype=np.float32)
    T[0, 3] = t_x
    warped = warp_image(src, paddle.full([1, 1, h, w], depth_value), paddle.to_tensor(K[None]),
                        paddle.to_tensor(np.linalg.inv(K)[None]), paddle.to_tensor(T[None])).numpy()
    # x_src = x_tgt + fx t_x / d: the warped image is the source shifted left by `shift`
    np.testing.assert_allclose(warped[..., :w - shift], src.numpy()[..., shift:], atol=1e-4)


def test_smoothness_analytic_ramp():
    w = 9
    disp = paddle.to_tensor(np.tile(np.arange(w, dtype=np.float32) * 0.5, (1, 1, 4, 1)))
    flat = paddle.zeros([1, 3, 4, w])
    assert abs(float(get_smooth_loss(disp, flat)) - 0.5) < 1e-6  # |dx d| = 0.5, dy = 0, exp(0) = 1
    edges = paddle.to_tensor(np.tile(np.arange(w, dtype=np.float32), (1, 3, 4, 1)))  # |dx I| = 1
    assert abs(float(get_smooth_loss(disp, edges)) - 0.5 * np.exp(-1)) < 1e-6
