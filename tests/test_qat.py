"""train.py --qat (training/qat.py): the fake-quantised convolution and the attention's stacked K/Q/V
convolution compute what a numpy simulation of int8 rounding computes (per-output-channel weights,
per-tensor moving-average input ranges); the state dict stays the float one; a --qat run saves plain
weights that load strictly and export through export.py --precision int8 into a folder inference.py
runs."""
import json
import os

import numpy as np
import paddle
import pytest

import networks
import options
from networks.attention import GlobalAttention
from tests.synthetic_fixture import synthetic_kitti  # noqa: F401
from training.qat import MOVING_RATE, QuantedGlobalAttention, quantize_for_training

R = 127.0  # 2^(8-1) - 1


def round_half_away(v):
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def quantise_channels(w):
    """Per output channel (axis 0): round(w / max|w_c| * 127) * max|w_c| / 127."""
    s = np.abs(w).reshape(len(w), -1).max(axis=1).reshape((-1,) + (1,) * (w.ndim - 1))
    return round_half_away(w / s * R) * s / R


def quantise_tensor(x, s):
    return round_half_away(np.clip(x, -s, s) / s * R) * s / R


def conv2d(x, w, pad):
    """Plain numpy 2-D cross-correlation, stride 1, zero padding `pad` (N x C x H x W, O x C x k x k)."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = w.shape[-1]
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))  # N C H W k k
    return np.einsum("nchwij,ocij->nohw", windows, w)


def first_scale(x):
    """The moving-average abs-max scale after one training step from Paddle's start (state = accum = 1)."""
    return (MOVING_RATE * 1 + np.abs(x).max()) / (MOVING_RATE * 1 + 1)


def test_fake_quantised_conv_equals_numpy_int8_rounding():
    paddle.seed(0)
    net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3, padding=1))
    quantize_for_training(net)
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 6)).astype(np.float32)
    net(paddle.to_tensor(x))  # one training step updates the input range
    layer = net[0]
    s = first_scale(x)
    assert layer.activation_quanter._scale.numpy().item() == pytest.approx(s, rel=1e-6)
    net.eval()
    got = net(paddle.to_tensor(x * 1.3)).numpy()  # beyond the range: clipped at s
    w, b = layer.weight.numpy().astype(np.float64), layer.bias.numpy()
    want = conv2d(quantise_tensor(x * 1.3, s), quantise_channels(w), 1) + b.reshape(1, -1, 1, 1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    float_out = conv2d(x * 1.3, w, 1) + b.reshape(1, -1, 1, 1)
    assert np.abs(float_out - want).max() > 1e-2  # the rounding is visible, so the check above means something
    assert list(net.state_dict()) == ["0.weight", "0.bias"]  # no quantiser state: saves as a float Conv2D


def test_quantised_attention_rounds_the_stacked_kernel_and_keeps_the_float_state_dict():
    paddle.seed(1)
    net = paddle.nn.Sequential(GlobalAttention(4))
    float_keys = list(net.state_dict())
    assert quantize_for_training(net).endswith("on 1 convolutions and 1 stacked K/Q/V attention convolutions")
    attention = net[0]
    assert isinstance(attention, QuantedGlobalAttention) and list(net.state_dict()) == float_keys
    x = np.random.default_rng(1).normal(size=(1, 4, 6, 5)).astype(np.float32)
    net(paddle.to_tensor(x))
    net.eval()
    got = attention.kqv(paddle.to_tensor(x)).numpy()
    kernel = np.concatenate([attention.K.weight.numpy(), attention.Q.weight.numpy(), attention.V.weight.numpy()])
    want = conv2d(quantise_tensor(x, first_scale(x)), quantise_channels(kernel.astype(np.float64)), 1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_qat_needs_weights_to_fine_tune(capsys):
    with pytest.raises(SystemExit) as exc:
        options.parse("train", ["--qat"])
    assert exc.value.code == 2 and "--qat fine-tunes trained weights: give them with --load_weights_folder" in \
        capsys.readouterr().err


@pytest.mark.slow
def test_qat_run_saves_float_weights_that_export_to_int8_and_run(synthetic_kitti, tmp_path, capsys):  # noqa: F811
    import export
    import inference
    import train
    root = synthetic_kitti["data_path"]
    start = str(tmp_path / "start")
    paddle.seed(0)
    networks.save_weights_folder(start, networks.build_nets(use_pose=False), {"height": 64, "width": 96})
    train.main(["--dataset", "synthetic", "--data_path", root, "--log_dir", str(tmp_path / "runs"), "--height", "64",
                "--width", "96", "--batch_size", "2", "--num_workers", "0", "--frame_ids", "0",
                "--no-use_depth_hints", "--num_epochs", "1", "--max_steps", "2", "--load_weights_folder", start,
                "--models_to_load", "encoder", "depth", "--qat"])
    saved = str(tmp_path / "runs" / "mlda" / "models" / "best")
    with open(os.path.join(saved, "opt.json")) as f:
        assert json.load(f)["qat"] is True
    # strict loading (any quantiser key would be "unexpected"); the weights moved from the start
    tuned = networks.load_weights_folder(saved)[1]["depth"].state_dict()
    initial = networks.load_weights_folder(start)[1]["depth"].state_dict()
    assert tuned.keys() == initial.keys()
    assert any(not np.array_equal(tuned[k].numpy(), initial[k].numpy()) for k in tuned)
    out = str(tmp_path / "int8")
    export.main(["--load_weights_folder", saved, "--save_dir", out, "--precision", "int8", "--gate_split", root,
                 "--calib_images", os.path.join(root, synthetic_kitti["drives"][0]), "--calib_count", "4",
                 "--max_abs_rel_change", "100", "--max_delta1_change", "100"])
    photo = os.path.join(root, synthetic_kitti["drives"][1], "image_02", "data", "0000000000.jpg")
    inference.main(["--infer_files_dir", out, "--color_path", photo, "--backend", "onnxruntime",
                    "--output_dir", str(tmp_path / "pred")])
    assert "precision int8: abs_rel" in capsys.readouterr().out
    disp = np.load(tmp_path / "pred" / "0000000000_disp.npy")
    assert disp.shape == (64, 96) and np.isfinite(disp).all()
