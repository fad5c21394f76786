"""Atomic writes: a crash, Ctrl-C or a full disk leaves either the old file (folder) or the new
one where it belongs, never half of one. Every writer of the project goes through these. Manifests
(size and checksum of each file of a folder) tell a whole folder from a damaged one."""
import json
import os
import shutil
import tempfile
import uuid
import zlib
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


# ---------------------------------------------------------------------------------------------
# Manifests: a folder that records the size and checksum of its files, so that a reader can tell a
# complete folder from one damaged after it was written (a truncated copy, a lost write).

MANIFEST = "manifest.json"


def file_crc32(path, chunk=1 << 22):
    """CRC-32 of a file's bytes (zlib's; detects damage, not tampering)."""
    crc = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                return crc
            crc = zlib.crc32(block, crc)


def write_manifest(folder, info=None):
    """<folder>/manifest.json: {"files": {name: {"bytes", "crc32"}} of every other file in `folder`
    (not recursive), plus the keys of `info`}. Write it last: a manifest that checks out means
    every file the folder had when it was written is there, whole."""
    files = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name != MANIFEST and os.path.isfile(path):
            files[name] = {"bytes": os.path.getsize(path), "crc32": f"{file_crc32(path):08x}"}
    atomic_write_text(os.path.join(folder, MANIFEST), json.dumps(dict(info or {}, files=files), indent=1))


def read_manifest(folder):
    """<folder>/manifest.json as a dict, or None when it is missing or unreadable."""
    try:
        with open(os.path.join(folder, MANIFEST)) as f:
            manifest = json.load(f)
        return manifest if isinstance(manifest.get("files"), dict) else None
    except (OSError, ValueError, AttributeError):
        return None


def manifest_problem(folder):
    """None when every file of the folder's manifest is there with its size and CRC-32; else what
    is wrong, in a few words (the first problem found)."""
    if not os.path.isdir(folder):
        return "missing"
    manifest = read_manifest(folder)
    if manifest is None:
        return f"no readable {MANIFEST} (half-written, or not written by this project)"
    for name, entry in manifest["files"].items():
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            return f"{name} is missing"
        size = os.path.getsize(path)
        if size != entry.get("bytes"):
            return f"{name} has {size} bytes, the manifest says {entry.get('bytes')}"
        if f"{file_crc32(path):08x}" != entry.get("crc32"):
            return f"{name} does not match its checksum"
    return None


def fsync_folder(folder):
    """Flush the folder's files and its own entry to the disk (after a power cut they are there)."""
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    fsync_dir(folder)


def fsync_dir(folder):
    """Flush a folder's entries (renames and removals in it); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
