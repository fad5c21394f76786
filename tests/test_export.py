"""export.py / deployment: static and ONNX models compute the eager network's function, with a
dynamic batch, and broken or contradicting deployment folders are refused with a one-line message.

Weights are tamed (tests/support/lsuv.py, docs/MLDA_NET.md §10) so activations stay O(1) as in a trained network;
with raw random weights the guided filter amplifies float noise and no parity test is meaningful.
"""
import functools
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import paddle
import pytest
from skimage import data

import deployment
import networks
from tests.support.lsuv import tame_weights
from tests.support.shared import shared_folder
from utils.io import image_io

H, W = 64, 128
# the weights' training data record (utils/geometry/provenance.py), which export.py copies into deploy.json
RECORD = {"dataset": "kitti", "description": "KITTI raw", "data_path": "kitti_data", "split": "eigen_zhou",
          "camera": None, "steps": 12, "epoch": 0, "depth": "metric", "metric_from": "KITTI stereo (x5.4)"}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@functools.lru_cache(maxsize=None)
def photos():
    """Three natural RGB images (skimage ships them) preprocessed to 1 x 3 x H x W each."""
    return tuple(image_io.preprocess(image_io.load_image(a), H, W)
            for a in (data.astronaut(), data.chelsea(), data.coffee()))


@pytest.fixture(scope="session")
def weights(tmp_path_factory):
    """A weights folder at 64 x 128 with tamed weights and a depth range other than the default."""
    def build(folder):
        paddle.seed(0)
        nets = {"depth": networks.build_net("depth")}  # Paddle's default init, as tuned (not build_nets' init_as_original)
        tame_weights(nets, paddle.to_tensor(photos()[0]))
        networks.save_weights_folder(folder, nets, {"height": H, "width": W, "min_depth": 0.2, "max_depth": 80.0,
                                                    "training_data": RECORD})

    return shared_folder(tmp_path_factory, "deploy_weights", build)


@pytest.fixture(scope="session")
def exported(weights, tmp_path_factory):
    """{"split", "combined"}: folders exported with ONNX, the split one through export.py's command line."""
    import export as export_script

    def build(root):
        export_script.main(["--load_weights_folder", weights, "--save_dir", os.path.join(root, "split"),
                            "--format", "onnx"])
        export_script.main(["--load_weights_folder", weights, "--save_dir", os.path.join(root, "combined"),
                            "--format", "onnx", "--combined"])

    root = shared_folder(tmp_path_factory, "exported", build)   # once for all of pytest-xdist's processes
    return {"split": os.path.join(root, "split"), "combined": os.path.join(root, "combined")}


@pytest.fixture(scope="module")
def predictor(exported):
    """predictor(layout, backend="paddle", **options): DepthPredictors built once per module (a
    oneDNN predictor takes seconds to build)."""
    cache = {}

    def get(layout, backend="paddle", **options):
        key = (layout, backend, tuple(sorted(options.items())))
        if key not in cache:
            cache[key] = deployment.DepthPredictor(exported[layout], backend=backend, **options)
        return cache[key]

    return get


@pytest.fixture(scope="module")
def eager(weights):
    """The eager network's scale-0 disparity of each photo."""
    _, nets = networks.load_weights_folder(weights)
    with paddle.no_grad():  # the training forward (every scale), of which the deployed programs keep scale 0
        return [nets["depth"](paddle.to_tensor(x))[("disp", 0)].numpy() for x in photos()]


def test_deploy_config_records_what_inference_needs(exported):
    with open(os.path.join(exported["split"], deployment.CONFIG_NAME)) as f:
        config = json.load(f)
    assert (config["height"], config["width"]) == (H, W)
    assert (config["min_depth"], config["max_depth"]) == (0.2, 80.0)  # from the weights' opt.json
    # no use_stereo in opt.json: the original layout, trained mono+stereo -> metres, and the note says so
    assert config["metric"] is True and config["depth_scale_factor"] == 5.4 and "mono+stereo" in config["depth_note"]
    assert config["layout"] == "split" and config["formats"] == ["paddle", "onnx"]
    assert config["training_data"] == RECORD   # what the weights learned from travels with the model
    caption = deployment.DepthPredictor(exported["split"], backend="onnxruntime").caption
    assert caption == "weights trained on KITTI raw; metres assume the training camera; this photo's camera is unknown"
    assert config["parts"]["encoder"]["outputs"] == [f"feature{k}" for k in range(5)]
    assert config["shapes"]["feature4"] == [-1, 512, H // 32, W // 32]
    assert "LANCZOS" in config["preprocessing"]["resize"] and config["preprocessing"]["color"] == "RGB"
    for part in config["parts"].values():
        for name in part["files"].values():
            assert os.path.isfile(os.path.join(exported["split"], name))
    assert sorted(os.listdir(exported["combined"])) == ["deploy.json", "model.json", "model.onnx",
                                                        "model.pdiparams"]


@pytest.mark.parametrize("layout", ["split", "combined"])
def test_static_models_reproduce_the_eager_disparity(predictor, eager, layout):
    for x, ref in zip(photos(), eager):
        out = predictor(layout)(x)  # Paddle Inference, CPU, oneDNN
        assert out.shape == ref.shape == (1, 1, H, W)
        np.testing.assert_allclose(out, ref, rtol=0, atol=1e-5)
    if layout == "combined":
        np.testing.assert_allclose(predictor(layout, onednn=False)(photos()[1]), eager[1], rtol=0, atol=1e-5)


def test_onnx_model_agrees_with_paddle(predictor):
    x = np.concatenate(photos())
    paddle_disp = predictor("split")(x)
    for layout in ("split", "combined"):
        np.testing.assert_allclose(predictor(layout, "onnxruntime")(x), paddle_disp, rtol=0, atol=1e-4)


@pytest.mark.parametrize("backend", ["paddle", "onnxruntime"])
def test_dynamic_batch_of_three_equals_three_single_runs(predictor, backend):
    singles = [predictor("split", backend)(x) for x in photos()]
    batch = predictor("split", backend)(np.concatenate(photos()))
    assert batch.shape == (3, 1, H, W)
    np.testing.assert_allclose(batch, np.concatenate(singles), rtol=0, atol=1e-5)
    assert np.abs(singles[0] - singles[1]).max() > 1e-2  # different photos, different outputs


def test_onnx_route_runs_without_paddle(exported, eager, tmp_path):
    """DepthPredictor with onnxruntime in a process where `import paddle` fails."""
    ref = str(tmp_path / "x.npy")
    np.save(ref, photos()[0])
    code = ("import sys; sys.modules['paddle'] = None; import numpy as np; from deployment import DepthPredictor; "
            f"p = DepthPredictor({exported['split']!r}, backend='onnxruntime'); "
            f"np.save({ref!r}, p(np.load({ref!r})))")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, timeout=120)
    np.testing.assert_allclose(np.load(ref), eager[0], rtol=0, atol=1e-4)


def copy_folder(src, tmp_path):
    dst = str(tmp_path / "copy")
    shutil.copytree(src, dst)
    return dst


def edit_config(folder, **changes):
    path = os.path.join(folder, deployment.CONFIG_NAME)
    with open(path) as f:
        config = json.load(f)
    config.update(changes)
    with open(path, "w") as f:
        json.dump(config, f)


def refusal(folder, backend="paddle"):
    with pytest.raises(deployment.DeployError) as exc:
        deployment.DepthPredictor(folder, backend=backend)
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_missing_and_incomplete_folders_are_refused(exported, tmp_path):
    assert "no such folder" in refusal(str(tmp_path / "nowhere"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no deploy.json" in refusal(str(empty))
    folder = copy_folder(exported["split"], tmp_path)
    os.remove(os.path.join(folder, "model_depth.pdiparams"))
    message = refusal(folder)
    assert "incomplete" in message and "model_depth.pdiparams" in message
    deployment.DepthPredictor(folder, backend="onnxruntime")  # its ONNX files are all there
    os.remove(os.path.join(folder, "model_encoder.onnx"))
    assert "model_encoder.onnx" in refusal(folder, "onnxruntime")


def test_contradicting_configs_are_refused(exported, tmp_path):
    folder = copy_folder(exported["combined"], tmp_path)
    edit_config(folder, height=96)
    for backend in ("paddle", "onnxruntime"):
        message = refusal(folder, backend)
        assert "contradicts the model" in message and "96 x 128" in message
    edit_config(folder, height=H, min_depth=90.0)
    assert "min_depth" in refusal(folder)
    edit_config(folder, min_depth=0.1, formats=["paddle"])
    assert "--format onnx" in refusal(folder, "onnxruntime")
    edit_config(folder, formats=["paddle", "onnx"], layout="split")
    assert "layout" in refusal(folder)


def test_gpu_requests_on_a_cpu_build_are_refused_with_the_fix(exported):
    assert not paddle.is_compiled_with_cuda()  # the project's CI runs the CPU wheel
    with pytest.raises(deployment.DeployError, match="no CUDA support; install paddlepaddle-gpu or use --device cpu"):
        deployment.DepthPredictor(exported["split"], device="gpu")
    with pytest.raises(deployment.DeployError, match="--use_trt needs --backend paddle and --device gpu"):
        deployment.DepthPredictor(exported["split"], use_trt=True)


def test_predictor_refuses_a_wrong_input_size(predictor):
    with pytest.raises(deployment.DeployError, match="B x 3 x 64 x 128"):
        predictor("combined", "onnxruntime")(np.zeros((1, 3, 96, 320), np.float32))


class TinyDepthNet(paddle.nn.Layer):
    """The DepthNet interface (.encoder -> features, .decoder(features, scales), .disparity) with two
    features of 4 and 6 channels: export must find their count and shapes itself."""

    def __init__(self):
        super().__init__()
        self.encoder = TinyEncoder()
        self.head = paddle.nn.Conv2D(10, 1, 1)

    def decoder(self, features, scales=None):
        f0, f1 = features
        up = paddle.nn.functional.interpolate(f1, scale_factor=2, mode="nearest")
        x = paddle.nn.functional.interpolate(paddle.concat([f0, up], 1), scale_factor=2, mode="nearest")
        return {("disp", 0): paddle.nn.functional.sigmoid(self.head(x))}

    def disparity(self, image):
        return self.decoder(self.encoder(image), (0,))[("disp", 0)]


class TinyEncoder(paddle.nn.Layer):
    def __init__(self):
        super().__init__()
        self.conv0, self.conv1 = paddle.nn.Conv2D(3, 4, 3, 2, 1), paddle.nn.Conv2D(4, 6, 3, 2, 1)

    def forward(self, image):
        f0 = self.conv0(image)
        return [f0, self.conv1(f0)]


def test_export_derives_the_features_and_a_failed_export_leaves_nothing_behind(tmp_path, monkeypatch):
    from deployment.export import export_models

    paddle.seed(0)
    net = TinyDepthNet()
    config = export_models(net, str(tmp_path / "tiny"), 64, 96, "split")
    assert config["parts"]["encoder"]["outputs"] == config["parts"]["depth"]["inputs"] == ["feature0", "feature1"]
    assert (config["shapes"]["feature0"], config["shapes"]["feature1"]) == ([-1, 4, 32, 48], [-1, 6, 16, 24])
    x = np.random.default_rng(0).random((2, 3, 64, 96), dtype=np.float32)
    with paddle.no_grad():
        eager = net.disparity(paddle.to_tensor(x)).numpy()
    out = deployment.DepthPredictor(str(tmp_path / "tiny"), onednn=False)(x)
    np.testing.assert_allclose(out, eager, rtol=0, atol=1e-6)
    shutil.rmtree(tmp_path / "tiny")

    import paddle2onnx

    def broken(*args, **kwargs):
        raise RuntimeError("unsupported op")

    monkeypatch.setattr(paddle2onnx, "export", broken)
    with pytest.raises(deployment.DeployError, match="paddle2onnx could not convert model"):
        export_models(net, str(tmp_path / "out"), 64, 96, "combined", ("onnx",))
    assert os.listdir(tmp_path) == []  # neither the target nor a temporary folder


def test_export_command_line_refusals(tmp_path, capsys):
    import export as export_script
    with pytest.raises(SystemExit) as exc:
        export_script.main(["--load_weights_folder", str(tmp_path), "--save_dir", str(tmp_path / "d")])
    assert str(exc.value).startswith("export.py: error:") and "encoder.pdparams" in str(exc.value)
    with pytest.raises(SystemExit) as exc:
        export_script.main(["--load_weights_folder", str(tmp_path), "--save_dir", "d", "--height", "100"])
    assert exc.value.code == 2 and "multiple of 32" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "d")
