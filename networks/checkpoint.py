"""Weights folders: one loader for the original layout (the earlier Paddle reproduction and
PaddleMono, spec section 9) and for this project's own, an atomic writer, and the converter
back to the original layout."""
import json
import os

import paddle
import paddle.nn as nn
from munch import Munch

from networks.attention import GlobalAttention
from networks.decoder import NUM_CH_DEC, Conv3x3, DepthDecoder, PoseDecoder
from networks.encoder import NUM_CH_ENC, MultiLevelEncoder

MODEL_NAMES = ("encoder", "depth", "pose_encoder", "pose")
DEFAULT_OPT = {"height": 192, "width": 640, "num_layers": 18, "scales": [0, 1, 2, 3],
               "min_depth": 0.1, "max_depth": 100.0}

_FUSE_NAMES = [("64_1", "64_2"), ("64_3", "64_4"), ("128_1", "128_2"), ("256_1", "256_2"), ("512_1", "512_2")]
_ATTENTION_NAMES = ["anet_64_1", "anet_64_2", "anet_128", "anet_256", "anet_512"]
_UNUSED_DECODER_BLOCKS = [7 + 3 * (4 - i) for i in range(5)]  # upconv(i, 1): stored, never run


class CheckpointError(Exception):
    """A weights folder or file that cannot be loaded; the message names the file and keys."""


def _encoder_prefixes(levels=range(5)):
    pairs = [("backbone.", "encoder.")]
    for k in levels:
        for j in range(2):
            pairs += [(f"side_branches.{k}.{j}.conv.", f"convs{k + 1}{j}."),
                      (f"side_branches.{k}.{j}.bn.", f"bn{k + 1}{j}."),
                      (f"fuses.{k}.{j}.conv.", f"convs{_FUSE_NAMES[k][j]}."),
                      (f"fuses.{k}.{j}.bn.", f"bn{_FUSE_NAMES[k][j]}.")]
        pairs.append((f"attentions.{k}.", f"{_ATTENTION_NAMES[k]}."))
    return pairs


PREFIXES = {
    "encoder": _encoder_prefixes(),
    "pose_encoder": _encoder_prefixes(),
    "depth": [(f"grid_attentions.{i}.", f"decoder.{5 - i}.") for i in range(5)]
    + [(f"upconv_in.{i}.", f"decoder.{6 + 3 * (4 - i)}.") for i in range(5)]
    + [(f"upconv_out.{i}.", f"decoder.{8 + 3 * (4 - i)}.") for i in range(5)]
    + [(f"dispconvs.{s}.", f"decoder.{21 + s}.") for s in range(4)],
    "pose": [("squeeze.", "net.0."), ("pose_convs.0.", "net.1."), ("pose_convs.1.", "net.2."),
             ("pose_out.", "net.3.")],
}

# Original-layout keys the forward pass never reads (spec section 9): accepted silently.
IGNORED = {
    "encoder": ["encoder.fc."],
    "pose_encoder": ["encoder.fc."] + [b for _, b in _encoder_prefixes(levels=range(4))[1:]],
    "depth": [f"decoder.{i}." for i in _UNUSED_DECODER_BLOCKS],
    "pose": [],
}


def _rename(key, pairs):
    for src, dst in pairs:
        if key.startswith(src):
            return dst + key[len(src):]
    return None


def to_original_keys(name, state):
    """This project's key names -> the original layout's."""
    return {_rename(k, PREFIXES[name]): v for k, v in state.items()}


def from_original_keys(name, state):
    """Original-layout keys -> this project's; keys with no counterpart keep their name."""
    back = [(b, a) for a, b in PREFIXES[name]]
    return {(_rename(k, back) or k): v for k, v in state.items()}


def build_model(name, num_layers=18, scales=(0, 1, 2, 3), batch_coupled_filter=False):
    if name == "encoder":
        return MultiLevelEncoder(num_layers, num_input_images=1)
    if name == "pose_encoder":
        return MultiLevelEncoder(num_layers, num_input_images=2, last_only=True)
    if name == "depth":
        return DepthDecoder(NUM_CH_ENC, scales, batch_coupled_filter)
    if name == "pose":
        return PoseDecoder(NUM_CH_ENC)
    raise ValueError(f"unknown model name {name!r}; expected one of {MODEL_NAMES}")


def build_models(num_layers=18, scales=(0, 1, 2, 3), use_pose=True, batch_coupled_filter=False):
    """Fresh models {"encoder", "depth"[, "pose_encoder", "pose"]}, in train mode."""
    names = MODEL_NAMES if use_pose else MODEL_NAMES[:2]
    return {n: build_model(n, num_layers, scales, batch_coupled_filter) for n in names}


def read_opt(folder):
    """The options saved with a weights folder (opt.json) over the defaults, as a Munch."""
    opt = Munch(DEFAULT_OPT)
    path = os.path.join(folder, "opt.json")
    if os.path.isfile(path):
        try:
            with open(path) as f:
                opt.update(json.load(f))
        except (OSError, ValueError) as e:
            raise CheckpointError(f"{path} is not valid JSON ({e}); fix or delete it") from None
    return opt


def _short(keys, n=4):
    keys = sorted(keys)
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")


def load_state(model, name, path):
    """Load a .pdparams file of either layout into `model`; anything missing, mismatched or
    unrecognised raises CheckpointError naming the file and the keys."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path} not found: a weights folder needs {name}.pdparams")
    try:
        state = paddle.load(path)
    except Exception as e:  # paddle raises many kinds for a corrupt file
        raise CheckpointError(f"{path} could not be read as Paddle weights ({type(e).__name__})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a state dict")
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    original = not set(state) & set(expected)
    if original:
        state = {k: v for k, v in state.items() if not any(k.startswith(p) for p in IGNORED[name])}
        state = from_original_keys(name, state)
    # name keys as the file names them
    shown = (lambda k: _rename(k, PREFIXES[name]) or k) if original else (lambda k: k)  # noqa: E731
    missing = {shown(k) for k in set(expected) - set(state)}
    unexpected = {shown(k) for k in set(state) - set(expected)}
    mismatched = [f"{shown(k)} {list(v.shape)} vs {list(expected[k])}" for k, v in state.items()
                  if k in expected and tuple(v.shape) != expected[k]]
    problems = []
    if missing:
        problems.append(f"missing {_short(missing)}")
    if unexpected:
        problems.append(f"unexpected {_short(unexpected)}")
    if mismatched:
        problems.append(f"wrong shape {_short(mismatched, 2)}")
    if problems:
        raise CheckpointError(f"{path} does not fit the {name} network: " + "; ".join(problems))
    model.set_state_dict(state)


def load_models(folder, names=("encoder", "depth"), batch_coupled_filter=False):
    """Build the named networks from a weights folder (either layout) in eval mode."""
    if not os.path.isdir(folder):
        raise CheckpointError(f"weights folder {folder} does not exist")
    opt = read_opt(folder)
    models = {}
    for name in names:
        model = build_model(name, opt.num_layers, opt.scales, batch_coupled_filter)
        load_state(model, name, os.path.join(folder, f"{name}.pdparams"))
        model.eval()
        models[name] = model
    return models


def _atomic_write(path, write):
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_opt(folder, opt):
    os.makedirs(folder, exist_ok=True)
    data = json.dumps(dict(opt), indent=2, sort_keys=True, default=str)
    _atomic_write(os.path.join(folder, "opt.json"), lambda p: open(p, "w").write(data))


def save_models(folder, models, opt=None, original_layout=False):
    """Write `<name>.pdparams` for each model (and opt.json) atomically: a crash leaves either
    the old file or the new one, never half of one."""
    os.makedirs(folder, exist_ok=True)
    for name, model in models.items():
        state = original_state_dict(name, model) if original_layout else model.state_dict()
        _atomic_write(os.path.join(folder, f"{name}.pdparams"), lambda p, s=state: paddle.save(s, p))
    if opt is not None:
        save_opt(folder, opt)


class _UnusedUpconv(nn.Layer):
    """upconv(i, 1) of the original decoder (Conv3x3, BatchNorm, GlobalAttention): present in its
    checkpoints, never run. Built only to fill those keys with fresh values when converting."""

    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv = Conv3x3(in_ch, out_ch)
        self.bn = nn.BatchNorm2D(out_ch)
        self.attention = GlobalAttention(out_ch)


def original_state_dict(name, model):
    """`model`'s weights in the original layout, with the keys its forward pass never reads
    filled with fresh initial values, so that the earlier code loads the file."""
    state = to_original_keys(name, model.state_dict())
    if name in ("encoder", "pose_encoder"):
        fc = nn.Linear(model.backbone_ch[-1], 1000)
        state.update({f"encoder.fc.{k}": v for k, v in fc.state_dict().items()})
    if name == "pose_encoder":
        full = MultiLevelEncoder(model.num_layers, model.num_input_images)
        for k, v in to_original_keys(name, full.state_dict()).items():
            state.setdefault(k, v)
    if name == "depth":
        for i, idx in zip(range(5), _UNUSED_DECODER_BLOCKS):
            in_ch = NUM_CH_DEC[i] + (model.num_ch_enc[i - 1] if i > 0 else 0)
            for k, v in _UnusedUpconv(in_ch, NUM_CH_DEC[i]).state_dict().items():
                state[f"decoder.{idx}.{k}"] = v
    return state
