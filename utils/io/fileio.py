"""Atomic writes: a crash, Ctrl-C or a full disk leaves either the old file (folder) or the new
one where it belongs, never half of one. Every writer of the project goes through these."""
import os
import shutil
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
