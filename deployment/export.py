"""Export (needs Paddle): trace a depth network at a fixed size with a dynamic batch, write the static
programs (Paddle Inference), convert them to ONNX (paddle2onnx) and write deploy.json.

The network is a `networks.DepthNet`: `.encoder` (image -> list of features), `.decoder` (features,
scales -> disparities) and `.disparity` (image -> scale-0 disparity). Nothing here knows how many
features the encoder has or their shapes: export runs the encoder once on a dummy input and records
what it returns.
"""
import os
import shutil
import tempfile

from deployment.config import (CONFIG_NAME, FILE_STEMS, FORMAT_VERSION, LAYOUTS, PREPROCESSING, DeployError,
                               check_values, model_files, write_config)
from utils.cameras.kitti_layout import STEREO_SCALE_FACTOR


def decode_scale0(net, features):
    """The decoder's scale-0 sigmoid disparity (B x 1 x H x W) from the encoder's features: only that
    head runs (the other scales serve only the training loss and are left out of the programs)."""
    (disp,) = net.decoder(list(features), scales=(0,)).values()
    return disp


def _export_layers(net, layout, feature_names):
    """nn.Layer wrappers with tensor-only signatures, {part: (layer, input names, output names)}."""
    import paddle.nn as nn

    class Encoder(nn.Layer):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, image):
            return tuple(self.net.encoder(image))

    class Depth(nn.Layer):  # the features arrive as one list (to_static takes no *args)
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, features):
            return decode_scale0(self.net, features)

    class Combined(nn.Layer):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, image):
            return self.net.disparity(image)

    if layout == "split":
        return {"encoder": (Encoder(net), ["image"], feature_names),
                "depth": (Depth(net), feature_names, ["disp"])}
    return {"model": (Combined(net), ["image"], ["disp"])}


def feature_shapes(net, height, width):
    """{"feature<k>": [-1, C, h, w]} of the encoder's outputs, found by running it once on zeros."""
    import paddle

    with paddle.no_grad():
        features = net.encoder(paddle.zeros([1, 3, height, width], "float32"))
    return {f"feature{k}": [-1] + [int(d) for d in f.shape[1:]] for k, f in enumerate(features)}


def export_models(net, save_dir, height, width, layout="split", formats=("paddle",), extra_config=None,
                  opset_version=13):
    """Trace `net` (a DepthNet, eval mode) at height x width with a dynamic batch and write the static
    programs, the ONNX models (formats containing "onnx") and deploy.json into save_dir.

    Everything is written to a temporary folder first and moved into save_dir only when all of it
    succeeded, deploy.json last (other files of save_dir are left alone). Returns the config written."""
    import paddle
    from paddle.static import InputSpec

    if layout not in LAYOUTS:
        raise DeployError(f"layout {layout!r}: choose split or combined")
    formats = tuple(dict.fromkeys(("paddle",) + tuple(formats)))  # ONNX is converted from the Paddle program
    net.eval()
    features = feature_shapes(net, height, width)
    shapes = {"image": [-1, 3, height, width], **features, "disp": [-1, 1, height, width]}
    files = model_files(layout, formats)

    parent = os.path.dirname(os.path.abspath(save_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export_", dir=parent)
    try:
        parts = {}
        for part, (layer, inputs, outputs) in _export_layers(net, layout, list(features)).items():
            specs = [InputSpec(shapes[n], "float32", n) for n in inputs]
            static = paddle.jit.to_static(layer, input_spec=specs if part != "depth" else [specs],
                                          full_graph=True)
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
            "metric": True,
            "depth_scale_factor": STEREO_SCALE_FACTOR,
            "preprocessing": PREPROCESSING,
            "paddle_version": paddle.__version__,
        }
        config.update(extra_config or {})
        check_values(config, save_dir)
        os.makedirs(save_dir, exist_ok=True)
        stale = os.path.join(save_dir, CONFIG_NAME)
        if os.path.exists(stale):  # no moment where an old config describes new files
            os.remove(stale)
        for name in sorted(os.listdir(tmp)):
            os.replace(os.path.join(tmp, name), os.path.join(save_dir, name))
        write_config(save_dir, config)
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
    with open(prefix + ".onnx", "wb") as f:  # inside the temporary folder: moved in only when all succeeded
        f.write(model)
