"""A run folder, <log_dir>/<model_name>/: one train.py at a time (a lock file holding its pid),
its plain log, and how much disk it takes."""
import logging
import os

LOCK_NAME = "train.lock"


def run_log(folder, name, write=True):
    """A logger of its own (not propagated to the root's handlers) writing timestamped lines to
    <folder>/train.log; write=False (the non-main processes of a distributed run) writes nothing."""
    log = logging.getLogger(name)
    log.setLevel(logging.INFO)
    log.propagate = False
    if write:
        handler = logging.FileHandler(os.path.join(folder, "train.log"))
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
    return log


class RunFolderBusy(RuntimeError):
    """Another live process trains in this run folder."""


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """<folder>/train.lock holding the owner's pid, created exclusively. A lock whose pid is dead
    (a killed run) is taken over, so it never blocks the next run; release() removes our own."""

    def __init__(self, folder):
        self.path = os.path.join(folder, LOCK_NAME)
        self.held = False

    def acquire(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                owner = self.owner()
                if owner is not None and pid_alive(owner):
                    raise RunFolderBusy(
                        f"{os.path.dirname(self.path)} is in use by a running train.py (pid {owner}): wait for it "
                        f"to end, stop it, or choose another --model_name or --log_dir") from None
                try:  # stale: its process is gone
                    os.remove(self.path)
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()}\n")
            self.held = True
            return self
        raise RunFolderBusy(f"could not take {self.path}: another run is starting in the same folder")

    def owner(self):
        """The pid written in the lock file, or None if it cannot be read."""
        try:
            with open(self.path) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def release(self):
        if self.held and self.owner() == os.getpid():
            os.remove(self.path)
        self.held = False


def disk_usage(folder):
    """Bytes of the files under `folder`."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def human_size(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
