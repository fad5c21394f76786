"""predict.py --engine ray (deployment/ray_batch.py) on a local Ray: the files of the one-process predict.py
(the focal rescaling of a photo with an EXIF focal length and its <stem>_depth.json included), the same
report, and a rerun after losing half the outputs writing only those; options refused before Ray starts;
Ray gone at the end."""
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

import options
import predict
from deployment import ray_batch
from eval_fixtures import split_image_paths, synthetic_kitti, tamed_weights  # noqa: F401
from tests.support.local_ray import children, shutdown
from utils.cameras import exif

READABLE = 9   # photos of photo_folder that are written


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (predict.py keeps a Ray it finds connected), shut down with every
    process it started."""
    from deployment import ray_cluster

    before = children()
    ray_cluster.connect()
    yield
    assert shutdown(before=before) == []   # no stray Ray process


@pytest.fixture(scope="module")
def photo_folder(synthetic_kitti, tmp_path_factory):  # noqa: F811
    """The synthetic test frames, one of them also as PNG (two inputs sharing a stem), one with an EXIF focal
    length (its metric depth rescaled), and a broken file."""
    _, paths = split_image_paths(synthetic_kitti)
    folder = tmp_path_factory.mktemp("ray_photos")
    for p in paths:
        shutil.copy(p, folder / os.path.basename(p))
    Image.open(paths[0]).save(folder / (os.path.splitext(os.path.basename(paths[0]))[0] + ".png"))
    tags = Image.Exif()
    tags[0x010F] = "Phone"   # Make
    tags.get_ifd(exif.EXIF_IFD)[exif.FOCAL_35] = 28
    Image.open(paths[1]).save(folder / "exif.jpg", quality=95, exif=tags)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return folder


def run_predict(argv):
    """predict.main's exit message (None when every photo was written)."""
    try:
        predict.main(argv)
    except SystemExit as e:
        return e.code
    return None


def read(path):
    if path.endswith(".json"):
        return json.loads(open(path).read())
    if path.endswith(".npy"):
        return np.load(path)
    return np.asarray(Image.open(path)).astype(np.float64)


def assert_same_files(got, expect):
    names = sorted(os.listdir(expect))
    assert sorted(os.listdir(got)) == names and len(names) == 5 * READABLE   # 5 files each, <stem>_depth.json included
    assert "exif_depth.json" in names
    for name in names:
        a, b = read(os.path.join(got, name)), read(os.path.join(expect, name))
        if name.endswith(".json"):
            assert a == b and a["caption"]   # the depth.json of every photo, the same from both engines
            if name == "exif_depth.json":
                assert a["photo_camera"] == "its EXIF" and a["focal_rescale"] != 1
            continue
        assert a.shape == b.shape and a.dtype == b.dtype
        # the network treats each image of a batch alone: equal up to float rounding. Disparities within
        # 1e-5 of their largest; depth, 1 / (a + b disp), turns 1e-7 of rounding in the near-zero disparities
        # of these untrained weights into ~1e-4 relative, so depth files are compared relatively
        if name.endswith("_disp.npy"):
            tolerance = 1e-5 * np.abs(b).max()
        elif name.endswith(".jpeg"):   # JPEG's blocks turn a grey level of difference into a few here and there
            assert np.abs(a.astype(np.float64) - b).mean() <= 0.5, name
            continue
        else:
            tolerance = {".npy": 2e-4 * np.abs(b), ".png": 2e-4 * b.astype(np.float64) + 1}[os.path.splitext(name)[1]]
        assert (np.abs(a.astype(np.float64) - b) <= tolerance).all(), name


@pytest.mark.slow   # a local Ray and its actor pool: about a minute
def test_ray_writes_predict_files_and_reruns_only_missing(local_ray, photo_folder, tamed_weights, tmp_path,  # noqa: F811
                                                          capsys):
    common = ["--load_weights_folder", tamed_weights, "--color_path", str(photo_folder), "--save_png16"]
    local_error = run_predict(common + ["--output_dir", str(tmp_path / "local")])
    local_out = capsys.readouterr().out
    out = str(tmp_path / "ray")
    ray_args = common + ["--output_dir", out, "--engine", "ray", "--batch_size", "3", "--worker_cpus", "1"]
    error = run_predict(ray_args)
    printed = capsys.readouterr().out
    assert "broken.jpg" in error and "\n" not in error and "broken.jpg" in local_error
    for out_lines in (printed, local_out):
        assert f"{READABLE} of {READABLE + 1} image(s) written" in out_lines
        assert "exif.jpg: metric depth x" in out_lines   # the focal rescaling, said per photo
    assert_same_files(out, str(tmp_path / "local"))

    # lose half the photos' files (one file only of one of them): the rerun predicts those photos again and
    # leaves the others' files alone
    stems = sorted({n[: n.rindex("_")] for n in os.listdir(out)})   # <stem>_<kind>, kinds without "_"
    lost = stems[::2]
    for name in os.listdir(out):
        stem = name[: name.rindex("_")]
        if stem in lost[1:] or name == f"{lost[0]}_depth.png":
            os.remove(os.path.join(out, name))
    kept = {n: os.stat(os.path.join(out, n)).st_mtime_ns for n in os.listdir(out) if n[: n.rindex("_")] not in lost}
    error = run_predict(ray_args)
    printed = capsys.readouterr().out
    assert f"{len(lost)} of {len(lost) + 1} image(s) written" in printed   # the lost ones and broken.jpg
    assert f"skipped {READABLE - len(lost)} image(s) whose files were already in" in printed
    assert {n: os.stat(os.path.join(out, n)).st_mtime_ns for n in kept} == kept   # untouched
    assert_same_files(out, str(tmp_path / "local"))


def test_pending_lists_photos_with_a_missing_file(tmp_path):
    paths = [str(tmp_path / n) for n in ("a.jpg", "a.png", "b.jpg", "c.jpg")]
    out = tmp_path / "out"
    out.mkdir()
    for stem in ("a_jpg", "a_png", "b"):
        for kind in ("disp.npy", "disp.jpeg", "depth.npy"):
            (out / f"{stem}_{kind}").write_bytes(b"")
    (out / "b_disp.npy").unlink()
    todo, stems = ray_batch.pending(paths, str(out))
    assert todo == paths[2:] and stems == {paths[2]: "b", paths[3]: "c"}
    todo, _ = ray_batch.pending(paths, str(out), save_png16=True)   # no <stem>_depth.png anywhere
    assert todo == paths


@pytest.mark.parametrize("extra, words", [
    (["--num_actors", "2"], "--num_actors is an option of --engine ray"),
    (["--engine", "ray", "--num_actors", "0"], "--num_actors 0"),
    (["--engine", "ray", "--camera_height", "1.65"], "--engine local only"),
    (["--engine", "ray", "--batch_coupled_filter"], "depend on its batch"),
    (["--engine", "ray", "--worker_cpus", "0"], "--worker_cpus 0"),
])
def test_engine_options_refused(extra, words, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        options.parse("predict", ["--load_weights_folder", str(tmp_path), "--color_path", str(tmp_path)] + extra)
    assert e.value.code == 2 and words in capsys.readouterr().err


def test_engine_ray_without_ray_says_how_to_install(monkeypatch, tmp_path, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(SystemExit):
        options.parse("predict", ["--load_weights_folder", str(tmp_path), "--color_path", str(tmp_path),
                                  "--engine", "ray"])
    assert "--engine ray needs Ray: pip install -r requirements-serve.txt" in capsys.readouterr().err
