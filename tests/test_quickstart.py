"""The README's quick start, run as the README shows it (`bash quickstart.sh`) in a copy of the checkout
under pytest's tmp folder: the script writes data/, logs/ and outputs/ beside itself, never into the
checkout under test. Only the training is shortened (QUICKSTART_TRAIN_ARGS) and pip is left out
(QUICKSTART_SKIP_INSTALL), so the test neither takes the script's minutes nor changes the environment."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# one epoch of two steps at the smallest network input, without depth hints (their fused SGM takes minutes)
SHORT_TRAINING = "--num_epochs 1 --max_steps 2 --batch_size 2 --height 64 --width 64 --no-use_depth_hints"
METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")


def readme_quick_start_command():
    """The first command of the README's Quick start code block, without its comment."""
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = readme[readme.index("## Quick start"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return block.splitlines()[0].split("#")[0].strip()


def copy_checkout(destination):
    """The checkout's files, as a fresh clone has them: without .git and the folders .gitignore names at the
    top (data/, logs/, outputs/, ...), which runs of the checkout may have filled."""
    ignored = {".git", "__pycache__"}
    with open(os.path.join(ROOT, ".gitignore")) as f:
        ignored |= {line.strip().strip("/") for line in f if line.strip().startswith("/")}
    shutil.copytree(ROOT, destination, ignore=lambda folder, names: [
        n for n in names if n in ignored and (n in {".git", "__pycache__"} or folder == ROOT)])


@pytest.fixture(scope="module")
def quick_start(tmp_path_factory):
    checkout = str(tmp_path_factory.mktemp("quickstart") / "checkout")
    copy_checkout(checkout)
    env = dict(os.environ, PYTHON=sys.executable, QUICKSTART_SKIP_INSTALL="1", QUICKSTART_TRAIN_ARGS=SHORT_TRAINING)
    command = readme_quick_start_command()
    run = subprocess.run(["bash", "-c", command], cwd=checkout, env=env, capture_output=True, text=True,
                         timeout=1800)
    return checkout, command, run


@pytest.mark.slow
def test_the_readme_shows_the_script_that_runs(quick_start):
    checkout, command, run = quick_start
    assert command == "bash quickstart.sh"
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]


@pytest.mark.slow
def test_it_writes_the_weights_folder_with_the_extra_training_arguments(quick_start):
    checkout, _, run = quick_start
    best = os.path.join(checkout, "logs", "quickstart", "models", "best")
    for name in ("encoder.pdparams", "depth.pdparams", "pose_encoder.pdparams", "pose.pdparams", "opt.json"):
        assert os.path.getsize(os.path.join(best, name)) > 0, name
    with open(os.path.join(best, "opt.json")) as f:
        opt = json.load(f)
    # the preset's values, with QUICKSTART_TRAIN_ARGS winning where it gives one
    assert (opt["height"], opt["width"], opt["batch_size"], opt["use_depth_hints"]) == (64, 64, 2, False)
    assert opt["split"] == "synthetic" and opt["weights_init"] == "scratch"


@pytest.mark.slow
def test_test_py_prints_the_table_of_the_seven_metrics(quick_start):
    _, _, run = quick_start
    lines = run.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if re.fullmatch(r"\s*abs_rel \|.*", line))
    assert [name.strip() for name in lines[header].split("|")] == list(METRICS)
    values = dict(zip(METRICS, (float(v) for v in lines[header + 1].split("|"))))
    assert all(np.isfinite(v) and v >= 0 for v in values.values())
    assert 0 <= values["a1"] <= values["a2"] <= values["a3"] <= 1   # thresholds 1.25, 1.25^2, 1.25^3
    assert values["sq_rel"] > 0 and values["rmse"] > 0
    latex = next(line for line in lines if line.strip().startswith("LaTeX:"))
    assert [float(v) for v in latex.split(":", 1)[1].replace("\\\\", "").split("&")] == list(values.values())


@pytest.mark.slow
def test_it_predicts_the_depth_of_the_first_test_frame(quick_start):
    checkout, _, run = quick_start
    data = os.path.join(checkout, "data", "synthetic_kitti")
    with open(os.path.join(data, "splits", "test_files.txt")) as f:
        drive, frame = f.readline().split()[:2]
    stem = f"{int(frame):010d}"
    photo = Image.open(os.path.join(data, drive, "image_02", "data", f"{stem}.jpg"))
    depth = np.load(os.path.join(checkout, "outputs", "quickstart", f"{stem}_depth.npy"))
    assert depth.shape == (photo.height, photo.width) and depth.dtype == np.float32
    assert np.isfinite(depth).all() and depth.min() > 0
    assert os.path.isfile(os.path.join(checkout, "outputs", "quickstart", f"{stem}_disp.jpeg"))
    assert run.stdout.rstrip().endswith("prediction in outputs/quickstart")
