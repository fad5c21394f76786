"""Depth errors, crop, scaling and post-processing against hand-computed cases."""
import numpy as np
import pytest

from utils.geometry.metrics import (compute_depth_errors, evaluate_depth, evaluation_mask, garg_crop_mask,
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
    pred, ratio = scale_prediction(gt / 5.4, gt, "factor")
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
    errors, ratio = evaluate_depth(gt, disp, "factor")
    assert errors[0] == pytest.approx(0.8, rel=1e-5)
    assert evaluation_mask(gt).sum() == (55 - 30) * (190 - 10) - 2  # minus the 100 m and the 0 m points


def _monodepth2_errors(gt, disp, eigen):
    """Monodepth2's evaluate_depth for one image, in plain numpy: eigen masks 1e-3 < gt < 80 inside
    the Garg crop, every other split gt > 0; median scaling; predictions clipped to [1e-3, 80]."""
    import cv2
    h, w = gt.shape
    pred = 1 / cv2.resize(disp, (w, h))
    if eigen:
        mask = (gt > 1e-3) & (gt < 80)
        crop = np.zeros_like(mask)
        crop[int(0.40810811 * h):int(0.99189189 * h), int(0.03594771 * w):int(0.96405229 * w)] = True
        mask &= crop
    else:
        mask = gt > 0
    g, p = gt[mask].astype(np.float64), pred[mask].astype(np.float64)
    p = np.clip(p * np.median(g) / np.median(p), 1e-3, 80)
    t = np.maximum(g / p, p / g)
    return [np.mean(np.abs(g - p) / g), np.mean((g - p) ** 2 / g), np.sqrt(np.mean((g - p) ** 2)),
            np.sqrt(np.mean((np.log(g) - np.log(p)) ** 2))] + [np.mean(t < 1.25 ** k) for k in (1, 2, 3)], mask.sum()


def test_eigen_and_eigen_benchmark_masks_follow_monodepth2():
    """eigen: Garg crop and 1e-3 < gt < 80; eigen_benchmark (and any other split): gt > 0, so ground
    truth beyond 80 m and pixels outside the crop count. Predictions are clipped to [1e-3, 80] in both."""
    from utils.cameras.kitti_layout import eval_rules
    rng = np.random.RandomState(0)
    h, w = 60, 200
    gt = np.where(rng.uniform(size=(h, w)) < 0.3, rng.uniform(2, 120, (h, w)), 0).astype(np.float32)
    disp = rng.uniform(0.02, 0.5, (12, 40)).astype(np.float32)
    crop = garg_crop_mask(h, w)
    assert ((gt > 80) & crop).sum() > 50 and ((gt > 0) & ~crop).sum() > 500   # the case tests both rules
    assert eval_rules("eigen") == dict(garg_crop=True, cap_gt=True, min_depth=1e-3, max_depth=80.0)
    for split in ("eigen_benchmark", "/data/my_split/", "eigen_zhou"):
        assert eval_rules(split) == dict(garg_crop=False, cap_gt=False, min_depth=1e-3, max_depth=80.0)
    results = {}
    for split in ("eigen", "eigen_benchmark"):
        rules = eval_rules(split)
        expected, count = _monodepth2_errors(gt, disp, eigen=split == "eigen")
        assert evaluation_mask(gt, **rules).sum() == count
        results[split], _ = evaluate_depth(gt, disp, "median", **rules)
        np.testing.assert_allclose(results[split], expected, rtol=1e-6)
    assert evaluation_mask(gt, **eval_rules("eigen_benchmark")).sum() == (gt > 0).sum()
    assert abs(results["eigen"][2] - results["eigen_benchmark"][2]) > 1.0   # rmse: the > 80 m points count


def test_post_process_blend():
    l = np.full((2, 4, 100), 1.0)
    r = np.full((2, 4, 100), 3.0)
    out = post_process_disparity(l, r)
    assert out[0, 0, 0] == pytest.approx(3.0)   # left border: the mirrored prediction alone
    assert out[0, 0, -1] == pytest.approx(1.0)  # right border: the plain prediction alone
    assert out[0, 0, 50] == pytest.approx(2.0)  # middle: the mean
