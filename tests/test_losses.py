"""Reprojection loss, auto-masking, depth-hint selection and the re-weighted multi-scale total."""
import numpy as np
import paddle

from losses import compute_losses, hint_loss, reprojection_loss, select_masks
from networks.layers import kitti_intrinsics


def rand(shape, seed):
    return paddle.to_tensor(np.random.RandomState(seed).rand(*shape).astype(np.float32))


def test_reprojection_loss_zero_for_identical_and_grows():
    x = rand((2, 3, 16, 20), 0)
    assert float(reprojection_loss(x, x).abs().max()) < 1e-6
    values = [float(reprojection_loss(paddle.clip(x + a * rand(x.shape, 1) - a / 2, 0, 1), x).mean())
              for a in (0.05, 0.2, 0.6)]
    assert values[0] < values[1] < values[2]
    assert reprojection_loss(x, x).shape == [2, 1, 16, 20]


def test_select_masks_matches_numpy_argmin_with_ties_to_lowest():
    rng = np.random.RandomState(0)
    # quantised values give many exact ties
    reproj, identity, hint = (rng.randint(0, 4, (2, 1, 8, 8)).astype(np.float32) for _ in range(3))
    mask, hint_mask = select_masks(*(paddle.to_tensor(a) for a in (reproj, identity, hint)))
    idx = np.argmin(np.concatenate([reproj, identity, hint], 1), axis=1)[:, None]  # first minimum wins
    np.testing.assert_array_equal(mask.numpy(), (idx != 1).astype(np.float32))
    np.testing.assert_array_equal(hint_mask.numpy(), (idx == 2).astype(np.float32))
    mask2, none = select_masks(paddle.to_tensor(reproj), paddle.to_tensor(identity))
    assert none is None
    np.testing.assert_array_equal(mask2.numpy(), (np.argmin(np.concatenate([reproj, identity], 1), 1)[:, None] != 1))


def test_hint_loss_formula():
    hint = paddle.to_tensor([[[[2.0, 5.0, 1.0]]]])
    depth = paddle.to_tensor([[[[1.0, 1.0, 1.0]]]])
    valid = paddle.to_tensor([[[[1.0, 1.0, 0.0]]]])
    mask = paddle.to_tensor([[[[1.0, 0.0, 1.0]]]])
    assert abs(float(hint_loss(hint, depth, valid, mask)) - np.log(2.0) / 2) < 1e-6


def _scene(h=16, w=24, scales=(0, 1, 2, 3), static=False):
    """Inputs where the warped sources equal the target exactly (perfect reprojection) and the
    unwarped sources differ from it (or equal it when `static`)."""
    target = paddle.full([1, 3, h, w], 0.5)  # flat: the smoothness weight exp(-|dI|) is 1 at every scale
    inputs = {("color", 0, 0): target}
    for f in (-1, 1):
        inputs[("color", f, 0)] = target if static else rand((1, 3, h, w), 10 + f)
    outputs = {}
    for s in scales:
        hs, ws = h // 2 ** s, w // 2 ** s
        if s > 0:
            inputs[("color", 0, s)] = paddle.full([1, 3, hs, ws], 0.5)
        outputs[("disp", s)] = paddle.to_tensor(np.tile(1.0 + np.arange(ws, dtype=np.float32), (1, 1, hs, 1)))
        outputs[("depth", 0, s)] = paddle.ones([1, 1, h, w])
        for f in (-1, 1):
            outputs[("color", f, s)] = target
    return inputs, outputs


def test_total_is_reweighted_sum_of_smoothness_when_reprojection_is_perfect():
    """With perfect warps the reprojection term is 0, so the total is sum_s lambda/4^s smooth_s, with
    smooth_s = mean |dx (d / mean d)| = 1 / mean(d) (unit steps of a ramp)."""
    scales, lam = (0, 1, 2, 3), 0.3
    inputs, outputs = _scene(scales=scales)
    out = compute_losses(inputs, outputs, [0, -1, 1], scales, disparity_smoothness=lam)
    expected = 0.0
    for s in scales:
        ws = 24 // 2 ** s
        mean_d = np.mean(1.0 + np.arange(ws))
        smooth = 1.0 / mean_d  # every x-step of the normalised ramp is 1 / mean(d); y-steps are 0
        expected += lam / 4 ** s * smooth
        assert abs(float(out[f"reprojection/{s}"])) < 1e-6
    assert abs(float(out["loss"]) - expected) < 1e-5


def test_automask_picks_identity_where_the_scene_is_static():
    inputs, outputs = _scene(static=True)
    for f in (-1, 1):  # a bad warp: the identity (unwarped source == target) must win everywhere
        for s in (0, 1, 2, 3):
            outputs[("color", f, s)] = rand((1, 3, 16, 24), 20 + f)
    out = compute_losses(inputs, outputs, [0, -1, 1], (0, 1, 2, 3), disparity_smoothness=0.0)
    assert float(out["automask"].sum()) == 0.0
    assert float(out["loss"]) < 1e-6
    inputs, outputs = _scene(static=False)  # moving scene, perfect warp: nothing masked
    out = compute_losses(inputs, outputs, [0, -1, 1], (0, 1, 2, 3), disparity_smoothness=0.0)
    assert float(out["automask"].mean()) == 1.0


def test_depth_hints_term_enters_where_hint_reprojection_is_lowest():
    h, w = 16, 24
    inputs, outputs = _scene(h, w, scales=(0,))
    target = inputs[("color", 0, 0)]
    for f in (-1, 1):
        outputs[("color", f, 0)] = rand((1, 3, h, w), 30 + f)  # poor warps
    inputs[("color", "s", 0)] = rand((1, 3, h, w), 40)
    inputs[("depth_hint")] = paddle.full([1, 1, h, w], np.e - 1 + 1.0)  # |hint - depth| = e - 1 -> log = 1
    valid = np.zeros((1, 1, h, w), np.float32)
    valid[..., : w // 2] = 1
    inputs["depth_hint_mask"] = paddle.to_tensor(valid)
    inputs["stereo_T"] = paddle.eye(4)[None]
    inputs[("K", 0)] = paddle.to_tensor(kitti_intrinsics(w, h)[None])
    outputs[("color", "s", 0)] = rand((1, 3, h, w), 41)
    outputs["hint_color"] = target  # the hint's warp is perfect where it is valid
    out = compute_losses(inputs, outputs, [0, -1, 1, "s"], (0,), use_depth_hints=True, disparity_smoothness=0.0)
    np.testing.assert_array_equal(out["hint_mask"].numpy(), valid)
    assert abs(float(out["hint/0"]) - 1.0) < 1e-5
