"""A local Ray for one test module or benchmark, shut down with every process it started (tests/test_serve.py,
tests/test_ray_batch.py, bench/serve.py)."""
import socket

import psutil


def free_port():
    """A TCP port nobody on 127.0.0.1 listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shutdown(timeout=30.0):
    """serve.shutdown and ray.shutdown, then wait up to `timeout` s for every process this one started
    (Ray's GCS, raylet, workers, replicas); returns the command lines of those still alive after it."""
    import ray
    from ray import serve

    started = psutil.Process().children(recursive=True)
    if ray.is_initialized():
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
    _, alive = psutil.wait_procs(started, timeout=timeout)
    left = []
    for p in alive:
        try:
            left.append(" ".join(p.cmdline())[:120])
        except psutil.NoSuchProcess:
            pass
    return left
