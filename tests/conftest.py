"""Shared test set-up: the project root on sys.path, Paddle on the CPU with every core, and the compiled
networks' cache in pytest's temporary folder."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import paddle  # noqa: E402
import pytest  # noqa: E402

from utils.system import set_cpu_threads  # noqa: E402

paddle.set_device("cpu")
set_cpu_threads()


@pytest.fixture(scope="session", autouse=True)
def compiled_cache(tmp_path_factory):
    """The compiled networks of this session (deployment/compiled.py) under pytest's temporary folder, never
    in the user's ~/.cache; scripts started as subprocesses inherit it. Returns the folder."""
    folder = tmp_path_factory.mktemp("compiled_cache")
    saved = os.environ.get("MLDA_CACHE_DIR")
    os.environ["MLDA_CACHE_DIR"] = str(folder)
    yield folder
    if saved is None:
        os.environ.pop("MLDA_CACHE_DIR", None)
    else:
        os.environ["MLDA_CACHE_DIR"] = saved
