"""Depth errors, crop, scaling and post-processing against hand-computed cases."""
import numpy as np
import pytest

from utils.metrics import (compute_depth_errors, evaluate_depth, evaluation_mask, garg_crop_mask,
                           post_process_disparity, scale_prediction)


def test_perfect_prediction():
    gt = np.random.RandomState(0).uniform(1, 80, 500)
    errors = compute_depth_errors(gt, gt.copy())
    np.testing.assert_allclose(errors[:4], 0, atol=1e-12)
    assert errors[4:] == (1.0, 1.0, 1.0)


def test_hand_computed_case():
    gt, pred = np.array([1.0, 2.0, 4.0]), np.array([2.0, 2.0, 2.0])
    abs_rel, sq_rel, rmse, rmse_log, a1, a2, a3 = compute_depth_errors(gt, pred)
    assert abs_rel == pytest.approx((1 + 0 + 0.5) / 3)
    assert sq_rel == pytest.approx((1 + 0 + 1) / 3)
    assert rmse == pytest.approx(np.sqrt(5 / 3))
    assert rmse_log == pytest.approx(np.sqrt(2 * np.log(2) ** 2 / 3))
    assert (a1, a2, a3) == pytest.approx((1 / 3, 1 / 3, 1 / 3))  # ratios 2, 1, 2: only the exact one < 1.25^3


def test_garg_crop_on_kitti_size():
    mask = garg_crop_mask(375, 1242)
    rows, cols = np.where(mask)
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (153, 371, 44, 1197)


def test_median_and_stereo_scaling():
    gt = np.array([2.0, 4.0, 6.0, 30.0])
    pred, ratio = scale_prediction(gt / 3.0, gt, "median")
    assert ratio == pytest.approx(3.0)
    np.testing.assert_allclose(pred, gt)
    pred, ratio = scale_prediction(gt / 5.4, gt, "stereo")
    assert ratio == 5.4
    np.testing.assert_allclose(pred, gt)
    with pytest.raises(ValueError):
        scale_prediction(gt, gt, "mean")


def test_evaluate_depth_on_constructed_image():
    """A constant disparity 1/d at low resolution predicts depth d everywhere; the ground truth is
    3 d inside the crop, so median scaling gives ratio 3 and zero error; with the stereo factor the
    error is |3 d - 5.4 d| / (3 d) = 0.8; outside-range points (0, 100) are ignored."""
    h, w, d = 60, 200, 2.0
    gt = np.zeros((h, w), np.float32)
    gt[30:55, 10:190] = 3 * d
    gt[40, 50], gt[41, 60] = 100.0, 0.0
    disp = np.full((12, 40), 1 / d, np.float32)
    errors, ratio = evaluate_depth(gt, disp, "median")
    assert ratio == pytest.approx(3.0)
    assert errors[0] == pytest.approx(0.0, abs=1e-6) and errors[4] == 1.0
    errors, ratio = evaluate_depth(gt, disp, "stereo")
    assert errors[0] == pytest.approx(0.8, rel=1e-5)
    assert evaluation_mask(gt).sum() == (55 - 30) * (190 - 10) - 2  # minus the 100 m and the 0 m points


def test_post_process_blend():
    l = np.full((2, 4, 100), 1.0)
    r = np.full((2, 4, 100), 3.0)
    out = post_process_disparity(l, r)
    assert out[0, 0, 0] == pytest.approx(3.0)   # left border: the mirrored prediction alone
    assert out[0, 0, -1] == pytest.approx(1.0)  # right border: the plain prediction alone
    assert out[0, 0, 50] == pytest.approx(2.0)  # middle: the mean
