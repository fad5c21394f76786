"""Export of the diffusion refinement head (needs Paddle): MLDA-Net + head as static programs for
Paddle Inference and ONNX, in two forms (docs/DIFFUSION_REFINEMENT.md §5, "Export"):

1. Step model, the host runs the DDIM loop (N and strength free at run time; utils.diffusion.ddim.schedule):
     refine_prepare(image, noise, t_start) -> (cond, z)   MLDA-Net, condition neck, E, start noising
     refine_step(z, t, t_prev, cond) -> z                  one denoiser call + DDIM update
     refine_decode(z) -> depth                             metres, B x 1 x H x W
2. Unrolled, one program per (N, strength): refine_n<N>_s<strength>(image, noise) -> depth, its
   k steps written out with their timesteps as constants (the weights are shared, only the
   program grows with k).
Timesteps enter as float32 [1] tensors (cast to int64 inside), so every input of every program is
float32, as the deployment sessions feed them. noise is the 16 x H/2 x W/2 seeded start noise
(networks.seeded_noise; the same for every image). No interpolate anywhere (oneDNN, paddle2onnx).
The description is refine.json in the export folder (beside MLDA-Net's deploy.json when both are
exported there).
"""
import json
import os
import shutil
import tempfile

from deployment.export import _convert_onnx
from deployment.runtime import REFINE_CONFIG
STEP_PARTS = ("refine_prepare", "refine_step", "refine_decode")


def unrolled_name(ddim_steps, strength):
    return f"refine_n{int(ddim_steps)}_s{float(strength):g}"


def _layers(net, unrolled):
    """{name: (layer, [(input name, shape, dtype)], [output names])} of the programs to trace."""
    import paddle.nn as nn

    class Prepare(nn.Layer):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, image, noise, t_start):
            features, disp = self.net.mlda(image)
            return self.net.head.prepare(features, disp, noise, t_start.astype("int64"))

    class Step(nn.Layer):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, z, t, t_prev, cond):
            return self.net.head.step(z, t.astype("int64"), t_prev.astype("int64"), cond)

    class Decode(nn.Layer):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, z):
            return self.net.head.decode(z)

    class Unrolled(nn.Layer):
        def __init__(self, ddim_steps, strength):
            super().__init__()
            self.net = net
            self.schedule = net.head.schedule(ddim_steps, strength)  # Python constants of the traced program

        def forward(self, image, noise):
            features, disp = self.net.mlda(image)
            return self.net.head.run_schedule(features, disp, noise, self.schedule)[0]

    return {"refine_prepare": (Prepare(), ["image", "noise", "t_start"], ["cond", "z"]),
            "refine_step": (Step(), ["z", "t", "t_prev", "cond"], ["z_prev"]),
            "refine_decode": (Decode(), ["z"], ["depth"]),
            **{unrolled_name(n, s): (Unrolled(n, s), ["image", "noise"], ["depth"]) for n, s in unrolled}}


def export_refine(net, save_dir, height, width, unrolled=(), formats=("paddle",), opset_version=13):
    """Trace `net` (networks.RefinedDepthNet, put in eval mode) at height x width, dynamic batch,
    and write the step programs, one unrolled program per (ddim_steps, strength) of `unrolled`,
    their ONNX models (formats containing "onnx") and refine.json into save_dir. Written to a
    temporary folder first and moved in only when all of it succeeded. Returns the config."""
    import paddle
    from paddle.static import InputSpec

    net.eval()
    cfg = net.head.config
    h, w, c, lat = height // 2, width // 2, cfg["cond_channels"], cfg["latent_channels"]
    shapes = {"image": [-1, 3, height, width], "noise": [lat, h, w], "t_start": [1], "t": [1], "t_prev": [1],
              "z": [-1, lat, h, w], "cond": [-1, c, h, w], "z_prev": [-1, lat, h, w], "depth": [-1, 1, height, width]}
    formats = tuple(dict.fromkeys(("paddle",) + tuple(formats)))
    parent = os.path.dirname(os.path.abspath(save_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export_refine_", dir=parent)
    try:
        parts = {}
        for name, (layer, inputs, outputs) in _layers(net, unrolled).items():
            specs = [InputSpec(shapes[n], "float32", n) for n in inputs]
            static = paddle.jit.to_static(layer, input_spec=specs, full_graph=True)
            paddle.jit.save(static, os.path.join(tmp, name))
            files = {"program": name + ".json", "params": name + ".pdiparams"}
            if "onnx" in formats:
                _convert_onnx(tmp, name, opset_version)
                files["onnx"] = name + ".onnx"
            parts[name] = {"files": files, "inputs": inputs, "outputs": outputs}
        config = {"model": "MLDA-Net + diffusion refinement head", "height": int(height), "width": int(width),
                  "formats": list(formats), "parts": parts, "shapes": shapes, "head": dict(cfg),
                  "unrolled": [{"ddim_steps": int(n), "strength": float(s), "part": unrolled_name(n, s)}
                               for n, s in unrolled],
                  "output": "metric depth in metres, B x 1 x height x width",
                  "paddle_version": paddle.__version__}
        os.makedirs(save_dir, exist_ok=True)
        stale = os.path.join(save_dir, REFINE_CONFIG)
        if os.path.exists(stale):
            os.remove(stale)
        for name in sorted(os.listdir(tmp)):
            os.replace(os.path.join(tmp, name), os.path.join(save_dir, name))
        with open(stale + ".tmp", "w") as f:
            json.dump(config, f, indent=2)
        os.replace(stale + ".tmp", stale)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return config
