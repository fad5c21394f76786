"""Tests must leave the checkout as they found it: a snapshot of `git status` (with each listed file's size
and modification time) at the start of the session, compared at its end; a session that changed the
checkout fails and names the paths. Hooks of tests/conftest.py (which imports them), for the rootdir's
checkout; nothing is checked outside a git checkout.

Tracked files (modified or not) and untracked ones are compared file by file; ignored paths (outputs/,
logs/, ...) by what `git status --ignored` lists, so a new ignored folder or file shows but a change inside
one that was already there does not. Python's byte-code caches are left out."""
import os
import subprocess

import pytest

CACHES = ("__pycache__/", ".pyc", ".pytest_cache/")


def _status(root, *flags):
    """{path: status code} of `git status --porcelain` in root, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "status", "--porcelain=v1", "-z", *flags], cwd=root, capture_output=True,
                             timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    entries, fields = {}, out.stdout.decode("utf-8", "surrogateescape").split("\0")
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        if code[0] in "RC":   # renamed/copied: the source path follows as its own field
            i += 1
        if not any(c in path for c in CACHES):
            entries[path] = code
    return entries


def snapshot(root):
    """What the tests must not change in the checkout at root; None outside a git checkout (or without git)."""
    changed = _status(root, "--untracked-files=all")
    ignored = _status(root, "--ignored", "--untracked-files=normal")
    if changed is None or ignored is None:
        return None
    state = {}
    for path, code in changed.items():
        try:
            st = os.stat(os.path.join(root, path))
            state[path] = (code, st.st_size, st.st_mtime_ns)
        except OSError:
            state[path] = (code, None, None)
    state.update({path: (code, None, None) for path, code in ignored.items() if code == "!!"})
    return state


def differences(before, after):
    """Sorted 'path (what happened)' lines for every path whose state differs between two snapshots."""
    lines = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        if old is None:
            what = "ignored path appeared" if new[0] == "!!" else "appeared" if new[0] == "??" else "changed"
        elif new is None:
            what = "restored or removed"
        else:
            what = "changed again" if old[0] == new[0] else f"status {old[0]!r} -> {new[0]!r}"
        lines.append(f"{path} ({what})")
    return lines


def pytest_sessionstart(session):
    session.config.checkout_before = snapshot(str(session.config.rootpath))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    before = getattr(session.config, "checkout_before", None)
    after = snapshot(str(session.config.rootpath)) if before is not None else None
    session.config.checkout_changes = differences(before, after) if after is not None else []
    if session.config.checkout_changes and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config):
    changes = getattr(config, "checkout_changes", [])
    if changes:
        terminalreporter.section("tests changed the checkout", sep="=", red=True)
        terminalreporter.write_line("tests must write only under pytest's tmp paths (tmp_path, tmp_path_factory); "
                                    "these paths changed during the session (or were edited meanwhile):")
        for line in changes:
            terminalreporter.write_line(f"  {line}")
