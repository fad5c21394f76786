"""Weights folders (docs/MLDA_NET.md §9): one loader for the original layout (the earlier Paddle
reproduction and PaddleMono) and for this project's own, the writer, and the key mapping between
the two. A folder holds encoder.pdparams + depth.pdparams (DepthNet), pose_encoder.pdparams +
pose.pdparams (PoseNet) and opt.json (the training options)."""
import json
import os

import paddle
import paddle.nn as nn
from munch import Munch

from networks.attention import GlobalAttention
from networks.decoder import NUM_CH_DEC, Conv3x3
from networks.diffusion import HEAD_DEFAULTS, DiffusionHead, RefinedDepthNet
from networks.encoder import MultiLevelEncoder
from networks.model import WEIGHT_FILES, build_net, unset_initialisation, weight_files
from utils.io.fileio import atomic_write, atomic_write_text

FILE_NAMES = tuple(WEIGHT_FILES)  # encoder, depth, pose_encoder, pose
REFINE_FILE = "refine"  # the diffusion head: refine.pdparams + refine.json (its options)
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
    REFINE_FILE: [],  # this project's own: one layout
}

# Original-layout keys the forward pass never reads (docs/MLDA_NET.md §9): accepted silently.
IGNORED = {
    "encoder": ["encoder.fc."],
    "pose_encoder": ["encoder.fc."] + [b for _, b in _encoder_prefixes(levels=range(4))[1:]],
    "depth": [f"decoder.{i}." for i in _UNUSED_DECODER_BLOCKS],
    "pose": [],
    REFINE_FILE: [],
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


def _short(keys, n=4):
    keys = sorted(keys)
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")


def load_file(model, name, path):
    """Load weights file `path`, `name` being encoder, depth, pose_encoder or pose, of either layout
    into `model` (the matching sub-layer, see networks.weight_files); anything missing, mismatched
    or unrecognised raises CheckpointError naming the file and the keys."""
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


def load_weights_folder(folder, parts=("depth",), batch_coupled_filter=False):
    """(opt, nets): the folder's options (opt.json over DEFAULT_OPT, read once) and the networks
    named in `parts` ("depth" -> DepthNet, "pose" -> PoseNet, "refine" -> RefinedDepthNet: the
    diffusion head of refine.pdparams + refine.json on that DepthNet) with its weights, in eval mode.
    Either layout loads; anything missing or not fitting raises CheckpointError."""
    if not os.path.isdir(folder):
        raise CheckpointError(f"weights folder {folder} does not exist")
    opt = read_opt(folder)
    built = [p for p in parts if p != "refine"] + (["depth"] if "refine" in parts and "depth" not in parts else [])
    with unset_initialisation():   # load_into overwrites every parameter (all files of each net)
        nets = {p: build_net(p, opt.num_layers, opt.scales, batch_coupled_filter) for p in built}
    load_into(nets, folder)
    if "refine" in parts:
        nets["refine"] = RefinedDepthNet(nets["depth"], load_refine_head(folder))
        if "depth" not in parts:
            del nets["depth"]
    for net in nets.values():
        net.eval()
    return opt, nets


def has_refine_head(folder):
    """True when `folder` holds a diffusion refinement head (refine.pdparams)."""
    return os.path.isfile(os.path.join(folder, REFINE_FILE + ".pdparams"))


def load_refine_head(folder):
    """The DiffusionHead of refine.json (its options) + refine.pdparams; CheckpointError if absent."""
    path = os.path.join(folder, REFINE_FILE + ".json")
    if not os.path.isfile(path):
        raise CheckpointError(f"{path} not found: a diffusion head needs refine.json and refine.pdparams "
                              f"(written by train_refine.py)")
    try:
        with open(path) as f:
            config = json.load(f)
        head = DiffusionHead(**{k: v for k, v in config.items() if k in HEAD_DEFAULTS})
    except (OSError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path} is not a valid head configuration ({e}); fix or delete it") from None
    load_file(head, REFINE_FILE, os.path.join(folder, REFINE_FILE + ".pdparams"))
    return head


def save_refine_head(folder, head):
    """Write refine.pdparams and refine.json (the head's options) into weights folder `folder`,
    each atomically."""
    os.makedirs(folder, exist_ok=True)
    state = head.state_dict()
    atomic_write(os.path.join(folder, REFINE_FILE + ".pdparams"), lambda p: paddle.save(state, p))
    atomic_write_text(os.path.join(folder, REFINE_FILE + ".json"), json.dumps(head.config, indent=2, sort_keys=True))


def load_into(nets, folder, files=None):
    """Load the weights files `files` (default: all of `nets`) of `folder` into `nets` in place,
    e.g. to fine-tune or resume; returns the file names loaded."""
    layers = weight_files(nets)
    files = list(layers) if files is None else [f for f in files if f in layers]
    for name in files:
        load_file(layers[name], name, os.path.join(folder, f"{name}.pdparams"))
    return files


def save_weights_folder(folder, nets, opt=None, original_layout=False, files=None):
    """Write `<file>.pdparams` for every sub-layer of `nets` (or only `files`), and opt.json when
    `opt` is given, each file atomically: a crash leaves the old file or the new one, never half
    of one. `original_layout` writes the key names of the original code (docs/MLDA_NET.md §9)."""
    os.makedirs(folder, exist_ok=True)
    for name, layer in weight_files(nets).items():
        if files is not None and name not in files:
            continue
        state = original_state_dict(name, layer) if original_layout else layer.state_dict()
        atomic_write(os.path.join(folder, f"{name}.pdparams"), lambda p, s=state: paddle.save(s, p))
    if opt is not None:
        atomic_write_text(os.path.join(folder, "opt.json"),
                          json.dumps(dict(opt), indent=2, sort_keys=True, default=str))


def convert_folder(src, dst, files=None):
    """Copy the weights files `files` (default: those present) of folder `src`, either layout, to
    `dst` in the original layout, with opt.json; everything is read and checked before anything
    is written. Returns the file names written."""
    if not os.path.isdir(src):
        raise CheckpointError(f"weights folder {src} does not exist")
    files = files or [n for n in FILE_NAMES if os.path.isfile(os.path.join(src, f"{n}.pdparams"))]
    if not files:
        raise CheckpointError(f"{src} holds none of {', '.join(n + '.pdparams' for n in FILE_NAMES)}")
    opt = read_opt(src)
    parts = [p for p in ("depth", "pose") if any(WEIGHT_FILES[f][0] == p for f in files)]
    nets = {p: build_net(p, opt.num_layers, opt.scales) for p in parts}
    load_into(nets, src, files)
    save_weights_folder(dst, nets, opt, original_layout=True, files=files)
    return list(files)


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
