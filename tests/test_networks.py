"""Networks: fixed resizes, attention blocks, guided filter against numpy (and in float32 under AMP),
shapes at small sizes, batch independence. tests/test_golden.py pins the values at 192 x 640."""
import numpy as np
import paddle
import paddle.nn.functional as F
import pytest
from PIL import Image
from skimage import data as skdata

import networks
from networks import GlobalAttention, MultiLevelEncoder, attention_guided_filter
from networks.decoder import reflection_pad1
from networks.resize import bilinear_align_corners, downsample2_bilinear, upsample2_bilinear, upsample2_nearest
from tests.support.lsuv import tame_weights
from utils.io import image_io


def photo(h, w, flip=False):
    """A real photograph resized to h x w, 1 x 3 x h x w in [0, 1]."""
    img = Image.fromarray(skdata.astronaut() if not flip else skdata.chelsea())
    return paddle.to_tensor(image_io.preprocess(img, h, w))


@pytest.mark.parametrize("h,w", [(12, 20), (96, 320)])
def test_fixed_resizes_equal_interpolate(h, w):
    x = paddle.to_tensor(np.random.RandomState(0).randn(2, 3, h, w).astype(np.float32))
    ref = lambda **kw: F.interpolate(x, **kw)  # noqa: E731
    np.testing.assert_allclose(bilinear_align_corners(x, h // 2, w // 2).numpy(),
                               ref(size=[h // 2, w // 2], mode="bilinear", align_corners=True).numpy(), atol=1e-6)
    np.testing.assert_allclose(downsample2_bilinear(x).numpy(),
                               ref(size=[h // 2, w // 2], mode="bilinear", align_corners=False).numpy(), atol=1e-6)
    np.testing.assert_array_equal(upsample2_nearest(x).numpy(), ref(scale_factor=2, mode="nearest").numpy())
    np.testing.assert_allclose(upsample2_bilinear(x).numpy(),
                               ref(scale_factor=2, mode="bilinear", align_corners=False).numpy(), atol=1e-6)
    np.testing.assert_array_equal(reflection_pad1(x).numpy(), paddle.nn.Pad2D(1, mode="reflect")(x).numpy())


def test_global_attention_matches_numpy():
    paddle.seed(0)
    ga = GlobalAttention(4)
    x = paddle.to_tensor(np.random.RandomState(1).randn(2, 4, 3, 5).astype(np.float32) * 0.3)
    conv = lambda layer: F.conv2d(x, layer.weight, padding=layer._padding).numpy().reshape(2, 4, -1)  # noqa: E731
    k, q, v = conv(ga.K), conv(ga.Q), conv(ga.V)
    logits = q @ v.transpose(0, 2, 1)
    att = np.exp(logits - logits.max(-1, keepdims=True))
    att /= att.sum(-1, keepdims=True)
    o = (k.transpose(0, 2, 1) @ att).transpose(0, 2, 1).reshape(2, 4, 3, 5)
    expected = np.einsum("oi,bihw->bohw", ga.local_weight.weight.numpy()[:, :, 0, 0], o + x.numpy())
    np.testing.assert_allclose(ga(x).numpy(), expected, atol=1e-5)


def _box64(t, r):
    """Zero-padded (2r+1)^2 window sums, float64."""
    b, c, h, w = t.shape
    p = np.pad(t, ((0, 0), (0, 0), (r, r), (r, r)))
    return sum(p[:, :, i:i + h, j:j + w] for i in range(2 * r + 1) for j in range(2 * r + 1))


def _upsample2_64(t):
    """Half-pixel bilinear x2 written from its definition: out j samples in at clamp((j + 0.5) / 2 - 0.5)."""
    def axis(a, ax):
        n = a.shape[ax]
        src = np.clip((np.arange(2 * n) + 0.5) / 2 - 0.5, 0, n - 1)
        i0 = np.floor(src).astype(int)
        i1 = np.minimum(i0 + 1, n - 1)
        wt = (src - i0).reshape([-1 if d == ax else 1 for d in range(a.ndim)])
        return np.take(a, i0, ax) * (1 - wt) + np.take(a, i1, ax) * wt
    return axis(axis(t, 2), 3)


def guided_filter_64(x, y, hr, a, r=2, eps=1e-2, batch_coupled=False):
    """The spec's formula in float64 numpy."""
    l_a = np.abs(a) + 1e-12
    l_t = l_a / (l_a.sum() if batch_coupled else l_a.sum(axis=(1, 2, 3), keepdims=True))
    nb = _box64(np.ones((1, 1) + x.shape[2:]), r)
    mean = lambda t: _box64(t, r) / nb  # noqa: E731
    mean_a, mean_a2xy, mean_tax = mean(l_a), mean(l_a ** 2 * x * y), mean(l_t * l_a * x)
    mean_ay, mean_a2x2, mean_ax = mean(l_a * y), mean(l_a ** 2 * x ** 2), mean(l_a * x)
    A = (mean_a2xy - nb * mean_tax * mean_ay) / (np.abs(mean_a2x2 - nb * mean_tax * mean_ax) + eps)
    b = (mean_ay - A * mean_ax) / mean_a
    return _upsample2_64(mean(A)) * hr + _upsample2_64(mean(b))


@pytest.mark.parametrize("batch_coupled", [False, True])
@pytest.mark.parametrize("h,w", [(2, 3), (12, 40)])
def test_guided_filter_float32_matches_float64_formula(batch_coupled, h, w):
    rng = np.random.RandomState(h)
    x, y = rng.randn(2, 4, h, w), rng.randn(2, 4, h, w)
    hr, a = rng.randn(2, 4, 2 * h, 2 * w), rng.rand(2, 1, h, w)
    out = attention_guided_filter(*(paddle.to_tensor(t.astype(np.float32)) for t in (x, y, hr, a)),
                                  batch_coupled=batch_coupled)
    np.testing.assert_allclose(out.numpy(), guided_filter_64(x, y, hr, a, batch_coupled=batch_coupled), atol=1e-5)


def test_guided_filter_runs_in_float32_for_float16_inputs():
    """Under --amp the filter may get float16 tensors; it must compute in float32 (in float16 its
    +1e-12 vanishes, l_t underflows, a batch-coupled sum can pass 65504) and hand back float16:
    the result is the float64 formula on the same inputs, to float16's rounding. (Paddle's CPU has
    no float16 kernels for abs or pooling, so a float16 computation would not run here at all.)"""
    rng = np.random.RandomState(3)
    h, w = 40, 64
    x, y = rng.rand(2, 4, h, w) * 30, rng.rand(2, 4, h, w) * 30
    hr, a = rng.rand(2, 4, 2 * h, 2 * w), rng.rand(2, 1, h, w) * 1e-2
    half = [paddle.to_tensor(t.astype(np.float16)) for t in (x, y, hr, a)]
    out = attention_guided_filter(*half, batch_coupled=True)
    assert out.dtype == paddle.float16
    expected = guided_filter_64(*(t.numpy().astype(np.float64) for t in half), batch_coupled=True)
    np.testing.assert_allclose(out.numpy().astype(np.float64), expected, rtol=2e-3, atol=2e-3)


@pytest.fixture(scope="module")
def tamed_nets():
    paddle.seed(0)
    return tame_weights(networks.build_nets(), photo(64, 128))


@pytest.mark.parametrize("h,w", [(64, 64), (64, 96), pytest.param(320, 1024, marks=pytest.mark.slow)])
def test_every_network_runs_at_any_size(tamed_nets, h, w):
    depth_net, pose_net = tamed_nets["depth"], tamed_nets["pose"]
    image = paddle.rand([1, 3, h, w])
    with paddle.no_grad():
        features = depth_net.encoder(image)
        assert [tuple(f.shape) for f in features] == [
            (1, c, h // 2 ** (k + 1), w // 2 ** (k + 1)) for k, c in enumerate(networks.NUM_CH_ENC)]
        disps = depth_net.decoder(features)
        for s in range(4):
            d = disps[("disp", s)]
            assert tuple(d.shape) == (1, 1, h // 2 ** s, w // 2 ** s)
            assert float(d.min()) >= 0 and float(d.max()) <= 1
        assert tuple(pose_net.encoder(paddle.concat([image, image], axis=1))[-1].shape) == (1, 512, h // 32, w // 32)
        axisangle, translation = pose_net(image, image)
        assert tuple(axisangle.shape) == (1, 2, 1, 3) and tuple(translation.shape) == (1, 2, 1, 3)


def test_one_model_object_per_network(tamed_nets):
    """DepthNet(image) is decoder(encoder(image)); disparity() is its scale 0 alone; PoseNet stacks
    frame_a then frame_b along the channels."""
    depth_net, pose_net = tamed_nets["depth"], tamed_nets["pose"]
    a, b = photo(64, 96), photo(64, 96, flip=True)
    with paddle.no_grad():
        whole = depth_net(a)
        assert sorted(whole) == [("disp", s) for s in range(4)]
        assert list(depth_net(a, scales=(0,))) == [("disp", 0)]
        np.testing.assert_array_equal(depth_net.disparity(a).numpy(), whole[("disp", 0)].numpy())
        np.testing.assert_array_equal(whole[("disp", 2)].numpy(), depth_net.decoder(depth_net.encoder(a))[("disp", 2)].numpy())
        ab = pose_net.decoder(pose_net.encoder(paddle.concat([a, b], axis=1)))
        for got, want in zip(pose_net(a, b), ab):
            np.testing.assert_array_equal(got.numpy(), want.numpy())
        assert np.abs(pose_net(b, a)[1].numpy() - ab[1].numpy()).max() > 0  # the order matters
    assert list(networks.weight_files(tamed_nets)) == ["encoder", "depth", "pose_encoder", "pose"]
    assert networks.weight_files(tamed_nets)["pose_encoder"] is pose_net.encoder


def test_prediction_does_not_depend_on_the_batch(tamed_nets):
    enc, dec = tamed_nets["depth"].encoder, tamed_nets["depth"].decoder
    a, b = photo(64, 128), photo(64, 128, flip=True)
    with paddle.no_grad():
        alone = dec(enc(a))[("disp", 0)].numpy()
        batched = dec(enc(paddle.concat([a, b])))[("disp", 0)].numpy()[:1]
        np.testing.assert_allclose(batched, alone, atol=1e-5)
        dec.guided_filter.batch_coupled = True  # the original's whole-batch normalisation couples them
        try:
            coupled = dec(enc(paddle.concat([a, b])))[("disp", 0)].numpy()[:1]
            coupled_alone = dec(enc(a))[("disp", 0)].numpy()
        finally:
            dec.guided_filter.batch_coupled = False
    np.testing.assert_allclose(coupled_alone, alone, atol=1e-5)  # batch of one: both modes agree
    assert np.abs(coupled - alone).max() > 1e-4


def test_pose_encoder_feature4_equals_full_encoder():
    paddle.seed(1)
    full = MultiLevelEncoder(18, num_input_images=2)
    pose = MultiLevelEncoder(18, num_input_images=2, last_only=True)
    state = full.state_dict()
    pose.set_state_dict({k: v for k, v in state.items() if k in pose.state_dict()})
    assert len(pose.state_dict()) < len(state)  # levels 0-3 are not even built
    full.eval(), pose.eval()
    pair = paddle.concat([photo(64, 96), photo(64, 96, flip=True)], axis=1)
    with paddle.no_grad():
        np.testing.assert_allclose(pose(pair)[-1].numpy(), full(pair)[4].numpy(), atol=1e-5)


def test_imagenet_weights_for_stacked_frames_are_averaged():
    from paddle.vision.models import resnet18
    state = resnet18(pretrained=False).state_dict()
    enc = MultiLevelEncoder(18, num_input_images=2, last_only=True)
    enc.load_backbone_state(state)
    w = enc.backbone.conv1.weight.numpy()
    np.testing.assert_allclose(w[:, :3], state["conv1.weight"].numpy() / 2, atol=1e-7)
    np.testing.assert_allclose(w[:, 3:], state["conv1.weight"].numpy() / 2, atol=1e-7)


@pytest.mark.parametrize("num_layers", [34, 50])
def test_deeper_backbones_keep_the_fused_widths(num_layers):
    enc = MultiLevelEncoder(num_layers)
    dec = networks.DepthDecoder(enc.num_ch_enc)
    enc.eval(), dec.eval()
    with paddle.no_grad():
        features = enc(paddle.rand([1, 3, 64, 96]))
        disp = dec(features)[("disp", 0)]
    assert [f.shape[1] for f in features] == networks.NUM_CH_ENC
    assert tuple(disp.shape) == (1, 1, 64, 96)
