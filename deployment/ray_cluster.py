"""Joining or starting Ray for serve.py and predict.py --engine ray (imports Ray when called).

connect(address) keeps the Ray this process is already connected to; else joins the cluster at
`address` (or $RAY_ADDRESS), shipping the project's code with the job (Ray's runtime_env working_dir;
.gitignore'd folders such as data/ and weights/ stay behind, so weights, photos and outputs are given
as absolute paths that every node reads, e.g. on shared storage); else starts a local Ray of this
machine's cores, whose workers import the project from this checkout.
"""
import os
import signal
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIP_EXCLUDES = [".git", "tests", "notebooks", "bench", "docs"]   # not needed to predict


def connect(address=None):
    """ray.init for the job; returns True when it started a local Ray (the caller shuts it down). A
    process already connected to Ray (ray.init called before) keeps that connection."""
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    if address and address != "local":
        ray.init(address=address, runtime_env={"working_dir": ROOT, "excludes": SHIP_EXCLUDES},
                 log_to_driver=False)
        return False
    # local workers are started by this process's raylet and inherit its environment
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
    return True


def shutdown(started_here, timeout=20.0):
    """Disconnect from Ray. A Ray this process started is shut down with every process it started: those
    still alive `timeout` s later (a worker whose raylet was killed first, as a signal to the whole
    process group does) are killed. A joined cluster keeps running."""
    import psutil
    import ray

    started = psutil.Process().children(recursive=True) if started_here else []
    ray.shutdown()
    _, alive = psutil.wait_procs(started, timeout=timeout)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


def worker_cpus(requested, workers):
    """CPUs (and Paddle threads) per replica or actor: `requested`, else this machine's cores / workers."""
    return float(requested) if requested else max(1.0, float((os.cpu_count() or 1) // max(1, workers)))


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def interrupt_on_sigterm():
    """Make SIGTERM raise KeyboardInterrupt as Ctrl-C does, so that a killed run's `finally` still shuts
    its Ray down (no stray workers). Returns the previous handler (None off the main thread: unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _interrupt)


def restore_sigterm(previous):
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
