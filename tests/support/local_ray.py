"""A local Ray for one test module or benchmark, shut down with every process it started (tests/test_serve.py,
tests/test_ray_batch.py, bench/serve.py)."""
import socket

import psutil


def free_port():
    """A TCP port nobody on 127.0.0.1 listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children():
    """The pids of this process's children and their children, now: taken before Ray starts, they are the
    processes shutdown() leaves alone (a multiprocessing resource tracker of an earlier test, say)."""
    return {p.pid for p in psutil.Process().children(recursive=True)}


def shutdown(timeout=30.0, before=frozenset()):
    """serve.shutdown and ray.shutdown, then wait up to `timeout` s for every process this one started since
    `before` (children() then: Ray's GCS, raylet, workers, replicas); returns the command lines of those still
    alive after it."""
    import ray
    from ray import serve

    started = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
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
