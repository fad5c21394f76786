"""The resumable checkpoint of a run, <log_dir>/<model_name>/checkpoint/:

    <part>.pdparams, opt.json   a weights folder (networks' format, readable by every script)
    optimizer.pdopt             Adam's state keyed by '<file>/<parameter path>' (rename_prefixes)
    trainer_state.pkl           counters, best score, LR schedule, loss scaler and the RNG states
    manifest.json               size and CRC-32 of each file, and the checkpoint's epoch, batch and step

The newest two are kept: checkpoint/ and checkpoint_previous/. A new one is written whole into
checkpoint.tmp/ (manifest last) and rotated in by renames, so a kill at any moment leaves at least
one checkpoint whose manifest checks out; choose_checkpoint picks the newest such."""
import os
import pickle
import random
import shutil

import numpy as np
import paddle

from utils.io.fileio import fsync_dir, fsync_folder, manifest_problem, read_manifest, write_manifest

CHECKPOINT_FILES = ("optimizer.pdopt", "trainer_state.pkl", "opt.json")
PREVIOUS, DAMAGED = "_previous", "_damaged"   # suffixes of the folders beside <run>/checkpoint


class ResumeError(ValueError):
    """A folder that is not a checkpoint, or no intact one; the message (one line) says why."""


def rename_prefixes(state, names):
    """Keys '<old><suffix>' of `state` -> '<names[old]><suffix>' (accumulators are named
    '<parameter name>_moment1_0' and so on); other keys unchanged."""
    by_length = sorted(names, key=len, reverse=True)
    out = {}
    for key, value in state.items():
        old = next((n for n in by_length if key.startswith(n + "_")), None)
        out[names[old] + key[len(old):] if old else key] = value
    return out


def optimizer_state(optimizer, layers, state=None):
    """Get (or set, given `state`) the optimizer's state keyed by '<file>/<parameter path>' (file:
    the weights file holding the parameter, e.g. 'encoder'; `layers` maps file -> layer, as
    networks.weight_files) instead of Paddle's process-global parameter names, which differ between
    runs that build networks in another order or number."""
    names = {p.name: f"{name}/{k}" for name, layer in layers.items() for k, p in layer.named_parameters()}
    if state is None:
        return rename_prefixes(optimizer.state_dict(), names)
    optimizer.set_state_dict(rename_prefixes(state, {v: k for k, v in names.items()}))


def rng_state():
    """The global random states: Paddle's (weights, training noise), Python's and numpy's."""
    return {"python": random.getstate(), "numpy": np.random.get_state(), "paddle": list(paddle.get_rng_state())}


def set_rng_state(state):
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    paddle.set_rng_state(state["paddle"])


def trainer_state(epoch, batch_in_epoch, step, best, lr_scheduler, scaler=None):
    """What --resume restores besides weights and optimizer, with the global RNG states."""
    return {"epoch": epoch, "batch_in_epoch": batch_in_epoch, "step": step, "best": best,
            "lr_scheduler": lr_scheduler.state_dict(), "rng": rng_state(),
            "scaler": scaler.state_dict() if scaler else None}


def write_state(folder, optimizer, layers, state):
    """optimizer.pdopt (optimizer_state of `layers`) and trainer_state.pkl (`state`) into `folder`."""
    paddle.save(optimizer_state(optimizer, layers), os.path.join(folder, "optimizer.pdopt"))
    with open(os.path.join(folder, "trainer_state.pkl"), "wb") as f:
        pickle.dump(state, f)


def restore_state(folder, optimizer, layers, lr_scheduler, scaler=None):
    """The inverse of write_state: restore optimizer, schedule, scaler and the RNG states; returns
    trainer_state's dict (for the counters and the best score)."""
    optimizer_state(optimizer, layers, paddle.load(os.path.join(folder, "optimizer.pdopt")))
    with open(os.path.join(folder, "trainer_state.pkl"), "rb") as f:
        state = pickle.load(f)
    lr_scheduler.set_state_dict(state["lr_scheduler"])
    set_rng_state(state["rng"])
    if scaler and state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    return state


def missing_file(folder, names=CHECKPOINT_FILES):
    """ResumeError naming the first of `names` that `folder` lacks (none: returns None)."""
    for name in names:
        if not os.path.isfile(os.path.join(folder, name)):
            raise ResumeError(f"--resume {folder}: no {name}; pass the run's checkpoint folder "
                              f"(<log_dir>/<model_name>/checkpoint)")


def state_bytes(layers, optimizer=None):
    """Bytes of the tensors of `layers` (file -> layer) and of the optimizer's state: about what a
    weights folder (no optimizer) or a checkpoint takes on disk."""
    tensors = [t for layer in layers.values() for t in layer.state_dict().values()]
    if optimizer is not None:
        tensors += [t for t in optimizer.state_dict().values() if isinstance(t, paddle.Tensor)]
    return sum(t.size * t.element_size() for t in tensors)


def save_checkpoint(folder, write, info, current_damaged=False):
    """Write a checkpoint: `write(tmp)` fills <folder>.tmp, write_manifest adds its manifest (with
    `info`: epoch, batch_in_epoch, step), then renames rotate it in: the current <folder>, flushed
    to the disk first, becomes <folder>_previous (the older one is removed) and the new one <folder>.
    current_damaged: the current <folder> failed its check at resume (the run resumed from
    <folder>_previous): it goes to <folder>_damaged instead, and <folder>_previous stays.
    An error (a full disk) removes the temporary folder and leaves both checkpoints as they were."""
    folder = os.path.normpath(folder)
    tmp, previous = folder + ".tmp", folder + PREVIOUS
    shutil.rmtree(tmp, ignore_errors=True)   # left by a run killed while saving
    try:
        os.makedirs(tmp)
        write(tmp)
        write_manifest(tmp, info)
        if os.path.isdir(folder):
            if current_damaged:
                shutil.rmtree(folder + DAMAGED, ignore_errors=True)
                os.replace(folder, folder + DAMAGED)
            else:
                fsync_folder(folder)   # on the disk before the older checkpoint goes
                shutil.rmtree(previous, ignore_errors=True)
                os.replace(folder, previous)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    fsync_dir(os.path.dirname(folder) or ".")
    return folder


def choose_checkpoint(folder):
    """(folder to resume from, note): `folder` when its manifest checks out (note None), else
    <folder>_previous when that one does, the note (one line) saying what is wrong with `folder`
    and which steps will be redone. ResumeError (one line) when neither is intact."""
    folder = os.path.normpath(folder)
    problem = manifest_problem(folder)
    if problem is None:
        return folder, None
    previous = folder + PREVIOUS
    previous_problem = manifest_problem(previous)
    if previous_problem is not None:
        hint = "" if os.path.isdir(previous) else \
            " (pass the run's checkpoint folder, <log_dir>/<model_name>/checkpoint)"
        raise ResumeError(f"--resume {folder}: no intact checkpoint: {folder}: {problem}; {previous}: "
                          f"{previous_problem}{hint}")
    step = read_manifest(previous).get("step", 0)
    newer = (read_manifest(folder) or {}).get("step")
    if isinstance(newer, int) and newer > step:
        redone = f"step {newer}" if newer == step + 1 else f"steps {step + 1}-{newer}"
    else:
        redone = f"the steps after step {step}"
    return previous, f"{folder}: {problem}; resuming from {previous} (step {step}): {redone} will be redone"
