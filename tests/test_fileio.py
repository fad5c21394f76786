"""utils/io/fileio.py's folders of a cache: writers in several processes publishing one folder at once leave
one writer's complete folder and nothing else; a failing writer leaves nothing; a discarded folder is gone."""
import multiprocessing
import os

import pytest

from utils.io.fileio import discard_folder, new_folder

FILES = ("a.bin", "b.bin", "c.bin")


def write_slowly(folder, tag, barrier):
    """One writer: every file holds its tag. Both writers have written everything before either checks its
    folder (still its own: holding its tag only) and publishes it."""
    with new_folder(folder) as tmp:
        for name in FILES:
            with open(os.path.join(tmp, name), "w") as f:
                f.write(tag * 1000)
        barrier.wait(timeout=60)
        for name in FILES:
            with open(os.path.join(tmp, name)) as f:
                assert f.read() == tag * 1000, "another writer wrote into this writer's folder"


def test_concurrent_writers_leave_one_complete_folder(tmp_path):
    target = tmp_path / "entry"
    context = multiprocessing.get_context("spawn")   # no fork of a process holding Paddle's threads
    barrier = context.Barrier(2)
    writers = [context.Process(target=write_slowly, args=(str(target), tag, barrier)) for tag in "xy"]
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=120)
    assert [w.exitcode for w in writers] == [0, 0]
    assert sorted(os.listdir(tmp_path)) == ["entry"]                  # no temporary folder left
    contents = {(target / name).read_text() for name in FILES}
    assert sorted(os.listdir(target)) == list(FILES) and contents in ({"x" * 1000}, {"y" * 1000})   # one writer's


def test_failing_writer_leaves_nothing_and_keeps_an_existing_folder(tmp_path):
    target = tmp_path / "entry"
    with pytest.raises(RuntimeError):
        with new_folder(target) as tmp:
            open(os.path.join(tmp, "half"), "w").close()
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == []
    with new_folder(target) as tmp:
        open(os.path.join(tmp, "first"), "w").close()
    with new_folder(target) as tmp:   # published second: dropped, the first stays
        open(os.path.join(tmp, "second"), "w").close()
    assert os.listdir(target) == ["first"] and os.listdir(tmp_path) == ["entry"]
    discard_folder(target)
    discard_folder(target)            # already gone: fine
    assert os.listdir(tmp_path) == []
