"""Session fixtures built once for the whole test run, not once per pytest-xdist process.

pytest-xdist gives each of its processes its own base temporary folder (<run>/popen-gw0, ...); their
parent is the run's. shared_folder() builds a fixture's folder there under an exclusive file lock:
the first process to ask builds it, the others wait for it and reuse it. Without xdist it is the
process's own base folder, as before.
"""
import fcntl
import shutil
from contextlib import contextmanager


def run_folder(tmp_path_factory):
    """The temporary folder every process of this test run sees: the parent of an xdist process's own
    (named popen-gw<N> by pytest-xdist; judged by the folder, not by PYTEST_XDIST_WORKER, which a pytest
    started from inside a test would inherit)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if base.name.startswith("popen-gw") else base


@contextmanager
def locked(path):
    """An exclusive lock on `path` + ".lock" (held across processes while the block runs)."""
    with open(str(path) + ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def shared_folder(tmp_path_factory, name, build):
    """<run folder>/<name>, made by `build(path)` once per test run (build may also add to a folder made
    before, leaving <name> alone); returns its path as a str. What a process that died left half-built is
    built again: the marker <name>.built is written last."""
    folder = run_folder(tmp_path_factory) / name
    done = folder.parent / (name + ".built")
    with locked(folder):
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            build(str(folder))
            done.write_text("")
    return str(folder)
