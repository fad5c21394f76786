"""Shared test set-up: the project root on sys.path, Paddle on the CPU with every core."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import paddle  # noqa: E402

from utils.system import set_cpu_threads  # noqa: E402

paddle.set_device("cpu")
set_cpu_threads()
