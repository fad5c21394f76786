"""tests/support/checkout.py, the hooks tests/conftest.py uses: a pytest session (run here in a throw-away git
checkout) that rewrites a tracked file or leaves a new file in the checkout fails and names them; one that
writes only under tmp_path passes; a file modified twice shows; outside a git checkout nothing is checked."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFTEST = "from tests.support.checkout import pytest_sessionfinish, pytest_sessionstart, pytest_terminal_summary\n"
CHANGES = ("def test_it():\n    open('docs/picture.png', 'wb').write(b'new')\n"
           "    open('left_behind.txt', 'w').write('x')\n")
TMP_ONLY = "def test_it(tmp_path):\n    (tmp_path / 'picture.png').write_bytes(b'new')\n"
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed (apt-get install git)")


def run_session(folder, body):
    """pytest on one test file `body` in a fresh git checkout at folder, with the conftest hooks."""
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / "picture.png").write_bytes(b"old")
    (folder / "conftest.py").write_text(CONFTEST)
    (folder / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (folder / "test_case.py").write_text(body)
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "start"]):
        subprocess.run(["git", *cmd], cwd=folder, env=env, check=True)
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "test_case.py"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)


@needs_git
def test_a_session_that_changes_the_checkout_fails_naming_the_paths(tmp_path):
    result = run_session(tmp_path, CHANGES)
    assert result.returncode == 1, result.stdout
    assert "1 passed" in result.stdout and "tests changed the checkout" in result.stdout
    assert "  docs/picture.png (changed)" in result.stdout and "  left_behind.txt (appeared)" in result.stdout


@needs_git
def test_a_session_writing_under_tmp_path_passes(tmp_path):
    result = run_session(tmp_path, TMP_ONLY)
    assert result.returncode == 0 and "tests changed the checkout" not in result.stdout, result.stdout


@needs_git
def test_snapshots_tell_a_second_change_of_a_modified_file(tmp_path):
    """A file already modified before the session and written again shows (by its size/time), and a
    folder that is no git checkout gives no snapshot."""
    from tests.support import checkout
    assert checkout.snapshot(str(tmp_path)) is None
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "a.txt").write_text("one")
    before = checkout.snapshot(str(tmp_path))
    assert before == {"a.txt": ("??", 3, os.stat(tmp_path / "a.txt").st_mtime_ns)}
    (tmp_path / "a.txt").write_text("three")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "m.pyc").write_bytes(b"")
    assert checkout.differences(before, checkout.snapshot(str(tmp_path))) == ["a.txt (changed again)"]
