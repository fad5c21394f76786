"""Both exported forms of the diffusion head (deployment/export_refine.py) against the eager loop on
the same noise: the step programs driven by the Paddle-free host loop of deployment/runtime.py, and
an unrolled program, on Paddle Inference (oneDNN) and ONNX Runtime."""
import numpy as np
import paddle
import pytest

from deployment.export_refine import export_refine, unrolled_name
from deployment.runtime import _OnnxSession, _PaddleSession, _RefineLoop
from networks.diffusion import DiffusionHead, RefinedDepthNet
from networks.model import DepthNet
from tests.support.lsuv import tame_weights

H, W, STEPS, STRENGTH = 64, 96, 4, 0.5


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    paddle.seed(0)
    depth = DepthNet()
    tame_weights(depth, paddle.rand([1, 3, H, W]))
    net = RefinedDepthNet(depth, DiffusionHead(cond_channels=16, ddim_steps=STEPS, strength=STRENGTH, noise_seed=3))
    with paddle.no_grad():  # batch-norm statistics of a trained head, not the initial 0 / 1
        net.train()
        net(paddle.rand([2, 3, H, W]), net.noise_for(H, W))
    net.eval()
    folder = str(tmp_path_factory.mktemp("refine_export"))
    export_refine(net, folder, H, W, unrolled=[(STEPS, STRENGTH)], formats=("paddle", "onnx"))
    images = np.random.default_rng(0).uniform(0, 1, (2, 3, H, W)).astype(np.float32)
    noise = net.noise_for(H, W, seed=3)
    with paddle.no_grad():
        eager = net(paddle.to_tensor(images), noise, STEPS, STRENGTH).numpy()
    return folder, images, noise.numpy(), eager


def relative_error(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("backend", ["paddle", "onnxruntime"])
def test_step_programs_with_the_host_loop_match_eager(exported, backend):
    folder, images, _, eager = exported
    def make(part):
        return (_PaddleSession(f"{folder}/{part}", "cpu", 2, True, False, "fp32", None) if backend == "paddle"
                else _OnnxSession(f"{folder}/{part}.onnx", "cpu", 2))
    loop = _RefineLoop(folder, make)   # the head's N, strength and noise seed from refine.json
    depth = loop(images)
    assert depth.shape == (2, 1, H, W) and eager.min() > 0
    assert relative_error(depth, eager) < (1e-5 if backend == "paddle" else 1e-4)


@pytest.mark.parametrize("backend", ["paddle", "onnxruntime"])
def test_unrolled_program_matches_eager(exported, backend):
    folder, images, noise, eager = exported
    name = unrolled_name(STEPS, STRENGTH)
    session = (_PaddleSession(f"{folder}/{name}", "cpu", 2, True, False, "fp32", None) if backend == "paddle"
               else _OnnxSession(f"{folder}/{name}.onnx", "cpu", 2))
    (depth,) = session.run([images, noise])
    assert relative_error(depth, eager) < (1e-5 if backend == "paddle" else 1e-4)
