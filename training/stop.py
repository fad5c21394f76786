"""Stopping a run cleanly. SIGINT (Ctrl-C) and SIGTERM (schedulers, `docker stop`, notebook
restarts) ask the training loop to stop at the next step boundary, where it writes its checkpoint
and stops the loader's workers; a second signal stops at once, without one. Paddle's import puts
a C handler on SIGTERM that prints a FatalError dump and aborts: StopSignals replaces it while
training runs. DataLoader workers ignore both signals (a Ctrl-C reaches the terminal's whole
process group; the main process stops them) and, on Linux, die with their parent, so a run killed
with SIGKILL leaves no worker behind either."""
import ctypes
import signal
import sys
import threading
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
PR_SET_PDEATHSIG = 1   # prctl option: the signal a process gets when its parent dies


class StopRequested(Exception):
    """Raised by the training loop at a step boundary after a stop signal."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    """While entered (in the main thread), SIGINT and SIGTERM set `signum`; a second one raises
    KeyboardInterrupt. The previous handlers come back on the outermost exit (a script enters it
    around the trainer's set-up too, the trainer around its loop)."""

    def __init__(self):
        self.signum = None
        self.saved = {}
        self.depth = 0

    def __enter__(self):
        self.depth += 1
        if self.depth == 1 and threading.current_thread() is threading.main_thread():
            for s in STOP_SIGNALS:
                self.saved[s] = signal.signal(s, self.handle)
        return self

    def __exit__(self, *exc):
        self.depth -= 1
        if self.depth == 0:
            for s, handler in self.saved.items():
                signal.signal(s, handler if handler is not None else signal.SIG_DFL)
            self.saved = {}

    def handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum


def worker_init(worker_id):
    """worker_init_fn of the training DataLoaders: ignore the stop signals, die with the parent."""
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
        except (OSError, AttributeError):
            pass   # Paddle's own watchdog still ends the worker within seconds


@contextmanager
def loader_batches(loader):
    """An iterator over `loader` whose worker processes are stopped on leaving, also on an
    exception (whose traceback would otherwise keep the iterator, and its workers, alive)."""
    batches = iter(loader)
    try:
        yield batches
    finally:
        shutdown = getattr(batches, "_try_shutdown_all", None)   # Paddle's loader iterators
        if shutdown is not None:
            shutdown()
