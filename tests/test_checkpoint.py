"""Weights folders: files built straight from the spec's key tables (docs/checkpoint_keys, not the
project's key mapping) load, keys act where the spec says, the converter writes exactly the tables
and round-trips, and bad files are refused with the file and keys named. test_golden.py pins what
the loaded networks compute."""
import os
import re
import subprocess
import sys

import numpy as np
import paddle
import pytest

import networks
from networks import CheckpointError, convert_folder, load_weights_folder, save_weights_folder
from tests.support.key_tables import FILE_ORDER, ROOT, key_table, write_original_folder

H, W = 64, 128
# docs/MLDA_NET.md §9: original-layout keys the forward pass never reads (written out here, independently
# of networks/weights.py); the converter fills them with fresh values.
UNUSED = {
    "encoder": r"encoder\.fc\.",
    "depth": r"decoder\.(7|10|13|16|19)\.",
    "pose_encoder": r"encoder\.fc\.|convs[1-4][01]\.|bn[1-4][01]\.|convs(64|128|256)_|bn(64|128|256)_|"
                    r"anet_(64|128|256)",
    "pose": r"$^",
}


@pytest.fixture(scope="module")
def original_folder(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("original"))
    write_original_folder(folder, seed=5)
    return folder


@pytest.fixture(scope="module")
def image():
    return paddle.to_tensor(np.random.RandomState(2).rand(1, 3, H, W).astype(np.float32))


def run(nets, image):
    """Features, disparities and pose of `nets` as numpy arrays."""
    with paddle.no_grad():
        features = nets["depth"].encoder(image)
        disps = nets["depth"].decoder(features)
        pose = list(nets["pose"](image, image.flip([3]))) if "pose" in nets else []
    return [f.numpy() for f in features], {s: disps[("disp", s)].numpy() for s in range(4)}, [p.numpy() for p in pose]


def assert_same(a, b):
    for x, y in zip(a[0] + list(a[1].values()) + a[2], b[0] + list(b[1].values()) + b[2]):
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def loaded(original_folder, image):
    opt, nets = load_weights_folder(original_folder, parts=("depth", "pose"))
    return opt, nets, run(nets, image)


@pytest.fixture(scope="module")
def ours(loaded, tmp_path_factory):
    """The loaded networks saved in this project's layout."""
    folder = str(tmp_path_factory.mktemp("ours"))
    save_weights_folder(folder, loaded[1], opt={"height": H, "width": W, "scales": [0, 1, 2, 3]})
    return folder


def test_both_layouts_load_and_agree(loaded, ours, image):
    opt, nets, out = loaded
    assert all(not n.training for n in nets.values())
    assert isinstance(nets["depth"], networks.DepthNet) and isinstance(nets["pose"], networks.PoseNet)
    assert (opt.height, opt.width, opt.num_layers, list(opt.scales)) == (192, 640, 18, [0, 1, 2, 3])  # no opt.json
    assert sorted(os.listdir(ours)) == sorted([f"{n}.pdparams" for n in FILE_ORDER] + ["opt.json"])
    for name in FILE_ORDER:  # our layout shares no key with the original
        assert not set(paddle.load(os.path.join(ours, f"{name}.pdparams"))) & {k for k, _ in key_table(name)}
    opt2, nets2 = load_weights_folder(ours, parts=("depth", "pose"))
    assert (opt2.height, opt2.width) == (H, W)
    assert_same(run(nets2, image), out)


def test_every_loaded_value_is_the_file_s_and_fresh_networks_stay_random(ours):
    """load_weights_folder builds its networks without drawing random values (networks/weights.py): each value
    of the loaded state must come from the files, and a network built afterwards is initialised as usual."""
    _, nets = load_weights_folder(ours, parts=("depth", "pose"))
    stored = {}
    for name, layer in networks.weight_files(nets).items():
        saved = paddle.load(os.path.join(ours, f"{name}.pdparams"))
        stored.update({id(v): saved[k] for k, v in layer.state_dict().items()})
    for net in nets.values():
        values = net.state_dict().values()
        assert all(id(v) in stored for v in values)
        for v in values:
            np.testing.assert_array_equal(v.numpy(), stored[id(v)].numpy())
    fresh = networks.build_net("depth").decoder.state_dict()
    assert all(float(v.abs().max()) > 0 for k, v in fresh.items() if k.endswith(".weight") and "_bn" not in k
               and v.ndim == 4)   # convolution kernels drawn, not the loader's constant


def test_converter_writes_the_tables_and_round_trips(original_folder, loaded, ours, image, tmp_path):
    out = loaded[2]
    converted = str(tmp_path / "converted")
    assert convert_folder(ours, converted) == list(FILE_ORDER)
    for name in FILE_ORDER:
        state = {k: v.numpy() for k, v in paddle.load(os.path.join(converted, f"{name}.pdparams")).items()}
        table = key_table(name)
        assert set(state) == {k for k, _ in table}
        assert all(state[k].shape == shape for k, shape in table)
        source = paddle.load(os.path.join(original_folder, f"{name}.pdparams"))
        for key, _ in table:  # every key the forward pass reads comes back with the original's value
            if not re.match(UNUSED[name], key):
                np.testing.assert_array_equal(state[key], source[key].numpy(), err_msg=f"{name}: {key}")
    assert load_weights_folder(converted)[0].height == H
    assert_same(run(load_weights_folder(converted, parts=("depth", "pose"))[1], image), out)


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
def test_original_keys_act_where_the_spec_says(original_folder, loaded, image, tmp_path, key, changed_features,
                                               changed_disps):
    base = loaded[2]
    name = "depth" if key.startswith("decoder") else "encoder"
    state = paddle.load(os.path.join(original_folder, f"{name}.pdparams"))
    state[key] = state[key] * 1.5 + 0.01
    for n in ("encoder", "depth"):
        if n == name:
            paddle.save(state, str(tmp_path / f"{n}.pdparams"))
        else:
            os.symlink(os.path.join(original_folder, f"{n}.pdparams"), tmp_path / f"{n}.pdparams")
    features, disps, _ = run(load_weights_folder(str(tmp_path))[1], image)
    assert {k for k in range(5) if not np.array_equal(features[k], base[0][k])} == changed_features
    assert {s for s in range(4) if not np.array_equal(disps[s], base[1][s])} == changed_disps


def test_bad_checkpoints_are_refused_naming_file_and_keys(original_folder, tmp_path):
    state = paddle.load(os.path.join(original_folder, "depth.pdparams"))
    nets = {"depth": networks.DepthNet()}
    cases = {
        "missing": ({k: v for k, v in state.items() if k != "decoder.21.conv.bias"}, "decoder.21.conv.bias"),
        "shape": ({**state, "decoder.22.conv.weight": np.zeros((1, 16, 3, 3), np.float32)}, "decoder.22.conv.weight"),
        "unknown": ({**state, "decoder.99.weight": np.zeros(3, np.float32)}, "decoder.99.weight"),
    }
    for case, (bad, named_key) in cases.items():
        folder = tmp_path / case
        folder.mkdir()
        paddle.save(bad, str(folder / "depth.pdparams"))
        with pytest.raises(CheckpointError) as err:
            networks.load_into(nets, str(folder), files=["depth"])
        message = str(err.value)
        assert str(folder / "depth.pdparams") in message and named_key in message and "\n" not in message
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "encoder.pdparams").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="encoder.pdparams could not be read"):
        load_weights_folder(str(tmp_path / "corrupt"))
    os.remove(tmp_path / "corrupt" / "encoder.pdparams")
    os.symlink(os.path.join(original_folder, "encoder.pdparams"), tmp_path / "corrupt" / "encoder.pdparams")
    with pytest.raises(CheckpointError, match="depth.pdparams not found"):
        load_weights_folder(str(tmp_path / "corrupt"))
    (tmp_path / "corrupt" / "opt.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="opt.json is not valid JSON"):
        load_weights_folder(str(tmp_path / "corrupt"))
    with pytest.raises(CheckpointError, match="does not exist"):
        load_weights_folder(str(tmp_path / "nowhere"))


def test_converter_cli_error_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "convert_checkpoint.py"), "--load_weights_folder",
                           str(tmp_path / "empty"), "--output_folder", str(out)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "holds none of" in proc.stderr and not out.exists()
