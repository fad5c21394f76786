"""training/checkpoint.py's rotation (checkpoint/ and checkpoint_previous/), its manifests
(utils/io/fileio.py) and the choice --resume makes: the newest intact checkpoint, said in one line;
none intact: one line, exit 2, nothing written. Small stand-in files: the format of the files
themselves is tests/test_trainer.py's and tests/test_loop.py's."""
import json
import os

import pytest

import train
from training.checkpoint import DAMAGED, PREVIOUS, ResumeError, choose_checkpoint, save_checkpoint
from utils.io.fileio import MANIFEST, manifest_problem, read_manifest


def save(folder, step, **kwargs):
    """A stand-in checkpoint of `step`: a 'weights' file of 3000 bytes and opt.json."""
    def write(tmp):
        with open(os.path.join(tmp, "encoder.pdparams"), "wb") as f:
            f.write(bytes([step % 256]) * 3000)
        with open(os.path.join(tmp, "opt.json"), "w") as f:
            json.dump({"step": step}, f)
    return save_checkpoint(str(folder), write, {"epoch": 0, "batch_in_epoch": step, "step": step}, **kwargs)


def step_of(folder):
    return read_manifest(str(folder))["step"]


def test_rotation_keeps_the_newest_two(tmp_path):
    ckpt = tmp_path / "checkpoint"
    for step in (1, 2, 3):
        save(ckpt, step)
    assert step_of(ckpt) == 3 and step_of(str(ckpt) + PREVIOUS) == 2
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "checkpoint" + PREVIOUS]
    manifest = read_manifest(str(ckpt))
    assert set(manifest["files"]) == {"encoder.pdparams", "opt.json"}
    assert manifest["files"]["encoder.pdparams"]["bytes"] == 3000


def test_a_write_error_leaves_both_checkpoints(tmp_path):
    ckpt = tmp_path / "checkpoint"
    save(ckpt, 1)
    save(ckpt, 2)

    def full_disk(tmp):
        with open(os.path.join(tmp, "encoder.pdparams"), "wb") as f:
            f.write(b"x" * 100)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        save_checkpoint(str(ckpt), full_disk, {"step": 3})
    assert step_of(ckpt) == 2 and step_of(str(ckpt) + PREVIOUS) == 1
    assert not os.path.exists(str(ckpt) + ".tmp") and manifest_problem(str(ckpt)) is None


@pytest.mark.parametrize("kind, problem", [
    ("truncated", "encoder.pdparams has 1500 bytes, the manifest says 3000"),
    ("deleted", "encoder.pdparams is missing"),
    ("changed", "encoder.pdparams does not match its checksum"),
    ("no manifest", f"no readable {MANIFEST} (half-written, or not written by this project)"),
    ("no folder", "missing"),   # killed between the renames of a rotation
])
def test_a_damaged_checkpoint_falls_back_to_the_previous(tmp_path, kind, problem):
    ckpt = tmp_path / "checkpoint"
    for step in (4, 7):
        save(ckpt, step)
    path = ckpt / "encoder.pdparams"
    data = bytearray(path.read_bytes())
    if kind == "truncated":
        path.write_bytes(data[:1500])
    elif kind == "deleted":
        path.unlink()
    elif kind == "changed":
        data[1000] ^= 1
        path.write_bytes(data)
    elif kind == "no manifest":
        (ckpt / MANIFEST).unlink()
    else:
        os.rename(ckpt, tmp_path / "elsewhere")
    assert choose_checkpoint(str(tmp_path / "checkpoint")) == (str(ckpt) + PREVIOUS, (
        f"{ckpt}: {problem}; resuming from {ckpt}{PREVIOUS} (step 4): "
        + ("the steps after step 4" if kind in ("no manifest", "no folder") else "steps 5-7") + " will be redone"))
    # the first save after resuming from the previous one sets the damaged one aside, keeps the previous
    if kind != "no folder":
        save(ckpt, 5, current_damaged=True)
        assert step_of(ckpt) == 5 and step_of(str(ckpt) + PREVIOUS) == 4 and os.path.isdir(str(ckpt) + DAMAGED)


def test_an_intact_checkpoint_is_chosen_as_it_is(tmp_path):
    save(tmp_path / "checkpoint", 1)
    assert choose_checkpoint(str(tmp_path / "checkpoint")) == (str(tmp_path / "checkpoint"), None)


def test_no_intact_checkpoint_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    ckpt = run / "checkpoint"
    for step in (1, 2):
        save(ckpt, step)
    (ckpt / "opt.json").write_text("{}")
    (run / ("checkpoint" + PREVIOUS) / "encoder.pdparams").unlink()
    before = sorted((p, p.stat().st_size, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as exc:
        train.main(["--resume", str(ckpt)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"train.py: error: --resume {ckpt}: no intact checkpoint: {ckpt}: opt.json has 2 bytes, the "
                   f"manifest says {len(json.dumps({'step': 2}))}; {ckpt}{PREVIOUS}: encoder.pdparams is missing")
    assert sorted((p, p.stat().st_size, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before
    with pytest.raises(ResumeError, match="pass the run's checkpoint folder"):
        choose_checkpoint(str(tmp_path / "weights"))


def test_resume_accepts_a_checkpoint_folder_renamed_away_mid_rotation(tmp_path, capsys):
    """Killed between a rotation's renames, a run has checkpoint_previous/ (and checkpoint.tmp/) but
    no checkpoint/: --resume .../checkpoint passes the option check; a wrong folder does not."""
    import options
    save(tmp_path / "checkpoint", 1)
    os.rename(tmp_path / "checkpoint", str(tmp_path / "checkpoint") + PREVIOUS)
    assert options.parse("train", ["--resume", str(tmp_path / "checkpoint")]).resume == str(tmp_path / "checkpoint")
    with pytest.raises(SystemExit):
        options.parse("train", ["--resume", str(tmp_path / "chekpoint")])
    assert "no such folder" in capsys.readouterr().err
