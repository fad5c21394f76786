"""training/run_folder.py's lock: taken over when its process is gone or its pid now names another
process (pids are reused), refused while the process that wrote it runs."""
import os
import subprocess
import sys
import time

import pytest

from training.run_folder import LOCK_NAME, RunFolderBusy, RunLock, command_line, process_identity


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "600"])
    yield proc
    proc.kill()
    proc.wait()


def write_lock(folder, *lines):
    (folder / LOCK_NAME).write_text("".join(f"{line}\n" for line in lines))


def test_identity_names_one_process(sleeper):
    mine, other = process_identity(os.getpid()), process_identity(sleeper.pid)
    assert mine and other and mine != other
    assert mine.split()[1] == other.split()[1]   # same boot, different start
    assert process_identity(sleeper.pid) == other


def test_lock_of_a_live_process_with_a_reused_pid_is_taken_over(tmp_path, sleeper):
    """The lock of a killed run whose pid now belongs to `sleep` (another start time)."""
    boot = process_identity(os.getpid()).split()[1]
    write_lock(tmp_path, sleeper.pid, f"1 {boot}", "python train.py")
    lock = RunLock(str(tmp_path)).acquire()
    lines = (tmp_path / LOCK_NAME).read_text().splitlines()
    assert lines[:2] == [str(os.getpid()), process_identity(os.getpid())]
    lock.release()
    assert not (tmp_path / LOCK_NAME).exists() and sleeper.poll() is None


def test_lock_without_identity_is_taken_over_unless_a_train_script_holds_it(tmp_path, sleeper):
    """A lock holding only a pid (an earlier version's): a live process that is not a train script
    does not hold it."""
    write_lock(tmp_path, sleeper.pid)
    RunLock(str(tmp_path)).acquire().release()
    train_like = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "train.py"])
    try:
        while "train.py" not in command_line(train_like.pid):   # until its exec is done
            time.sleep(0.01)
        write_lock(tmp_path, train_like.pid)
        with pytest.raises(RunFolderBusy, match=f"pid {train_like.pid}"):
            RunLock(str(tmp_path)).acquire()
    finally:
        train_like.kill()
        train_like.wait()


def test_lock_of_the_running_holder_is_refused(tmp_path, sleeper):
    write_lock(tmp_path, sleeper.pid, process_identity(sleeper.pid), "python train.py")
    with pytest.raises(RunFolderBusy) as err:
        RunLock(str(tmp_path)).acquire()
    assert f"in use by a running train.py (pid {sleeper.pid})" in str(err.value) and "\n" not in str(err.value)
    assert (tmp_path / LOCK_NAME).read_text().splitlines()[0] == str(sleeper.pid)   # untouched
