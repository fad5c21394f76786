"""Weights folders: the original layout of docs/checkpoint_keys loads, keys go where the
spec says, the converter round-trips, and bad files are refused with the file and keys named."""
import csv
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

import networks
from convert_checkpoint import convert
from networks import CheckpointError, load_models, save_models
from networks.checkpoint import to_original_keys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS_DIR = os.path.join(ROOT, "docs", "checkpoint_keys")  # the spec's key tables, copied
H, W = 64, 128


def key_table(name):
    with open(os.path.join(KEYS_DIR, f"{name}.tsv")) as f:
        return {row["key"]: eval(row["shape"]) for row in csv.DictReader(f, delimiter="\t")}


@pytest.fixture(scope="module")
def models():
    paddle.seed(3)
    m = networks.build_models()
    image = paddle.to_tensor(np.random.RandomState(0).rand(1, 3, H, W).astype(np.float32))
    return networks.lsuv.tame_weights(m, image)


@pytest.fixture(scope="module")
def original_folder(models, tmp_path_factory):
    """A folder with exactly the keys and shapes of the key tables; unused keys hold random values."""
    folder = str(tmp_path_factory.mktemp("original"))
    rng = np.random.RandomState(1)
    for name, model in models.items():
        ours = to_original_keys(name, model.state_dict())
        state = {k: (ours[k].numpy() if k in ours else rng.randn(*shape).astype(np.float32))
                 for k, shape in key_table(name).items()}
        paddle.save(state, os.path.join(folder, f"{name}.pdparams"))
    return folder


def run(models, image):
    with paddle.no_grad():
        features = models["encoder"](image)
        disps = models["depth"](features)
        pose = []
        if "pose" in models:
            pose = models["pose"](models["pose_encoder"](paddle.concat([image, image.flip([3])], axis=1)))
    return [f.numpy() for f in features], {s: disps[("disp", s)].numpy() for s in range(4)}, [p.numpy() for p in pose]


@pytest.fixture(scope="module")
def image():
    return paddle.to_tensor(np.random.RandomState(2).rand(1, 3, H, W).astype(np.float32))


def assert_same(a, b):
    for x, y in zip(a[0] + list(a[1].values()) + a[2], b[0] + list(b[1].values()) + b[2]):
        np.testing.assert_array_equal(x, y)


def test_original_layout_loads_and_matches(models, original_folder, image):
    loaded = load_models(original_folder, networks.MODEL_NAMES)
    assert all(not m.training for m in loaded.values())
    assert_same(run(loaded, image), run(models, image))


@pytest.mark.parametrize("key,changed_features,changed_disps", [
    # The backbone continues from its own features, so a level's side branch, fuse and attention
    # change that feature alone; the decoder reads feature k at level k + 1 (scales <= k + 1).
    ("convs20.weight", {1}, {0, 1, 2}),                    # side branch 2 (input at H/4) feeds feature 1
    ("anet_64_1.K.weight", {0}, {0, 1}),                   # global attention of feature 0
    ("convs64_3.weight", {1}, {0, 1, 2}),                  # the second 64-channel fuse is feature 1's
    ("decoder.22.conv.weight", set(), {1}),                # dispconv(1)
    ("decoder.5.psi.weight", set(), {0}),                  # grid attention of level 0
    ("decoder.7.conv.conv.weight", set(), set()),          # upconv(4, 1): stored, never run
    ("encoder.fc.weight", set(), set()),
])
def test_original_keys_act_where_the_spec_says(models, original_folder, image, tmp_path, key, changed_features,
                                               changed_disps):
    base = run(models, image)
    name = "depth" if key.startswith("decoder") else "encoder"
    state = paddle.load(os.path.join(original_folder, f"{name}.pdparams"))
    state[key] = state[key] * 1.5 + 0.01
    for n in ("encoder", "depth"):
        src = os.path.join(original_folder, f"{n}.pdparams")
        if n == name:
            paddle.save(state, str(tmp_path / f"{n}.pdparams"))
        else:
            os.symlink(src, tmp_path / f"{n}.pdparams")
    features, disps, _ = run(load_models(str(tmp_path)), image)
    assert {k for k in range(5) if not np.array_equal(features[k], base[0][k])} == changed_features
    assert {s for s in range(4) if not np.array_equal(disps[s], base[1][s])} == changed_disps


def test_converter_round_trip(models, image, tmp_path):
    ours = str(tmp_path / "ours")
    save_models(ours, models, opt={"height": H, "width": W})
    converted = str(tmp_path / "converted")
    assert convert(ours, converted) == list(networks.MODEL_NAMES)
    for name in networks.MODEL_NAMES:
        state = paddle.load(os.path.join(converted, f"{name}.pdparams"))
        table = key_table(name)
        assert set(state) == set(table)
        assert all(list(state[k].shape) == table[k] for k in table)
    assert networks.read_opt(converted).height == H
    assert_same(run(load_models(converted, networks.MODEL_NAMES), image), run(models, image))
    assert_same(run(load_models(ours, networks.MODEL_NAMES), image), run(models, image))


def test_bad_checkpoints_are_refused_naming_file_and_keys(original_folder, tmp_path):
    state = paddle.load(os.path.join(original_folder, "depth.pdparams"))
    cases = {
        "missing": ({k: v for k, v in state.items() if k != "decoder.21.conv.bias"}, "decoder.21.conv.bias"),
        "shape": ({**state, "decoder.22.conv.weight": np.zeros((1, 16, 3, 3), np.float32)}, "decoder.22.conv.weight"),
        "unknown": ({**state, "decoder.99.weight": np.zeros(3, np.float32)}, "decoder.99.weight"),
    }
    for case, (bad, named_key) in cases.items():
        folder = tmp_path / case
        folder.mkdir()
        paddle.save(bad, str(folder / "depth.pdparams"))
        model = networks.build_model("depth")
        with pytest.raises(CheckpointError) as err:
            networks.load_state(model, "depth", str(folder / "depth.pdparams"))
        assert str(folder / "depth.pdparams") in str(err.value) and named_key in str(err.value)
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "encoder.pdparams").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="could not be read"):
        load_models(str(tmp_path / "corrupt"), ["encoder"])
    with pytest.raises(CheckpointError, match="depth.pdparams not found"):
        load_models(str(tmp_path / "corrupt"), ["depth"])


def test_converter_cli_error_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "convert_checkpoint.py"), "--load_weights_folder",
                           str(tmp_path / "empty"), "--output_folder", str(out)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "holds none of" in proc.stderr and not out.exists()
