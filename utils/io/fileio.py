"""Atomic writes: a crash, Ctrl-C or a full disk leaves either the old file (folder) or the new
one where it belongs, never half of one. Every writer of the project goes through these."""
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager


def atomic_write(path, write):
    """Call `write(tmp_path)` to fill a temporary file beside `path`, then rename it onto `path`.
    The temporary name keeps `path`'s extension (np.save and cv2.imwrite go by it)."""
    root, ext = os.path.splitext(path)
    head, tail = os.path.split(os.path.abspath(root))
    tmp = os.path.join(head, f".{tail}.tmp{os.getpid()}{ext}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path, text):
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    atomic_write(path, write)


@contextmanager
def atomic_folder(folder):
    """Yields a temporary folder beside `folder`; on success it replaces `folder` by renames
    (old -> .old, tmp -> folder, remove .old); on error the temporary folder is removed."""
    folder = os.path.normpath(folder)
    tmp, old = folder + ".tmp", folder + ".old"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(folder):
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def new_folder(folder):
    """Yields a temporary folder of its own beside `folder` (a unique name, so writers in several
    processes never share one) and publishes it by one rename when the block succeeds: `folder` then
    holds one writer's complete content. When another writer published first, this writer's copy is
    dropped and theirs kept (the first wins; both wrote the same thing). On error the temporary folder
    is removed and `folder` is left as it was. For caches whose entries never change once written."""
    folder = os.path.normpath(os.path.abspath(folder))
    parent, name = os.path.split(folder)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{name}.tmp", dir=parent)
    try:
        yield tmp
        try:
            os.rename(tmp, folder)   # atomic; fails when a non-empty `folder` already exists
        except OSError:
            if not os.path.isdir(folder):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def discard_folder(folder):
    """Remove `folder` so that no reader meets it half-deleted: renamed away first (a name of its own), then
    deleted. A folder already gone (another process discarded it) is fine."""
    folder = os.path.normpath(os.path.abspath(folder))
    parent, name = os.path.split(folder)
    trash = os.path.join(parent, f".{name}.stale{os.getpid()}_{uuid.uuid4().hex[:8]}")
    try:
        os.rename(folder, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)
