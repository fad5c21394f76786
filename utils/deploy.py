"""Deployment: the depth network as static programs (Paddle Inference, ONNX) and one predictor for both.

A deployment folder, written by export.py, holds the models and `deploy.json`, which records
everything inference needs so that it takes no flags to match the export:

    layout "split"     model_encoder.{json,pdiparams[,onnx]}: image -> features 0-4
                       model_depth.{json,pdiparams[,onnx]}:   features 0-4 -> scale-0 disparity
    layout "combined"  model.{json,pdiparams[,onnx]}:         image -> scale-0 disparity

Inputs: float32 B x 3 x H x W, RGB in [0, 1] (PIL Lanczos resize of the photo to W x H), the batch
dimension dynamic; the (x - 0.45) / 0.225 normalisation is inside the encoder. Output: the sigmoid
disparity of scale 0, B x 1 x H x W (the other decoder scales serve only the training loss and are
left out of the programs). `disp_to_depth` with min/max depth, times the stereo factor 5.4 for
stereo-trained weights, turns it into metres (utils/image_io.write_prediction does that).

Only numpy is imported at module level: `DepthPredictor(..., backend="onnxruntime")` runs without
Paddle installed.
"""
import json
import os
import shutil
import tempfile

import numpy as np

CONFIG_NAME = "deploy.json"
FORMAT_VERSION = 1
STEREO_SCALE_FACTOR = 5.4  # the value networks/layers.py holds, copied so ONNX users need no Paddle
NUM_FEATURES = 5
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


def feature_shapes(height, width, num_ch_enc):
    """Shapes (batch -1) of the encoder's 5 features: level k has num_ch_enc[k] channels at H/2^(k+1)."""
    return [[-1, c, height // 2 ** (k + 1), width // 2 ** (k + 1)] for k, c in enumerate(num_ch_enc)]


# ------------------------------------------------------------------------------------------------
# Export (needs Paddle)
# ------------------------------------------------------------------------------------------------

def _export_layers(encoder, depth, layout):
    """nn.Layer wrappers with tensor-only signatures, {part: (layer, input names, output names)}."""
    import paddle.nn as nn

    class Encoder(nn.Layer):
        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder

        def forward(self, image):
            return tuple(self.encoder(image))

    class Depth(nn.Layer):
        def __init__(self, decoder):
            super().__init__()
            self.decoder = decoder

        def forward(self, feature0, feature1, feature2, feature3, feature4):
            return self.decoder([feature0, feature1, feature2, feature3, feature4])[("disp", 0)]

    class Combined(nn.Layer):
        def __init__(self, encoder, decoder):
            super().__init__()
            self.encoder, self.decoder = encoder, decoder

        def forward(self, image):
            return self.decoder(self.encoder(image))[("disp", 0)]

    features = [f"feature{k}" for k in range(NUM_FEATURES)]
    if layout == "split":
        return {"encoder": (Encoder(encoder), ["image"], features),
                "depth": (Depth(depth), features, ["disp"])}
    return {"model": (Combined(encoder, depth), ["image"], ["disp"])}


def export_models(encoder, depth, save_dir, height, width, layout="split", formats=("paddle",),
                  extra_config=None, opset_version=13):
    """Trace `encoder` and `depth` (eval mode) at height x width with a dynamic batch and write the
    static programs, the ONNX models (formats containing "onnx") and deploy.json into save_dir.

    Everything is written to a temporary folder first and moved into save_dir only when all of it
    succeeded, deploy.json last. Returns the config dict written."""
    import paddle
    from paddle.static import InputSpec

    if layout not in LAYOUTS:
        raise DeployError(f"layout {layout!r}: choose split or combined")
    formats = tuple(dict.fromkeys(("paddle",) + tuple(formats)))  # ONNX is converted from the Paddle program
    encoder.eval()
    depth.eval()
    num_ch_enc = list(encoder.num_ch_enc)
    image_spec = [-1, 3, height, width]
    shapes = {"image": image_spec, "disp": [-1, 1, height, width]}
    shapes.update({f"feature{k}": s for k, s in enumerate(feature_shapes(height, width, num_ch_enc))})
    files = model_files(layout, formats)

    parent = os.path.dirname(os.path.abspath(save_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export_", dir=parent)
    try:
        parts = {}
        for part, (layer, inputs, outputs) in _export_layers(encoder, depth, layout).items():
            specs = [InputSpec(shapes[n], "float32", n) for n in inputs]
            static = paddle.jit.to_static(layer, input_spec=specs, full_graph=True)
            paddle.jit.save(static, os.path.join(tmp, FILE_STEMS[part]))
            if "onnx" in formats:
                _convert_onnx(tmp, FILE_STEMS[part], opset_version)
            parts[part] = {"files": files[part], "inputs": inputs, "outputs": outputs}
        config = {
            "format_version": FORMAT_VERSION,
            "model": "MLDA-Net",
            "layout": layout,
            "formats": list(formats),
            "parts": parts,
            "height": int(height),
            "width": int(width),
            "shapes": shapes,
            "batch": "dynamic",
            "output": "sigmoid disparity of decoder scale 0, B x 1 x height x width",
            "min_depth": 0.1,
            "max_depth": 100.0,
            "stereo_scale_factor": STEREO_SCALE_FACTOR,
            "preprocessing": PREPROCESSING,
            "paddle_version": paddle.__version__,
        }
        config.update(extra_config or {})
        _check_values(config, save_dir)
        with open(os.path.join(tmp, CONFIG_NAME), "w") as f:
            json.dump(config, f, indent=2)
        os.makedirs(save_dir, exist_ok=True)
        stale = os.path.join(save_dir, CONFIG_NAME)
        if os.path.exists(stale):  # no moment where an old config describes new files
            os.remove(stale)
        names = sorted(os.listdir(tmp), key=lambda n: n == CONFIG_NAME)
        for name in names:
            os.replace(os.path.join(tmp, name), os.path.join(save_dir, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return config


def _convert_onnx(folder, stem, opset_version):
    """paddle2onnx of <stem>.json/.pdiparams -> <stem>.onnx. Its default 'polygraphy' optimiser
    pip-installs packages at run time, so it is switched off (ONNX Runtime folds constants itself)."""
    import paddle2onnx

    prefix = os.path.join(folder, stem)
    try:
        model = paddle2onnx.export(prefix + ".json", prefix + ".pdiparams", save_file=None,
                                   opset_version=opset_version, enable_onnx_checker=True,
                                   optimize_tool="none")
    except Exception:  # it logs the reason, then fails on its own undefined result
        model = None
    if not model:
        raise DeployError(f"paddle2onnx could not convert {stem}; see its messages above")
    with open(prefix + ".onnx", "wb") as f:
        f.write(model)


# ------------------------------------------------------------------------------------------------
# Reading and checking a deployment folder
# ------------------------------------------------------------------------------------------------

def _check_values(config, where):
    h, w = config.get("height"), config.get("width")
    if not (isinstance(h, int) and isinstance(w, int) and h >= 32 and w >= 32 and h % 32 == 0 and w % 32 == 0):
        raise DeployError(f"{where}: {CONFIG_NAME} gives height {h} and width {w}; both must be "
                          "multiples of 32 (re-export with export.py)")
    lo, hi = config.get("min_depth"), config.get("max_depth")
    if not (isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and 0 < lo < hi):
        raise DeployError(f"{where}: {CONFIG_NAME} gives min_depth {lo} and max_depth {hi}; "
                          "need 0 < min_depth < max_depth")


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
    _check_values(config, model_dir)
    fmt = "onnx" if backend == "onnxruntime" else "paddle"
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
            declared = _paddle_input_shapes(path)
            if declared is not None:  # None: a program format this reader does not know; the run decides
                _check_input_shapes(config, model_dir, part, declared, path)
    return config


def _expected_shapes(config):
    """Input shapes each part must have for the config's height and width (batch as -1)."""
    shapes = dict(config["shapes"])
    h, w = config["height"], config["width"]
    shapes["image"] = [-1, 3, h, w]
    for k in range(NUM_FEATURES):
        c = shapes[f"feature{k}"][1]
        shapes[f"feature{k}"] = [-1, c, h // 2 ** (k + 1), w // 2 ** (k + 1)]
    return shapes


def _check_input_shapes(config, model_dir, part, declared, path):
    """Compare a model's declared input shapes {name: shape} with those the config implies."""
    expected = _expected_shapes(config)
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


def _paddle_input_shapes(program_path):
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


# ------------------------------------------------------------------------------------------------
# Running
# ------------------------------------------------------------------------------------------------

class _PaddleSession:
    """One Paddle Inference predictor: run(list of arrays in input order) -> list of arrays."""

    def __init__(self, prefix, device, cpu_threads, onednn, use_trt, trt_precision, input_shapes, bf16=False):
        try:
            import paddle
            from paddle import inference
        except ImportError:
            raise DeployError("backend paddle needs PaddlePaddle (pip install paddlepaddle), "
                              "or use --backend onnxruntime on a folder exported with --format onnx") from None
        if device == "gpu" and not paddle.is_compiled_with_cuda():
            raise DeployError("--device gpu: this Paddle build has no CUDA support; install paddlepaddle-gpu "
                              "or use --device cpu")
        if use_trt:
            prefix = _tensorrt_program(prefix, trt_precision, input_shapes)
        config = inference.Config(prefix + ".json", prefix + ".pdiparams")
        config.disable_glog_info()
        if device == "gpu":
            config.enable_use_gpu(256, 0)
        else:
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(cpu_threads)
            if onednn:
                config.enable_onednn()
                config.set_onednn_cache_capacity(8)  # a few batch sizes cached, not one per call
                if bf16:
                    config.enable_onednn_bfloat16()
            else:
                config.disable_onednn()
        # Paddle 3.3's PIR in-place pass lets oneDNN's broadcasting divide overwrite its input while a
        # later op still reads it: the guided filter's (l_a / sum) * l_a came out as (l_a / sum)^2, up
        # to 0.4 off in disparity. Without that pass the program computes the eager function.
        # The pass runs when the predictor is built, so the flag is restored right after.
        flag = "FLAGS_pir_apply_inplace_pass"
        saved = paddle.get_flags([flag])[flag]
        paddle.set_flags({flag: False})
        try:
            self.predictor = inference.create_predictor(config)
        finally:
            paddle.set_flags({flag: saved})
        self.input_names = self.predictor.get_input_names()
        self.output_names = self.predictor.get_output_names()

    def run(self, arrays):
        for name, a in zip(self.input_names, arrays):
            handle = self.predictor.get_input_handle(name)
            handle.reshape(list(a.shape))
            handle.copy_from_cpu(np.ascontiguousarray(a, dtype=np.float32))
        self.predictor.run()
        return [self.predictor.get_output_handle(n).copy_to_cpu() for n in self.output_names]


def _tensorrt_program(prefix, precision, input_shapes):
    """Paddle 3's PIR-TensorRT conversion of <prefix>.json (batch 1 to 8, optimised for 1) into a
    cache folder beside it; returns the converted program's prefix."""
    try:
        from paddle.tensorrt.export import Input, PrecisionMode, TensorRTConfig, convert
    except ImportError:
        raise DeployError("--use_trt: this Paddle build has no TensorRT support (paddle.tensorrt); "
                          "install a paddlepaddle-gpu build with TensorRT or drop --use_trt") from None
    inputs = [Input(min_input_shape=[1] + s[1:], optim_input_shape=[1] + s[1:], max_input_shape=[8] + s[1:],
                    name=name) for name, s in input_shapes]
    cache = os.path.join(os.path.dirname(prefix), "trt_cache", f"{os.path.basename(prefix)}_{precision}")
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    config = TensorRTConfig(inputs=inputs)
    config.precision_mode = PrecisionMode.FP16 if precision == "fp16" else PrecisionMode.FP32
    config.save_model_dir = cache
    convert(prefix, config)
    return cache


class _OnnxSession:
    def __init__(self, path, device, cpu_threads):
        try:
            import onnxruntime as ort
        except ImportError:
            raise DeployError("backend onnxruntime needs onnxruntime (pip install onnxruntime)") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = cpu_threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if device == "gpu":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise DeployError("--device gpu with onnxruntime needs the onnxruntime-gpu package "
                                  "(CUDAExecutionProvider); or use --device cpu")
            providers = ["CUDAExecutionProvider"] + providers
        try:
            self.session = ort.InferenceSession(path, options, providers=providers)
        except Exception as e:  # onnxruntime's InvalidProtobuf / Fail
            raise DeployError(f"{path}: unreadable ONNX model ({str(e).splitlines()[0][:200]}); "
                              "re-export with export.py --format onnx") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.input_shapes = {i.name: list(i.shape) for i in self.session.get_inputs()}

    def run(self, arrays):
        feed = {n: np.ascontiguousarray(a, dtype=np.float32) for n, a in zip(self.input_names, arrays)}
        return self.session.run(None, feed)


class DepthPredictor:
    """The exported depth network of a deployment folder, on Paddle Inference or ONNX Runtime.

        predictor = DepthPredictor("deploy_dir")            # CPU, oneDNN, every core
        disp = predictor(images)   # float32 B x 3 x H x W in [0, 1] -> B x 1 x H x W sigmoid disparity

    `predictor.config` is deploy.json (height, width, min/max depth, stereo_scale_factor, ...)."""

    def __init__(self, model_dir, backend="paddle", device="cpu", cpu_threads=0, onednn=True,
                 use_trt=False, trt_precision="fp32", bf16=False):
        if backend not in BACKENDS:
            raise DeployError(f"backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        if use_trt and (backend != "paddle" or device != "gpu"):
            raise DeployError("--use_trt needs --backend paddle and --device gpu")
        self.config = read_config(model_dir, backend)
        self.height, self.width = self.config["height"], self.config["width"]
        threads = cpu_threads or os.cpu_count() or 1
        shapes = _expected_shapes(self.config)
        self.sessions = []
        for part in LAYOUTS[self.config["layout"]]:
            info = self.config["parts"][part]
            if backend == "paddle":
                prefix = os.path.join(model_dir, info["files"]["program"][:-len(".json")])
                session = _PaddleSession(prefix, device, threads, onednn, use_trt, trt_precision,
                                         [(n, shapes[n]) for n in info["inputs"]], bf16)
            else:
                path = os.path.join(model_dir, info["files"]["onnx"])
                session = _OnnxSession(path, device, threads)
                _check_input_shapes(self.config, model_dir, part, session.input_shapes, path)
            if list(session.input_names) != list(info["inputs"]):
                raise DeployError(f"{model_dir}: {part} model takes inputs {list(session.input_names)} but "
                                  f"{CONFIG_NAME} says {info['inputs']}; re-export with export.py")
            self.sessions.append(session)

    def __call__(self, images):
        images = np.asarray(images, dtype=np.float32)
        want = (3, self.height, self.width)
        if images.ndim != 4 or images.shape[1:] != want:
            raise DeployError(f"input of shape {list(images.shape)}: the model takes B x 3 x {self.height} x "
                              f"{self.width} (utils.image_io.preprocess(image, {self.height}, {self.width}))")
        arrays = [images]
        for session in self.sessions:
            arrays = session.run(arrays)
        return arrays[0]
