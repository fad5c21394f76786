"""A run folder, <log_dir>/<model_name>/: one train.py at a time (a lock file naming its process),
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


def process_identity(pid):
    """'<start time in clock ticks since boot> <boot id>' of a live process, from /proc: with its pid
    it names one process (a pid is reused, this pair is not); None where /proc does not say."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        start = int(stat[stat.rindex(")") + 2:].split()[19])   # field 22, counted after the command
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f"{start} {f.read().strip()}"
    except (OSError, ValueError, IndexError):
        return None


def command_line(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


class RunLock:
    """<folder>/train.lock, created exclusively, holding the owner's pid, its process identity
    (process_identity) and command line. A lock is taken over when its process is gone or its pid
    now names another process (pids are reused: a killed run's pid may belong to anything later),
    so it never blocks the next run; release() removes our own."""

    def __init__(self, folder):
        self.path = os.path.join(folder, LOCK_NAME)
        self.held = False

    def acquire(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pid, identity = self.owner()
                if pid is not None and holder_alive(pid, identity):
                    raise RunFolderBusy(
                        f"{os.path.dirname(self.path)} is in use by a running train.py (pid {pid}): wait for it "
                        f"to end, stop it, or choose another --model_name or --log_dir") from None
                try:  # stale: its process is gone
                    os.remove(self.path)
                except FileNotFoundError:
                    pass
                continue
            pid = os.getpid()
            with os.fdopen(fd, "w") as f:
                f.write(f"{pid}\n{process_identity(pid) or ''}\n{command_line(pid)}\n")
            self.held = True
            return self
        raise RunFolderBusy(f"could not take {self.path}: another run is starting in the same folder")

    def owner(self):
        """(pid, process identity or None) written in the lock file; (None, None) if unreadable."""
        try:
            with open(self.path) as f:
                lines = f.read().splitlines()
            return int(lines[0]), (lines[1].strip() if len(lines) > 1 else "") or None
        except (OSError, ValueError, IndexError):
            return None, None

    def release(self):
        if self.held and self.owner()[0] == os.getpid():
            os.remove(self.path)
        self.held = False


def holder_alive(pid, identity):
    """Whether the process that wrote a lock still runs: its pid is alive and names the same
    process (same identity; a lock without one, of an earlier version: a command line running a
    train script). Without /proc a live pid counts as the holder."""
    if not pid_alive(pid):
        return False
    now = process_identity(pid)
    if now is None:
        return True
    return now == identity if identity else "train" in command_line(pid)


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
