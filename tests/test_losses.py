"""The loss contract of docs/MLDA_NET.md §6: Paddle's generate_images_pred + compute_losses, called as the trainer
calls them, against the independent float64 numpy implementation in tests/numpy_losses.py on a
batch with real warps (rotation and translation, varied depth, fractional and out-of-image
sampling positions) and constructed exact ties for the auto-mask."""
import numpy as np
import paddle
import pytest

from losses import compute_losses, generate_images_pred, hint_loss, min_over_sources, reprojection_loss, select_masks
from networks.layers import SSIM
from utils.cameras.kitti_layout import intrinsics as kitti_intrinsics
from tests import numpy_losses as ref

B, H, W = 2, 32, 48
SCALES = (0, 1, 2, 3)
FRAMES = [0, -1, 1, "s"]
LAMBDA = 0.1  # smoothness weight, large enough that its lambda / 4^s weighting shows in the total
# Regions (rows, cols) of the constructed ties at scale 0, see _scene.
ALL_BLACK = (slice(3, 18), slice(14, 35))   # black everywhere, small warps: reproj = identity = hint = 0
STATIC_HOLE = (slice(21, 30), slice(2, 11))  # black everywhere, the hint stays, the depth warps leave
STEREO_HOLE = (slice(21, 30), slice(30, 35))  # black in the target and (shifted) in the stereo partner


def _rodrigues(v):
    a = np.linalg.norm(v)
    k = v / a
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(a) * kx + (1 - np.cos(a)) * kx @ kx


def _pose(axisangle, t):
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = _rodrigues(np.array(axisangle)), t
    return m


def _disp_of(depth):
    """Sigmoid disparity giving `depth` through disp_to_depth(0.1, 100)."""
    return (1 / depth - 0.01) / (10 - 0.01)


def _scene(ties=True):
    """A fixed batch in float64 numpy (see the region constants above):
    ALL_BLACK: every image black, moderate depth, so every warp samples black: three-way tie at 0
      (argmin 0: reprojection mask 1, hint mask 0), or where the hint is missing reproj = identity
      = 0 < 1000 (argmin 0);
    STATIC_HOLE: every image black, tiny predicted depth (the warps land on texture) and a far hint
      (its warp stays black): identity = hint = 0 < reproj (argmin 1: both masks 0);
    STEREO_HOLE: the target black, the stereo partner black where the predicted and hinted depth
      (equal there) send the target's pixels, the other frames textured: reproj = hint = 0 <
      identity (argmin 0: reprojection mask 1, hint mask 0).
    Without `ties`: none of these regions."""
    rng = np.random.RandomState(0)

    def texture(*shape):
        return ref.box3(0.1 + 0.8 * rng.rand(*shape))  # smoothed: gentle image gradients

    colors = {(f, 0): texture(B, 3, H, W) for f in FRAMES}
    for s in SCALES[1:]:
        colors[(0, s)] = texture(B, 3, H // 2 ** s, W // 2 ** s)
    K = np.stack([kitti_intrinsics(W, H).astype(np.float64)] * B)
    stereo_T = np.stack([np.eye(4)] * B)
    stereo_T[:, 0, 3] = [-0.1, 0.1]  # a left and a right image
    poses = {-1: np.stack([_pose([0.01, -0.02, 0.015], [0.08, -0.02, 0.1]),
                           _pose([-0.02, 0.01, 0.0], [0.05, 0.03, -0.05])]),
             1: np.stack([_pose([-0.015, 0.02, -0.01], [-0.1, 0.03, -0.12]),
                          _pose([0.0, -0.015, 0.02], [0.09, 0.0, 0.08])])}

    depth = np.exp(rng.uniform(np.log(1.0), np.log(20.0), (B, 1, H, W)))
    depth = ref.box3(ref.box3(depth))
    hint = np.exp(rng.uniform(np.log(1.0), np.log(30.0), (B, 1, H, W)))
    hint[rng.rand(B, 1, H, W) < 0.2] = 0  # no hint: +1000 on its reprojection
    if not ties:
        return _finish(colors, depth, hint, K, poses, stereo_T, rng)
    depth[(slice(None), slice(None)) + ALL_BLACK] = 3.0
    hint[(slice(None), slice(None)) + ALL_BLACK] = 4.0
    hint[:, :, ALL_BLACK[0], ALL_BLACK[1].start:ALL_BLACK[1].start + 8] = 0  # reproj = identity < 1000
    depth[(slice(None), slice(None)) + STATIC_HOLE] = 0.3
    hint[(slice(None), slice(None)) + STATIC_HOLE] = 80.0
    depth[(slice(None), slice(None)) + STEREO_HOLE] = 0.7
    hint[(slice(None), slice(None)) + STEREO_HOLE] = 0.7
    for f in FRAMES:
        colors[(f, 0)][(slice(None), slice(None)) + ALL_BLACK] = 0
        colors[(f, 0)][(slice(None), slice(None)) + STATIC_HOLE] = 0
    colors[(0, 0)][(slice(None), slice(None)) + STEREO_HOLE] = 0
    rows, cols = STEREO_HOLE
    for i in range(B):  # the stereo shift is fx t_x / depth pixels
        shift = K[i, 0, 0] * stereo_T[i, 0, 3] / 0.7
        lo, hi = int(np.floor(cols.start + shift)) - 2, int(np.ceil(cols.stop - 1 + shift)) + 3
        colors[("s", 0)][i, :, rows.start - 2:rows.stop + 2, lo:hi] = 0
    return _finish(colors, depth, hint, K, poses, stereo_T, rng)


def _finish(colors, depth, hint, K, poses, stereo_T, rng):
    disp0 = _disp_of(depth)
    disps = {0: disp0}
    for s in SCALES[1:]:  # each scale its own map: a pooled scale-0 map plus noise
        k = 2 ** s
        pooled = disp0.reshape(B, 1, H // k, k, W // k, k).mean((3, 5))
        disps[s] = np.clip(pooled * rng.uniform(0.8, 1.2, pooled.shape), 1e-3, 1)
    return dict(colors=colors, disps=disps, K=K, poses=poses, stereo_T=stereo_T, hint=hint,
                hint_valid=(hint > 0).astype(np.float64))


def _paddle_run(scene, dtype):
    """The trainer's calls: generate_images_pred, then compute_losses (mono+stereo with hints)."""
    t = lambda a: paddle.to_tensor(np.asarray(a, dtype=dtype))  # noqa: E731
    inputs = {("color", f, 0): t(scene["colors"][(f, 0)]) for f in FRAMES}
    for s in SCALES[1:]:
        inputs[("color", 0, s)] = t(scene["colors"][(0, s)])
    inputs[("K", 0)] = t(scene["K"])
    inputs[("inv_K", 0)] = t(np.linalg.inv(scene["K"]))
    inputs["stereo_T"] = t(scene["stereo_T"])
    inputs["depth_hint"] = t(scene["hint"])
    inputs["depth_hint_mask"] = t(scene["hint_valid"])
    outputs = {("disp", s): t(scene["disps"][s]) for s in SCALES}
    for f in (-1, 1):
        outputs[("cam_T_cam", 0, f)] = t(scene["poses"][f])
    generate_images_pred(inputs, outputs, FRAMES, SCALES, 0.1, 100.0, use_depth_hints=True)
    losses = compute_losses(inputs, outputs, FRAMES, SCALES, use_depth_hints=True, disparity_smoothness=LAMBDA)
    return inputs, outputs, losses


def _expected(scene):
    return ref.mlda_losses(scene["colors"], scene["disps"], scene["K"], scene["poses"], FRAMES, SCALES,
                           smooth_weight=LAMBDA, hint=scene["hint"], hint_valid=scene["hint_valid"],
                           stereo_T=scene["stereo_T"])


@pytest.fixture(scope="module")
def case():
    scene = _scene()
    expected = _expected(scene)
    inputs, outputs, losses = _paddle_run(scene, np.float64)
    return scene, expected, inputs, outputs, losses


def _close(actual, expected, rtol=1e-9, atol=1e-10):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=rtol, atol=atol)


def test_scene_has_fractional_out_of_image_warps_and_all_tie_kinds(case):
    scene, expected, *_ = case
    x, y = ref.project_pixels(expected[("depth", 0)], scene["K"], scene["poses"][1])
    assert np.mean(np.abs(x - np.round(x)) > 0.05) > 0.5  # fractional sampling positions
    assert 0 < np.mean((x < 0) | (x > W - 1) | (y < 0) | (y > H - 1)) < 0.5  # some fall outside
    reproj, identity, hint = expected[("reproj", 0)], expected["identity"], expected["hint_reproj"]
    three_way = (reproj == identity) & (identity == hint)
    identity_hint = (identity == hint) & (hint < reproj)
    reproj_hint = (reproj == hint) & (hint < identity)
    reproj_identity = (reproj == identity) & (identity < hint)
    assert three_way.sum() > 50 and reproj_identity.sum() > 50
    assert identity_hint.sum() > 20 and reproj_hint.sum() > 10
    assert _rounding_ties(expected).mean() < 0.02
    for key in ("mask", "hint_mask"):  # every outcome occurs
        assert 0 < expected[(key, 0)].mean() < 1


def _rounding_ties(expected):
    """Pixels where two candidates differ by float rounding only (a sampling position a hair
    off an integer, next to a black edge): there either choice is right."""
    reproj, identity, hint = expected[("reproj", 0)], expected["identity"], expected["hint_reproj"]
    near = np.zeros(reproj.shape, bool)
    for a, b in ((reproj, identity), (reproj, hint), (identity, hint)):
        gap = np.abs(a - b)
        near |= (gap > 0) & (gap < 1e-9)
    return near


def test_warps_match_numpy(case):
    _, expected, _, outputs, _ = case
    for s in SCALES:
        _close(outputs[("depth", 0, s)].numpy(), expected[("depth", s)])
        for f in FRAMES[1:]:
            _close(outputs[("color", f, s)].numpy(), expected[("warp", f, s)])
    _close(outputs["hint_color"].numpy(), expected["hint_warp"])


def test_ssim_and_pe_maps_match_numpy(case):
    scene, expected, inputs, outputs, _ = case
    target = inputs[("color", 0, 0)]
    for f in FRAMES[1:]:
        warped = outputs[("color", f, 0)]
        _close(SSIM()(warped, target).numpy(),
               ref.ssim_dissimilarity(expected[("warp", f, 0)], scene["colors"][(0, 0)]))
        for s in SCALES:
            _close(reprojection_loss(outputs[("color", f, s)], target).numpy(), expected[("pe", f, s)])
        _close(reprojection_loss(inputs[("color", f, 0)], target).numpy(), expected["identity_pe"][f])


def test_masks_match_numpy_including_exact_ties(case):
    _, expected, inputs, outputs, losses = case
    decided = ~_rounding_ties(expected)
    np.testing.assert_array_equal(losses["automask"].numpy()[decided], expected[("mask", 0)][decided])
    np.testing.assert_array_equal(losses["hint_mask"].numpy()[decided], expected[("hint_mask", 0)][decided])
    target = inputs[("color", 0, 0)]
    identity = paddle.to_tensor(expected["identity"])
    hint = paddle.to_tensor(expected["hint_reproj"])
    for s in SCALES[1:]:
        reproj = min_over_sources([outputs[("color", f, s)] for f in FRAMES[1:]], target)
        _close(reproj.numpy(), expected[("reproj", s)])
        mask, hint_mask = select_masks(paddle.to_tensor(expected[("reproj", s)]), identity, hint)
        np.testing.assert_array_equal(mask.numpy(), expected[("mask", s)])
        np.testing.assert_array_equal(hint_mask.numpy(), expected[("hint_mask", s)])
    # the constructed exact ties, spelled out: the first of equal candidates wins
    reproj, identity, hint = expected[("reproj", 0)], expected["identity"], expected["hint_reproj"]
    automask, hint_mask = losses["automask"].numpy(), losses["hint_mask"].numpy()
    three_way = (reproj == identity) & (identity == hint)
    assert np.all(automask[three_way] == 1) and np.all(hint_mask[three_way] == 0)
    identity_hint = (identity == hint) & (hint < reproj)
    assert np.all(automask[identity_hint] == 0) and np.all(hint_mask[identity_hint] == 0)
    reproj_hint = (reproj == hint) & (hint < identity)
    assert np.all(automask[reproj_hint] == 1) and np.all(hint_mask[reproj_hint] == 0)
    reproj_identity = (reproj == identity) & (identity < hint)
    assert np.all(automask[reproj_identity] == 1)


def test_scale_terms_and_total_match_numpy(case):
    _, expected, _, _, losses = case
    for s in SCALES:
        for name in ("reprojection", "hint", "smooth", "loss"):
            _close(float(losses[f"{name}/{s}"]), expected[(name, s)])
    _close(float(losses["loss"]), expected["loss"])
    # each term matters at the tolerance used: the hint and smoothness terms are not negligible
    assert min(expected[("hint", s)] / 2 ** s for s in SCALES) > 1e-3
    assert min(LAMBDA * expected[("smooth", s)] / 4 ** s for s in SCALES) > 1e-4


def test_float32_as_trained_matches_numpy():
    """The trainer's dtype agrees to float32 precision. Without the black tie regions: there
    float32 rounding (0 against 1e-8) decides ties, and each flipped pixel moves a masked mean by
    1 / sum(mask), about 5e-4."""
    scene = _scene(ties=False)
    expected = _expected(scene)
    _, _, losses = _paddle_run(scene, np.float32)
    for s in SCALES:
        for name in ("reprojection", "hint", "smooth", "loss"):
            _close(float(losses[f"{name}/{s}"]), expected[(name, s)], rtol=1e-5, atol=0)
    _close(float(losses["loss"]), expected["loss"], rtol=1e-5, atol=0)
    assert np.mean(losses["automask"].numpy() != expected[("mask", 0)]) < 0.01


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
