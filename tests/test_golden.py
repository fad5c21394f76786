"""The whole forward contract against the original MLDA-Net code (tests/data/original_mlda_outputs.npz,
written by the original code): weights rebuilt from the key tables as its README says, written in the
original layout without the project's key mapping, loaded by networks.load_weights_folder.

Tolerances: disparities 1e-5, pose 1e-6, features 2e-5 rather than 1e-5: the global attention's
logits q v^T reach |1e4| with these weights, so the float32 summation order of that one matmul moves
feature 3 by ~1e-5 (measured: the golden arrays are 5.6e-6 from a float64 evaluation of this
network, ours 1.2e-5; the attention in float64 brings ours to 5.8e-6 of the golden arrays; stacked
or separate K/Q/V convolutions give identical bits). Swapping two attention inputs or any decoder
wiring moves the disparities by far more than 1e-4.
"""
import os

import numpy as np
import paddle
import pytest

import networks
from tests.support.key_tables import write_original_folder

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "original_mlda_outputs.npz")


@pytest.fixture(scope="module")
def golden():
    return dict(np.load(GOLDEN))


@pytest.fixture(scope="module")
def weights(golden, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("golden_weights"))
    write_original_folder(folder, seed=int(golden["seed"]))
    return folder


@pytest.fixture(scope="module")
def outputs(golden, weights):
    """Every output the golden file holds, computed once."""
    _, nets = networks.load_weights_folder(weights, parts=("depth", "pose"))
    _, coupled = networks.load_weights_folder(weights, batch_coupled_filter=True)
    image = paddle.to_tensor(golden["image"])
    pose_input = paddle.to_tensor(golden["pose_input"])
    out = {}
    with paddle.no_grad():
        features = nets["depth"].encoder(image)
        for i, f in enumerate(features):
            f = f.numpy()
            out[f"feat{i}_sub"], out[f"feat{i}_chmean"] = f[:, :, ::4, ::4], f.mean(axis=(2, 3))
        disps = nets["depth"].decoder(features)
        out.update({f"disp{s}": disps[("disp", s)].numpy() for s in range(4)})
        axisangle, translation = nets["pose"](pose_input[:, :3], pose_input[:, 3:])
        out["axisangle"], out["translation"] = axisangle.numpy(), translation.numpy()
        batch = paddle.to_tensor(np.concatenate([golden["image"], golden["image"][..., ::-1]]))
        out["disp0_batch2_coupled"] = coupled["depth"](batch)[("disp", 0)].numpy()
    return out


@pytest.mark.parametrize("i", range(5))
def test_features(golden, outputs, i):
    for key in (f"feat{i}_sub", f"feat{i}_chmean"):
        assert outputs[key].shape == golden[key].shape
        np.testing.assert_allclose(outputs[key], golden[key], rtol=0, atol=2e-5, err_msg=key)


@pytest.mark.parametrize("s", range(4))
def test_disparities(golden, outputs, s):
    assert outputs[f"disp{s}"].shape == golden[f"disp{s}"].shape == (1, 1, 192 // 2 ** s, 640 // 2 ** s)
    np.testing.assert_allclose(outputs[f"disp{s}"], golden[f"disp{s}"], rtol=0, atol=1e-5)


def test_pose(golden, outputs):
    for key in ("axisangle", "translation"):
        assert outputs[key].shape == golden[key].shape == (1, 2, 1, 3)
        np.testing.assert_allclose(outputs[key], golden[key], rtol=0, atol=1e-6, err_msg=key)


def test_batch_coupled_filter(golden, outputs):
    """The whole-batch normalisation of the original: sample 0 differs from disp0 (up to 2e-3),
    and both samples match the original's batch of two."""
    ref = golden["disp0_batch2_coupled"]
    assert np.abs(ref[:1] - golden["disp0"]).max() > 1e-4  # the golden case does exercise the coupling
    np.testing.assert_allclose(outputs["disp0_batch2_coupled"], ref, rtol=0, atol=1e-5)
