"""The metric-scale losses against tests/numpy_losses.py: the sparse-depth loss (silog, l1)
with garbage (NaN, inf, 0, negative) at the invalid pixels of both prediction and ground truth
- the loss must equal the numpy value on the valid pixels and the gradient there must be
exactly zero - and the velocity loss."""
import numpy as np
import paddle
import pytest

from losses import sparse_depth_loss, velocity_loss
from tests import numpy_losses as ref

B, H, W = 3, 8, 12


def _batch(seed=0):
    """pred, gt positive where valid (about 20 % of the pixels, as sparse as a projected scan),
    garbage elsewhere; image 2 has no valid pixel at all."""
    rng = np.random.default_rng(seed)
    pred = rng.uniform(0.5, 30.0, (B, 1, H, W)).astype("float32")
    gt = rng.uniform(1.0, 80.0, (B, 1, H, W)).astype("float32")
    valid = rng.random((B, 1, H, W)) < 0.2
    valid[2] = False
    garbage = np.array([np.nan, np.inf, -np.inf, 0.0, -3.0], "float32")
    bad = ~valid
    pred[bad] = garbage[rng.integers(0, len(garbage), bad.sum())]
    gt[bad] = garbage[rng.integers(0, len(garbage), bad.sum())]
    return pred, gt, valid


@pytest.mark.parametrize("kind,lam", [("silog", 0.85), ("silog", 0.5), ("l1", 0.85)])
@pytest.mark.parametrize("mask_dtype", ["bool", "float32"])
def test_sparse_depth_loss_matches_numpy_and_ignores_garbage(kind, lam, mask_dtype):
    pred, gt, valid = _batch()
    p = paddle.to_tensor(pred, stop_gradient=False)
    loss = sparse_depth_loss(p, paddle.to_tensor(gt), paddle.to_tensor(valid.astype(mask_dtype)),
                             kind=kind, silog_lambda=lam)
    loss.backward()
    expected = ref.sparse_depth(pred, gt, valid, kind, lam)
    assert np.isfinite(float(loss))
    np.testing.assert_allclose(float(loss), expected, rtol=2e-5, atol=1e-7)
    grad = p.grad.numpy()
    assert np.all(grad[~valid] == 0.0)  # exactly zero, not NaN, at every garbage pixel
    assert np.all(np.isfinite(grad[valid])) and np.any(grad[valid] != 0)


def test_sparse_depth_gradient_matches_numpy_finite_difference():
    """d loss / d pred at a valid pixel against a central difference of the numpy reference."""
    pred, gt, valid = _batch(1)
    p = paddle.to_tensor(pred, stop_gradient=False)
    sparse_depth_loss(p, paddle.to_tensor(gt), paddle.to_tensor(valid)).backward()
    idx = tuple(np.argwhere(valid)[3])
    eps = 1e-3
    hi, lo = pred.astype(np.float64), pred.astype(np.float64)
    hi[idx] += eps
    lo[idx] -= eps
    numeric = (ref.sparse_depth(hi, gt, valid) - ref.sparse_depth(lo, gt, valid)) / (2 * eps)
    np.testing.assert_allclose(p.grad.numpy()[idx], numeric, rtol=1e-3, atol=1e-7)


def test_silog_is_scale_invariant_at_lambda_one_and_not_below():
    """lambda = 1 turns silog into the variance of d: a global scale of the prediction changes
    nothing; at 0.85 the scale is penalised by (1 - lambda) log(scale)^2."""
    pred, gt, valid = _batch(2)
    gt_t, v = paddle.to_tensor(gt), paddle.to_tensor(valid)
    clean = np.where(valid, gt, 1.0).astype("float32")
    base = float(sparse_depth_loss(paddle.to_tensor(clean), gt_t, v, silog_lambda=1.0))
    scaled = float(sparse_depth_loss(paddle.to_tensor(3 * clean), gt_t, v, silog_lambda=1.0))
    assert abs(base) < 1e-6 and abs(scaled) < 1e-6
    penalised = float(sparse_depth_loss(paddle.to_tensor(3 * clean), gt_t, v, silog_lambda=0.85))
    # images 0 and 1 have valid pixels, image 2 none: mean over 3 images
    np.testing.assert_allclose(penalised, 2 / 3 * 0.15 * np.log(3) ** 2, rtol=1e-4)


def test_unknown_kind_is_refused():
    x = paddle.ones([1, 1, 2, 2])
    with pytest.raises(ValueError):
        sparse_depth_loss(x, x, x > 0, kind="l2")


def test_velocity_loss_matches_numpy_and_masks_unknown_distances():
    rng = np.random.default_rng(3)
    t = rng.normal(0, 1, (4, 1, 3)).astype("float32")
    dist = rng.uniform(0, 2, 4).astype("float32")
    tt = paddle.to_tensor(t, stop_gradient=False)
    loss = velocity_loss(tt, paddle.to_tensor(dist))
    np.testing.assert_allclose(float(loss), ref.velocity(t, dist), rtol=1e-5)
    known = np.array([True, False, True, True])
    dist_bad = dist.copy()
    dist_bad[1] = np.nan
    tt.clear_gradient()
    masked = velocity_loss(tt, paddle.to_tensor(dist_bad), paddle.to_tensor(known))
    masked.backward()
    np.testing.assert_allclose(float(masked), ref.velocity(t[known], dist[known]) * 3 / 4, rtol=1e-5)
    assert np.all(tt.grad.numpy()[1] == 0) and np.all(np.isfinite(tt.grad.numpy()))
