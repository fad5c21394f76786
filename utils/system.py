"""Device and thread set-up: one function every script calls before building networks."""
import os

import paddle


class RuntimeSetupError(ValueError):
    """The requested device cannot be used; the message says how to proceed."""


def has_gpu():
    return paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def set_cpu_threads(num_threads=0, default=None):
    """Let Paddle's CPU kernels use `num_threads` threads (0: `default`, else every core); returns the number.

    Paddle's eager mode runs on one thread unless told otherwise; Paddle 3.3 has no public
    `paddle.set_num_threads`, so this sets the internal one and OMP_NUM_THREADS for child processes.
    An explicit count replaces OMP_NUM_THREADS; a default one leaves a value the user exported.
    """
    n = int(num_threads or default or os.cpu_count() or 1)
    if num_threads:
        os.environ["OMP_NUM_THREADS"] = str(n)
    else:
        os.environ.setdefault("OMP_NUM_THREADS", str(n))
    paddle.base.core.set_num_threads(n)
    return n


def setup_runtime(device="auto", num_threads=0, world_size=1):
    """Select the device and the CPU threads; returns the device name set ("cpu" or "gpu:<id>").

    device: "auto" (the GPU when this Paddle build sees one, else the CPU), "cpu" or "gpu";
    num_threads: CPU threads (0: the cores divided among the `world_size` processes of a
    distributed run); unused on a GPU. RuntimeSetupError for "gpu" without one.
    """
    if device == "gpu" and not has_gpu():
        raise RuntimeSetupError("--device gpu but this Paddle build sees no GPU: use --device cpu "
                                "or install paddlepaddle-gpu")
    if device != "cpu" and has_gpu():
        import paddle.distributed as dist
        name = f"gpu:{dist.ParallelEnv().device_id}"
        paddle.set_device(name)
        return name
    paddle.set_device("cpu")
    set_cpu_threads(num_threads, default=max(1, (os.cpu_count() or 1) // max(1, world_size)))
    return "cpu"
