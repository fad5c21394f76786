"""Training runs as real processes for the kill tests (tests/test_loop.py): start one, follow its
output and train.log, kill it at a moment, see which processes it left."""
import glob
import os
import shlex
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = 600   # seconds any one wait may take (a loaded machine), then the run is killed and the test fails


def start_time(pid):
    """The process's start (clock ticks since boot), or None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] == "Z" else int(fields[19])


class Run:
    """A script run in its own process (stdout and stderr together in `text`), with the child
    processes (DataLoader workers) it was seen to have."""

    def __init__(self, argv, log=None, file_size_limit=None):
        def limit():
            if file_size_limit:
                import resource
                resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

        self.argv, self.log = argv, log
        self.log_start = os.path.getsize(log) if log and os.path.isfile(log) else 0   # earlier runs' lines
        self.proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, preexec_fn=limit)
        self.chunks, self.children = [], {}
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for chunk in iter(lambda: self.proc.stdout.read1(65536), b""):
            self.chunks.append(chunk.decode(errors="replace"))

    @property
    def text(self):
        return "".join(self.chunks)

    def log_text(self):
        """What this run wrote to its train.log."""
        try:
            with open(self.log) as f:
                f.seek(self.log_start)
                return f.read()
        except OSError:
            return ""

    def note_children(self):
        for path in glob.glob(f"/proc/{self.proc.pid}/task/*/children"):
            try:
                with open(path) as f:
                    pids = [int(p) for p in f.read().split()]
            except OSError:
                continue
            for pid in pids:
                self.children.setdefault(pid, start_time(pid))

    def wait_for(self, condition, what):
        """Poll `condition()` until true (noting children); fail if the run ends or takes too long."""
        end, n = time.monotonic() + TIMEOUT, 0
        while not condition():
            if n % 10 == 0:
                self.note_children()
            n += 1
            if self.proc.poll() is not None:
                raise AssertionError(f"{what}: the run ended first (exit {self.proc.returncode}):\n{self.text[-4000:]}")
            if time.monotonic() > end:
                self.proc.kill()
                raise AssertionError(f"{what}: not within {TIMEOUT} s:\n{self.text[-4000:]}")
            time.sleep(0.01)

    def wait_log(self, line):
        self.wait_for(lambda: line in self.log_text(), f"'{line}' in train.log")

    def kill(self, sig=signal.SIGKILL):
        self.note_children()
        self.proc.send_signal(sig)
        return self.finish()

    def finish(self):
        try:
            code = self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"{self.argv} did not end within {TIMEOUT} s:\n{self.text[-4000:]}")
        self.reader.join(timeout=30)   # a child left behind may hold the pipe open: survivors() says so
        return code

    def survivors(self, grace=3.0):
        """Children noted while it ran that still run (not zombies) `grace` seconds after it ended."""
        end = time.monotonic() + grace
        while True:
            alive = [p for p, t in self.children.items() if t is not None and start_time(p) == t]
            if not alive or time.monotonic() > end:
                return alive
            time.sleep(0.05)

    def resume_command(self):
        """The command after the run's last 'continue with:', as argv for this Python."""
        line = self.text.rsplit("continue with: ", 1)[1].splitlines()[0]
        words = shlex.split(line)
        assert words[0] == "python", line
        return words[1:]
