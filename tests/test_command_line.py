"""Every top-level script checks its command line before it imports Paddle: a mistyped option answers in
one line and a non-zero exit, and the process never loaded Paddle (read from `python -X importtime`, which
lists every module a process imports), so the answer does not wait seconds for Paddle's import."""
import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def scripts():
    """The runnable scripts at the top of the checkout: the .py files there with a __main__ block."""
    found = []
    for path in sorted(glob.glob(os.path.join(ROOT, "*.py"))):
        with open(path) as f:
            if 'if __name__ == "__main__":' in f.read():
                found.append(os.path.basename(path))
    return found


def test_the_scripts_are_found():
    # the list below is derived, so a new script is covered without editing this file; these must be in it
    assert {"train.py", "test.py", "predict.py", "export.py", "inference.py", "app.py", "serve.py",
            "evaluate_pose.py", "train_refine.py", "convert_checkpoint.py"} <= set(scripts())


def imported_modules(importtime_lines):
    """The module names of `python -X importtime`'s lines ('import time: self | cumulative | name')."""
    return [line.rsplit("|", 1)[1].strip() for line in importtime_lines if line.startswith("import time:")
            and "|" in line]


@pytest.mark.parametrize("script", scripts())
def test_bad_option_answers_in_one_line_without_paddle(script):
    run = subprocess.run([sys.executable, "-X", "importtime", script, "--no_such_option"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    lines = run.stderr.splitlines()
    modules = imported_modules(lines)
    messages = [line for line in lines if not line.startswith("import time:")]
    assert run.returncode != 0
    assert messages and len(messages) == 1 and messages[0].startswith(f"{script}: error:"), run.stderr[-2000:]
    assert run.stdout == ""
    assert "argparse" in modules   # the importtime listing was read (so an empty paddle list means something)
    paddle = [name for name in modules if name == "paddle" or name.startswith("paddle.")]
    assert not paddle, f"{script} imported Paddle before checking its options: {paddle[:5]}"
