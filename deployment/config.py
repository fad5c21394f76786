"""deploy.json: what a deployment folder holds and everything inference needs to match the export.
Free of Paddle (the ONNX route runs without it).

A deployment folder, written by export.py, holds the models and `deploy.json`:

    layout "split"     model_encoder.{json,pdiparams[,onnx]}: image -> the encoder's features
                       model_depth.{json,pdiparams[,onnx]}:   those features -> scale-0 disparity
    layout "combined"  model.{json,pdiparams[,onnx]}:         image -> scale-0 disparity

Inputs: float32 B x 3 x H x W, RGB in [0, 1] (PIL Lanczos resize of the photo to W x H), the batch
dimension dynamic; the (x - 0.45) / 0.225 normalisation is inside the encoder. Output: the sigmoid
disparity of scale 0, B x 1 x H x W. The features' names, count and shapes are recorded in "shapes"
as export found them by running the encoder once. depth = depth_scale_factor x disp_to_depth(disp,
min_depth, max_depth): metres ("metric": true, factor 5.4) for stereo-trained weights, relative
depth (factor 1) for monocular-only weights.
"""
import json
import os

from utils.cameras.kitti_layout import STEREO_SCALE_FACTOR
from utils.io.fileio import atomic_write_text
from utils.io.image_io import network_size_problem

CONFIG_NAME = "deploy.json"
FORMAT_VERSION = 1
PREPROCESSING = {
    "color": "RGB",
    "resize": "PIL.Image.LANCZOS to width x height",
    "scale": "pixel / 255, float32 in [0, 1]",
    "layout": "NCHW",
    "normalisation": "none outside the model: (x - 0.45) / 0.225 is the encoder's first op",
}
LAYOUTS = {"split": ("encoder", "depth"), "combined": ("model",)}
FILE_STEMS = {"encoder": "model_encoder", "depth": "model_depth", "model": "model"}
BACKENDS = ("paddle", "onnxruntime")


class DeployError(Exception):
    """A deployment folder or request that cannot work; the message is one line saying how to fix it."""


def model_files(layout, formats):
    """{part: {kind: file name}} for a layout and the formats exported ("paddle", "onnx")."""
    files = {}
    for part in LAYOUTS[layout]:
        stem = FILE_STEMS[part]
        entry = {}
        if "paddle" in formats:
            entry.update(program=stem + ".json", params=stem + ".pdiparams")
        if "onnx" in formats:
            entry.update(onnx=stem + ".onnx")
        files[part] = entry
    return files


def check_values(config, where):
    """Size and depth range that cannot be right raise DeployError naming `where`."""
    h, w = config.get("height"), config.get("width")
    problem = ("must be whole numbers" if not (isinstance(h, int) and isinstance(w, int))
               else network_size_problem(h) or network_size_problem(w))
    if problem:
        raise DeployError(f"{where}: {CONFIG_NAME} gives height {h} and width {w}; both {problem} "
                          "(re-export with export.py)")
    lo, hi = config.get("min_depth"), config.get("max_depth")
    if not (isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and 0 < lo < hi):
        raise DeployError(f"{where}: {CONFIG_NAME} gives min_depth {lo} and max_depth {hi}; "
                          "need 0 < min_depth < max_depth")
    factor = config.get("depth_scale_factor", 1.0)
    if not (isinstance(factor, (int, float)) and factor > 0):
        raise DeployError(f"{where}: {CONFIG_NAME} gives depth_scale_factor {factor}; must be > 0 (re-export)")


def write_config(folder, config):
    """deploy.json into `folder`, written atomically (a reader never sees half of it)."""
    atomic_write_text(os.path.join(folder, CONFIG_NAME), json.dumps(config, indent=2))


def depth_scale(config):
    """(factor, metric) of a config: depth = factor x disp_to_depth depth, in metres when metric.
    Folders exported before the flag existed multiplied by their stereo_scale_factor (5.4)."""
    if "metric" not in config:
        return float(config.get("stereo_scale_factor", STEREO_SCALE_FACTOR)), True
    return float(config["depth_scale_factor"]), bool(config["metric"])


def read_config(model_dir, backend="paddle"):
    """deploy.json of `model_dir`, checked against the files there for `backend`.

    Raises DeployError for: a missing folder or config; an unreadable or foreign config; a model file
    the config names that is missing (an incomplete folder); a format the folder was not exported in;
    sizes or depths that cannot be right; a model whose input size differs from the config's."""
    if not os.path.isdir(model_dir):
        raise DeployError(f"{model_dir}: no such folder (export one with export.py --save_dir {model_dir})")
    path = os.path.join(model_dir, CONFIG_NAME)
    if not os.path.isfile(path):
        raise DeployError(f"{model_dir}: no {CONFIG_NAME}, not a folder written by export.py "
                          f"(export with: python export.py --load_weights_folder W --save_dir {model_dir})")
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise DeployError(f"{path}: unreadable ({str(e).splitlines()[0]}); re-export with export.py") from None
    if not isinstance(config, dict) or config.get("format_version") != FORMAT_VERSION:
        raise DeployError(f"{path}: not a version-{FORMAT_VERSION} deployment config; re-export with export.py")
    layout = config.get("layout")
    if layout not in LAYOUTS or set(config.get("parts", {})) != set(LAYOUTS[layout]):
        raise DeployError(f"{path}: layout {layout!r} and parts {sorted(config.get('parts', {}))} disagree; "
                          "re-export with export.py")
    check_values(config, model_dir)
    fmt = "onnx" if backend == "onnxruntime" else "paddle"
    if config.get("precision") == "int8" and fmt != "onnx":
        raise DeployError(f"{model_dir}: an int8 model runs on ONNX Runtime only: use --backend onnxruntime "
                          "(Paddle Inference's CPU int8 needs a quantisation-aware Paddle model, see docs/deployment.md)")
    if fmt not in config.get("formats", []):
        hint = "export.py --format onnx" if fmt == "onnx" else "export.py (format paddle)"
        raise DeployError(f"{model_dir}: exported as {'/'.join(config.get('formats', []))} only, "
                          f"backend {backend} needs {fmt} models: re-export with {hint}")
    kinds = ("onnx",) if fmt == "onnx" else ("program", "params")
    missing = [config["parts"][p]["files"].get(k, "?") for p in LAYOUTS[layout] for k in kinds
               if not os.path.isfile(os.path.join(model_dir, config["parts"][p]["files"].get(k, "?")))]
    if missing:
        raise DeployError(f"{model_dir}: incomplete, {CONFIG_NAME} names {', '.join(missing)} but "
                          f"{'it is' if len(missing) == 1 else 'they are'} missing; copy the whole folder "
                          "or re-export with export.py")
    if fmt == "paddle":
        for part, info in config["parts"].items():
            path = os.path.join(model_dir, info["files"]["program"])
            declared = paddle_input_shapes(path)
            if declared is not None:  # None: a program format this reader does not know; the run decides
                check_input_shapes(config, model_dir, part, declared, path)
    return config


def expected_shapes(config):
    """Input shapes each part must have for the config's height and width (batch as -1). A tensor's
    stride is the ratio of the recorded image height to its recorded height (features: 2, 4, ...),
    so a config whose height was edited is caught against the model's declared shapes."""
    shapes = config["shapes"]
    h, w = config["height"], config["width"]
    image_h, image_w = shapes["image"][2], shapes["image"][3]
    out = {}
    for name, shape in shapes.items():
        stride_h, stride_w = image_h // shape[2], image_w // shape[3]
        out[name] = [-1, shape[1], h // stride_h, w // stride_w]
    return out


def check_input_shapes(config, model_dir, part, declared, path):
    """Compare a model's declared input shapes {name: shape} with those the config implies."""
    expected = expected_shapes(config)
    names = config["parts"][part]["inputs"]
    if sorted(declared) != sorted(names):
        raise DeployError(f"{path}: inputs {sorted(declared)} but {CONFIG_NAME} says {names}; "
                          "the config does not belong to this model, re-export with export.py")
    for name in names:
        got = [d if isinstance(d, int) and d > 0 else -1 for d in declared[name]]
        want = expected[name]
        if got[1:] != want[1:]:
            raise DeployError(
                f"{model_dir}: {CONFIG_NAME} says {config['height']} x {config['width']} but "
                f"{os.path.basename(path)} was exported for input {name} of shape {got[1:]} "
                f"(expected {want[1:]}); the config contradicts the model, re-export with export.py")


def paddle_input_shapes(program_path):
    """{input name: shape} from the `data` ops of a PIR program (.json), None if not found."""
    try:
        with open(program_path) as f:
            program = json.load(f)
    except (OSError, ValueError):
        raise DeployError(f"{program_path}: unreadable Paddle program; re-export with export.py") from None
    shapes = {}

    def walk(node):
        if isinstance(node, dict):
            if str(node.get("#", "")).endswith(".data") and isinstance(node.get("A"), list):
                attrs = {a.get("N"): a.get("AT", {}).get("D") for a in node["A"] if isinstance(a, dict)}
                if isinstance(attrs.get("name"), str) and isinstance(attrs.get("shape"), list):
                    shapes[attrs["name"]] = attrs["shape"]
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(program)
    return shapes or None
