"""Session fixtures of the evaluation/prediction tests: the data tests' synthetic KITTI (test split: one
drive, 7 left frames) and a weights folder with tamed (trained-like, O(1) activations) weights at
64 x 128. Import the fixtures by name; both are built once per session even when several modules import
them, and once for all of pytest-xdist's processes (tests/support/shared.py)."""
import os

import numpy as np
import paddle
import pytest

import networks
from tests.support.lsuv import tame_weights
from tests.support.shared import shared_folder
from tests.synthetic_fixture import synthetic_kitti  # noqa: F401  (the data tests' dataset, shared)
from utils.io import image_io

NET_H, NET_W = 64, 128


def load_script(name):
    """Import one of the project's top-level scripts by its path (test.py would otherwise clash
    with Python's own `test` package)."""
    import importlib.util
    import sys
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), f"{name}.py")
    key = f"_script_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def split_image_paths(info):
    root = info["data_path"]
    with open(os.path.join(root, "splits", "test_files.txt")) as f:
        lines = [line.split() for line in f.read().splitlines() if line.strip()]
    return lines, [os.path.join(root, d, "image_02", "data", f"{int(i):010d}.jpg") for d, i, _ in lines]


@pytest.fixture(scope="session")
def tamed_weights(tmp_path_factory, synthetic_kitti):
    """Weights folder (encoder, depth, pose_encoder, pose + opt.json at 64 x 128) whose convolutions
    were rescaled on a synthetic frame (tests/support/lsuv.py)."""
    def build(folder):
        _, paths = split_image_paths(synthetic_kitti)
        sample = paddle.to_tensor(image_io.preprocess(image_io.load_image(paths[0]), NET_H, NET_W))
        paddle.seed(0)
        # Paddle's default init (build_net), the weights the tests were tuned on (not build_nets' init_as_original)
        nets = tame_weights({p: networks.build_net(p, 18, (0, 1, 2, 3)) for p in ("depth", "pose")}, sample)
        networks.save_weights_folder(folder, nets, {"height": NET_H, "width": NET_W, "num_layers": 18,
                                                     "scales": [0, 1, 2, 3], "min_depth": 0.1, "max_depth": 100.0})

    return shared_folder(tmp_path_factory, "eval_tamed_weights", build)


def dense_gt(info, lines):
    """Exact dense depth of each test line (camera z, 0 = sky) from the synthetic dataset."""
    root = info["data_path"]
    return [np.load(os.path.join(root, d, "depth", "image_02", f"{int(i):010d}.npy")).astype(np.float32)
            for d, i, _ in lines]
