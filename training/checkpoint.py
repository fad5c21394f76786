"""The resumable checkpoint of a run, <log_dir>/<model_name>/checkpoint/:

    <part>.pdparams, opt.json   a weights folder (networks' format, readable by every script)
    optimizer.pdopt             Adam's state keyed by '<file>/<parameter path>' (rename_prefixes)
    trainer_state.pkl           counters, best score, LR schedule, loss scaler and the RNG states

Written as a whole with utils.io.fileio.atomic_folder: a crash leaves the previous checkpoint."""
import os
import pickle
import random

import numpy as np
import paddle

import networks
from utils.io.fileio import atomic_folder

CHECKPOINT_FILES = ("optimizer.pdopt", "trainer_state.pkl", "opt.json")


class ResumeError(ValueError):
    """A folder that is not a checkpoint; the message says which file is missing."""


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


def trainer_state(epoch, batch_in_epoch, step, best, lr_scheduler, scaler=None):
    """What --resume restores besides weights and optimizer, with the global RNG states
    (Paddle's draws weights and dropout-like noise; Python's and numpy's for any library use)."""
    return {"epoch": epoch, "batch_in_epoch": batch_in_epoch, "step": step, "best": best,
            "lr_scheduler": lr_scheduler.state_dict(),
            "rng": {"python": random.getstate(), "numpy": np.random.get_state(),
                    "paddle": list(paddle.get_rng_state())},
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
    random.setstate(state["rng"]["python"])
    np.random.set_state(state["rng"]["numpy"])
    paddle.set_rng_state(state["rng"]["paddle"])
    if scaler and state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    return state


def missing_file(folder, names=CHECKPOINT_FILES):
    """ResumeError naming the first of `names` that `folder` lacks (none: returns None)."""
    for name in names:
        if not os.path.isfile(os.path.join(folder, name)):
            raise ResumeError(f"--resume {folder}: no {name}; pass the run's checkpoint folder "
                              f"(<log_dir>/<model_name>/checkpoint)")


def save_checkpoint(folder, nets, opt, optimizer, state):
    """Write the checkpoint folder: the weights folder of `nets` with `opt` (a JSON-able dict),
    the optimizer's state and `state` (trainer_state's dict)."""
    with atomic_folder(folder) as tmp:
        networks.save_weights_folder(tmp, nets, opt)
        write_state(tmp, optimizer, networks.weight_files(nets), state)
    return folder


def load_checkpoint(folder, nets, optimizer, lr_scheduler, scaler=None):
    """Restore weights, optimizer, schedule, scaler and RNG states; returns trainer_state's dict
    (for the counters and the best score). ResumeError / networks.CheckpointError on bad folders."""
    missing_file(folder)
    networks.load_into(nets, folder)
    return restore_state(folder, optimizer, networks.weight_files(nets), lr_scheduler, scaler)
