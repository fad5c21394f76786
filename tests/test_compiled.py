"""The compiled network (deployment/compiled.py) behind Predictor, predict.py and app.py: equal to the eager
network on both backends, cached by the weights' content (a copy is a hit, a changed file a new entry, never
the old program), a damaged entry rebuilt, a failing export falling back to eager with one line."""
import json
import os
import shutil

import numpy as np
import paddle
import pytest
from skimage import data

import networks
import predict
from deployment import Predictor, compiled
from eval_fixtures import split_image_paths, synthetic_kitti, tamed_weights  # noqa: F401

BACKENDS = ("onnxruntime", "paddle")


@pytest.fixture(scope="module")
def photos(synthetic_kitti):  # noqa: F811
    """A synthetic frame and a natural photo (another size and aspect ratio)."""
    return [split_image_paths(synthetic_kitti)[1][0], data.chelsea()]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A cache folder of this module's own, so that what is built here is known."""
    folder = str(tmp_path_factory.mktemp("own_cache"))
    saved = os.environ[compiled.CACHE_ENV]
    os.environ[compiled.CACHE_ENV] = folder
    yield folder
    os.environ[compiled.CACHE_ENV] = saved


@pytest.fixture(scope="module")
def built(cache, tamed_weights, photos):  # noqa: F811
    """{backend: (the note of its first Predictor, its disparities)} and the eager disparities."""
    eager = Predictor(tamed_weights, eager=True)
    assert eager.compiled is None and eager.compile_note is None
    out = {"eager": [eager.predict_disp(p) for p in photos]}
    for backend in BACKENDS:
        notes = []
        predictor = Predictor(tamed_weights, backend=backend, log=notes.append)
        assert predictor.backend == backend and predictor.net is None
        out[backend] = (notes, [predictor.predict_disp(p) for p in photos])
    return out


def entries(cache):
    return sorted(os.listdir(cache))


def assert_close(got, want):
    """Every pixel within 1e-4 relative, with a floor of 1e-6 absolute for the near-zero disparities of these
    untrained weights (down to 3e-6): the backends' own float kernels differ there by ~5e-8 (ONNX Runtime's
    sigmoid is a rational approximation), which is over 1e-4 of such a value. Measured: at most 0.27 of this
    bound on either backend."""
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_compiled_equals_eager_and_says_its_build_once(built, backend):
    notes, disps = built[backend]
    assert len(notes) == 1 and notes[0].startswith(f"compiled the network for 64 x 128 on {backend} in "), notes
    for disp, eager in zip(disps, built["eager"]):
        assert disp.shape == (64, 128)
        assert_close(disp, eager)


def test_default_backend_is_the_first_installed():
    assert compiled.backends("cpu") == ["onnxruntime", "paddle"]   # both installed here; ONNX Runtime first


def test_second_predictor_and_a_copy_of_the_folder_reuse_the_entry(built, cache, tamed_weights, tmp_path,  # noqa: F811
                                                                   photos, monkeypatch):
    before = entries(cache)
    assert len(before) == 2   # one per backend
    stamps = {e: os.stat(os.path.join(cache, e, compiled.ENTRY_FILE)).st_mtime_ns for e in before}
    exports = []
    real_export = compiled.export_entry
    monkeypatch.setattr(compiled, "export_entry", lambda *a: exports.append(a) or real_export(*a))
    copy = tmp_path / "copy"
    shutil.copytree(tamed_weights, copy)   # the key is the content, not the path
    for folder in (tamed_weights, str(copy)):
        notes = []
        predictor = Predictor(folder, log=notes.append)
        assert notes == [f"using the network compiled for 64 x 128 on onnxruntime (cached in "
                         f"{os.path.join(cache, [e for e in before if 'onnxruntime' in e][0])})"]
        np.testing.assert_array_equal(predictor.predict_disp(photos[0]), built["onnxruntime"][1][0])
    assert exports == [] and entries(cache) == before
    assert stamps == {e: os.stat(os.path.join(cache, e, compiled.ENTRY_FILE)).st_mtime_ns for e in before}


@pytest.mark.slow
def test_changed_weights_get_a_new_entry_never_the_old_program(built, cache, tamed_weights, tmp_path,  # noqa: F811
                                                               photos):
    folder = tmp_path / "weights"
    shutil.copytree(tamed_weights, folder)
    spec = compiled.CompileSpec(64, 128, False, False, "onnxruntime")
    key = compiled.cache_key(str(folder), spec)
    assert key == compiled.cache_key(tamed_weights, spec)
    # the options are part of the key too
    for other in (compiled.CompileSpec(64, 128, True, False, "onnxruntime"),
                  compiled.CompileSpec(64, 128, False, False, "paddle"),
                  compiled.CompileSpec(96, 128, False, False, "onnxruntime")):
        assert compiled.cache_key(str(folder), other) != key
    # the same file name, other weights: the disparity head's bias moved
    _, nets = networks.load_weights_folder(str(folder), ("depth",))
    bias = nets["depth"].decoder.dispconvs["0"].conv.bias
    bias.set_value(bias + 0.5)
    networks.save_weights_folder(str(folder), nets, files=["depth"])
    assert compiled.cache_key(str(folder), spec) != key
    notes = []
    changed = Predictor(str(folder), log=notes.append).predict_disp(photos[0])
    assert notes[0].startswith("compiled the network for 64 x 128 on onnxruntime in "), notes
    assert_close(changed, Predictor(str(folder), eager=True).predict_disp(photos[0]))
    assert np.abs(changed - built["onnxruntime"][1][0]).max() > 0.01
    assert len(entries(cache)) == 3


def test_metadata_of_opt_json_keeps_the_entry_its_network_options_do_not(tamed_weights, tmp_path):  # noqa: F811
    """Editing what opt.json records about the run (its training data, log folder) reuses the compiled program;
    the options the program is built from (depth range, encoder depth, scales) make a new entry."""
    folder = tmp_path / "weights"
    shutil.copytree(tamed_weights, folder)
    spec = compiled.CompileSpec(64, 128, False, False, "onnxruntime")
    key = compiled.cache_key(str(folder), spec)
    saved = json.loads((folder / "opt.json").read_text())
    (folder / "opt.json").write_text(json.dumps({**saved, "training_data": {"dataset": "kitti"}, "log_dir": "/x"}))
    assert compiled.cache_key(str(folder), spec) == key
    for name, value in (("max_depth", 80.0), ("min_depth", 0.5), ("num_layers", 50), ("scales", [0])):
        (folder / "opt.json").write_text(json.dumps({**saved, name: value}))
        assert compiled.cache_key(str(folder), spec) != key, name
    (folder / "opt.json").write_text("{not json")
    with pytest.raises(networks.CheckpointError, match="opt.json is not valid JSON"):
        compiled.cache_key(str(folder), spec)


def damage_entry(entry, damage):
    if damage == "truncated model":   # found by the record's sizes
        with open(os.path.join(entry, "model.onnx"), "r+b") as f:
            f.truncate(1000)
    elif damage == "overwritten model":   # the same size, not a model: found by the runtime
        with open(os.path.join(entry, "model.onnx"), "r+b") as f:
            f.write(b"\0" * 1000)
    else:   # a partial entry: its record is written last
        os.remove(os.path.join(entry, compiled.ENTRY_FILE))


def tamed_entry(tamed_weights):
    spec = compiled.CompileSpec(64, 128, False, False, "onnxruntime")
    return compiled.entry_folder(compiled.cache_key(tamed_weights, spec), spec)


def test_entry_problem_finds_a_truncated_model_and_a_missing_record(built, tamed_weights, tmp_path):  # noqa: F811
    """Both take the rebuild path of test_damaged_entry_is_rebuilt's "no record" case (compile_network rebuilds
    every entry with a problem); the runtime's own refusal is the other path."""
    entry = tamed_entry(tamed_weights)
    assert compiled.entry_problem(entry) is None
    for damage in ("truncated model", "no record"):
        copy = str(tmp_path / damage.replace(" ", "_"))
        shutil.copytree(entry, copy)
        damage_entry(copy, damage)
        assert compiled.entry_problem(copy) is not None, damage


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["overwritten model", "no record"])
def test_damaged_entry_is_rebuilt(built, cache, tamed_weights, photos, damage):  # noqa: F811
    entry = tamed_entry(tamed_weights)
    assert os.path.isdir(entry)
    damage_entry(entry, damage)
    notes = []
    predictor = Predictor(tamed_weights, log=notes.append)
    assert notes[0].startswith("compiled the network for 64 x 128 on onnxruntime in "), notes
    assert compiled.entry_problem(entry) is None
    assert_close(predictor.predict_disp(photos[1]), built["eager"][1])
    assert not [e for e in os.listdir(cache) if e.startswith(".")]   # no temporary or discarded folder left


def test_a_failing_export_runs_eagerly_with_one_line(tamed_weights, tmp_path, photos, monkeypatch):  # noqa: F811
    monkeypatch.setenv(compiled.CACHE_ENV, str(tmp_path / "cache"))

    def fail(weights_folder, spec, folder):
        print("a tool's own complaint")   # printed by the exporting tools: kept off the screen, quoted
        raise RuntimeError(f"no {spec.backend} today")

    monkeypatch.setattr(compiled, "export_entry", fail)
    notes = []
    predictor = Predictor(tamed_weights, log=notes.append)
    assert notes == ["could not compile the network (onnxruntime: no onnxruntime today; last message: a tool's own "
                     "complaint; paddle: no paddle today; last message: a tool's own complaint); running it eagerly"]
    assert predictor.compiled is None and predictor.net is not None
    np.testing.assert_array_equal(predictor.predict_disp(photos[0]),
                                  Predictor(tamed_weights, eager=True).predict_disp(photos[0]))
    assert os.listdir(tmp_path / "cache") == []


def test_weights_that_do_not_load_are_refused_not_run_eagerly(tmp_path):
    (tmp_path / "opt.json").write_text("{}")
    with pytest.raises(networks.CheckpointError, match="encoder.pdparams not found"):
        Predictor(str(tmp_path))


def test_predict_py_compiled_by_default_eager_on_request(built, tamed_weights, synthetic_kitti, tmp_path,  # noqa: F811
                                                         capsys):
    photo = split_image_paths(synthetic_kitti)[1][2]
    runs = {}
    for name, extra in (("default", []), ("eager", ["--eager"])):
        predict.main(["--load_weights_folder", tamed_weights, "--color_path", photo, "--output_dir",
                      str(tmp_path / name)] + extra)
        runs[name] = capsys.readouterr().out
    assert runs["default"].count("using the network compiled for 64 x 128 on onnxruntime") == 1
    assert "the network compiled" not in runs["eager"] and "compiled the network" not in runs["eager"]
    stem = os.path.splitext(os.path.basename(photo))[0]
    assert_close(np.load(tmp_path / "default" / f"{stem}_disp.npy"), np.load(tmp_path / "eager" / f"{stem}_disp.npy"))


@pytest.mark.slow
def test_diffusion_head_compiled_equals_eager(tamed_weights, tmp_path, photos):  # noqa: F811
    """The head's step programs and the host loop (deployment/runtime.py) against the eager head, at its own
    and at other steps, strength and seed (run-time inputs: one entry serves them all)."""
    folder = tmp_path / "refined"
    shutil.copytree(tamed_weights, folder)
    paddle.seed(1)
    head = networks.DiffusionHead(cond_channels=16, ddim_steps=3, strength=0.5, noise_seed=2)
    net = networks.RefinedDepthNet(networks.load_weights_folder(str(folder), ("depth",))[1]["depth"], head)
    with paddle.no_grad():   # batch-norm statistics of a trained head, not the initial 0 / 1
        net.train()
        net(paddle.rand([2, 3, 64, 128]), net.noise_for(64, 128))
    net.eval()
    networks.save_refine_head(str(folder), head)
    for settings in ({}, {"ddim_steps": 2, "strength": 0.3, "noise_seed": 5}):
        notes = []
        fast = Predictor(str(folder), log=notes.append, **settings)
        assert fast.refined is not None and fast.metric and "on onnxruntime" in notes[0]
        slow = Predictor(str(folder), eager=True, **settings)
        assert_close(fast.predict_disp(photos[1]), slow.predict_disp(photos[1]))
    assert notes[0].startswith("using the network compiled")
