"""Original-layout weights built straight from the spec's key tables (docs/checkpoint_keys/*.tsv),
independent of the project's key mapping."""
import csv
import os

import numpy as np
import paddle

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEYS_DIR = os.path.join(ROOT, "docs", "checkpoint_keys")  # copied from the spec
FILE_ORDER = ("encoder", "depth", "pose_encoder", "pose")  # the golden recipe's draw order


def key_table(name):
    """[(key, shape)] of `<name>.tsv` in row order."""
    with open(os.path.join(KEYS_DIR, f"{name}.tsv")) as f:
        return [(row["key"], tuple(int(n) for n in row["shape"].strip("[]").split(",") if n.strip()))
                for row in csv.DictReader(f, delimiter="\t")]


def draw_state(rng, name):
    """One weights file of the original layout, drawn as the golden README says: every key of the
    table in row order, one draw per key, float64 cast to float32."""
    table = key_table(name)
    keys = {k for k, _ in table}
    state = {}
    for key, shape in table:
        prefix, leaf = key.rsplit(".", 1)
        if len(shape) == 4:  # conv weight [o, i, kh, kw]
            v = rng.normal(0, 1, shape) * np.sqrt(1 / (shape[1] * shape[2] * shape[3]))
        elif len(shape) == 2:  # the unused fc [in, out]
            v = rng.normal(0, 1, shape) * np.sqrt(1 / shape[0])
        elif f"{prefix}._mean" in keys:  # batch norm
            low, high = {"weight": (0.8, 1.2), "_variance": (0.5, 1.5)}.get(leaf, (-0.1, 0.1))
            v = rng.uniform(low, high, shape)
        else:  # convolution bias
            v = rng.uniform(-0.1, 0.1, shape)
        state[key] = np.asarray(v).astype(np.float32)
    return state


def write_original_folder(folder, seed, names=FILE_ORDER):
    """Draw all four files from RandomState(seed) (always all four, in FILE_ORDER, so the stream
    stays aligned) and save those in `names` as `<name>.pdparams` in `folder`; returns the states."""
    rng = np.random.RandomState(seed)
    states = {name: draw_state(rng, name) for name in FILE_ORDER}
    os.makedirs(folder, exist_ok=True)
    for name in names:
        paddle.save(states[name], os.path.join(folder, f"{name}.pdparams"))  # numpy arrays: 4x faster to save
    return states
