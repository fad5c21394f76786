"""Device and thread selection shared by every script."""
import os

import paddle


def set_cpu_threads(num_threads=None):
    """Let Paddle's CPU kernels use `num_threads` threads (default: every core).

    Paddle's eager mode runs on one thread unless told otherwise; Paddle 3.3 has no public
    `paddle.set_num_threads`, so this sets the internal one and OMP_NUM_THREADS for child processes.
    """
    n = int(num_threads or os.cpu_count() or 1)
    os.environ.setdefault("OMP_NUM_THREADS", str(n))
    paddle.base.core.set_num_threads(n)
    return n


def select_device(device="auto"):
    """'auto' picks the GPU when this Paddle build has one, else the CPU; returns the name set."""
    if device == "auto":
        device = "gpu" if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0 else "cpu"
    paddle.set_device(device)
    if device == "cpu":
        set_cpu_threads()
    return device
