"""Shared test set-up: the project root on sys.path, Paddle on the CPU with every core (its share of
them when pytest-xdist runs files in parallel), and a session that
changes the checkout fails (tests write only under pytest's tmp paths: tests/support/checkout.py)."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import paddle  # noqa: E402

from tests.support.checkout import pytest_sessionfinish, pytest_sessionstart, pytest_terminal_summary  # noqa: E402,F401
from utils.system import set_cpu_threads  # noqa: E402

paddle.set_device("cpu")
# pytest-xdist runs the files in one process per core: each takes its share of the cores, not all of them
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
set_cpu_threads(default=max(1, (os.cpu_count() or 1) // _WORKERS))
