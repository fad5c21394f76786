"""Shared test set-up: the project root on sys.path, Paddle on the CPU with every core (its share of them
when pytest-xdist runs files in parallel), the compiled networks' cache in pytest's temporary folder, and a
session that changes the checkout fails (tests write only under pytest's tmp paths: tests/support/checkout.py)."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import paddle  # noqa: E402
import pytest  # noqa: E402

from tests.support.checkout import pytest_sessionfinish, pytest_sessionstart, pytest_terminal_summary  # noqa: E402,F401
from tests.support.shared import run_folder  # noqa: E402
from utils.system import set_cpu_threads  # noqa: E402

paddle.set_device("cpu")
# pytest-xdist runs the files in one process per core: each takes its share of the cores, not all of them
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
set_cpu_threads(default=max(1, (os.cpu_count() or 1) // _WORKERS))


@pytest.fixture(scope="session", autouse=True)
def compiled_cache(tmp_path_factory):
    """The compiled networks of this session (deployment/compiled.py) under pytest's temporary folder, never
    in the user's ~/.cache; scripts started as subprocesses inherit it. Returns the folder. pytest-xdist's
    processes share one (its parent folder is theirs): the cache is safe for concurrent writers, and a program
    one process built is not built again by the other."""
    folder = run_folder(tmp_path_factory) / "compiled_cache"
    folder.mkdir(exist_ok=True)
    saved = os.environ.get("MLDA_CACHE_DIR")
    os.environ["MLDA_CACHE_DIR"] = str(folder)
    yield folder
    if saved is None:
        os.environ.pop("MLDA_CACHE_DIR", None)
    else:
        os.environ["MLDA_CACHE_DIR"] = saved
