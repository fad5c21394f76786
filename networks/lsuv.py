"""Tame random weights so activations stay O(1) (spec section 10).

With untrained weights the guided filter amplifies float noise, so numerical-parity tests
(eager vs static vs ONNX, batch vs single) need weights like a trained network's. In the spirit
of LSUV initialisation, each convolution is rescaled, in execution order during one forward pass
on a real input, so that its output has unit standard deviation.
"""
import paddle
import paddle.nn as nn


def _rescale_hook(layer, inputs, output):
    scale = 1.0 / (float(output.std()) + 1e-8)
    layer.weight.set_value(layer.weight * scale)
    if layer.bias is not None:
        layer.bias.set_value(layer.bias * scale)
    return output * scale


def _run(models, sample):
    if isinstance(models, dict):
        if "encoder" in models and "depth" in models:
            models["depth"](models["encoder"](sample))
        if "pose_encoder" in models and "pose" in models:
            models["pose"](models["pose_encoder"](paddle.concat([sample, sample.flip([3])], axis=1)))
    else:
        models(sample)


@paddle.no_grad()
def tame_weights(models, sample):
    """Rescale every Conv2D of `models` (a layer, or a dict with "encoder"/"depth" and optionally
    "pose_encoder"/"pose") so that its output has unit std on `sample` (B x 3 x H x W in [0, 1]).
    Layers are put in eval mode (batch norm with its running statistics)."""
    layers = list(models.values()) if isinstance(models, dict) else [models]
    hooks = []
    for layer in layers:
        layer.eval()
        for sub in layer.sublayers(include_self=True):
            if isinstance(sub, nn.Conv2D):
                hooks.append(sub.register_forward_post_hook(_rescale_hook))
    try:
        _run(models, sample)
    finally:
        for h in hooks:
            h.remove()
    return models
