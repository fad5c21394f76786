"""Tame random weights so activations stay O(1) (docs/MLDA_NET.md §10).

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


@paddle.no_grad()
def tame_weights(nets, sample):
    """Rescale every Conv2D of `nets` ({"depth": DepthNet[, "pose": PoseNet]}, or one DepthNet)
    so that its output has unit std on `sample` (B x 3 x H x W in [0, 1]); the pose net sees
    (sample, sample mirrored). Nets are put in eval mode (batch norm with its running statistics)."""
    nets_dict = nets if isinstance(nets, dict) else {"depth": nets}
    for net in nets_dict.values():
        # the disparity heads' constant initial bias (networks.model.init_as_original) would be
        # multiplied by the rescaling into a saturated sigmoid: start them centred, as Paddle's default
        for head in getattr(getattr(net, "decoder", None), "dispconvs", {}).values():
            head.conv.bias.set_value(paddle.zeros_like(head.conv.bias))
    hooks = []
    for net in nets_dict.values():
        net.eval()
        for sub in net.sublayers(include_self=True):
            if isinstance(sub, nn.Conv2D):
                hooks.append(sub.register_forward_post_hook(_rescale_hook))
    try:
        if "depth" in nets_dict:
            nets_dict["depth"](sample)
        if "pose" in nets_dict:
            nets_dict["pose"](sample, sample.flip([3]))
    finally:
        for h in hooks:
            h.remove()
    return nets


def tamed_depth_folder(folder, image_path, height, width):
    """Write a weights folder (encoder + depth, opt.json at height x width) of fresh networks (seed 0) tamed on
    the image at `image_path`, for benchmarks whose speed does not depend on the values. Returns the nets."""
    import networks
    from utils.io import image_io
    sample = paddle.to_tensor(image_io.preprocess(image_io.load_image(image_path), height, width))
    paddle.seed(0)
    nets = networks.build_nets(scales=(0, 1, 2, 3), use_pose=False)
    tame_weights(nets, sample)
    networks.save_weights_folder(folder, nets, {"height": height, "width": width})
    return nets
