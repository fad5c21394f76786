"""The two networks of MLDA-Net as single objects, and the factory the trainer uses.

DepthNet = multi-level encoder + dual-attention depth decoder (image -> disparities);
PoseNet = pose encoder (two stacked frames) + pose decoder (-> axis-angle, translation).
Each is stored as two files of a weights folder (see `WEIGHT_FILES`).
"""
import math
import threading
from contextlib import contextmanager

import paddle
import paddle.nn as nn

from networks.decoder import DepthDecoder, PoseDecoder
from networks.encoder import NUM_CH_ENC, MultiLevelEncoder
from utils.cameras.kitti_layout import NORMALISED_K, STEREO_BASELINE

# weights-folder file name -> (net, sub-layer): DepthNet and PoseNet keep the file layout of
# Monodepth2 and the original MLDA-Net (docs/MLDA_NET.md §9).
WEIGHT_FILES = {"encoder": ("depth", "encoder"), "depth": ("depth", "decoder"),
                "pose_encoder": ("pose", "encoder"), "pose": ("pose", "decoder")}


class DepthNet(nn.Layer):
    """image B x 3 x H x W in [0, 1] (H, W multiples of 32) -> {("disp", s): B x 1 x H/2^s x W/2^s}.

    `batch_coupled_filter` normalises the guided filter's attention over the whole batch, as the
    original code does (then a sample's output depends on the rest of its batch)."""

    def __init__(self, num_layers=18, scales=(0, 1, 2, 3), batch_coupled_filter=False):
        super().__init__()
        self.encoder = MultiLevelEncoder(num_layers, num_input_images=1)
        self.decoder = DepthDecoder(NUM_CH_ENC, scales, batch_coupled_filter)

    def forward(self, image, scales=None):
        """Disparities at `scales` (default: every scale the net was built with)."""
        return self.decoder(self.encoder(image), scales)

    def disparity(self, image):
        """The scale-0 disparity B x 1 x H x W alone, the deployed output (only that head runs)."""
        return self.decoder(self.encoder(image), scales=(0,))[("disp", 0)]


class PoseNet(nn.Layer):
    """Two frames B x 3 x H x W -> (axisangle, translation), each B x 2 x 1 x 3. The frames are
    stacked along the channels in the order given, so call it in temporal order (as Monodepth2)."""

    def __init__(self, num_layers=18):
        super().__init__()
        self.encoder = MultiLevelEncoder(num_layers, num_input_images=2, last_only=True)
        self.decoder = PoseDecoder(NUM_CH_ENC)

    def forward(self, frame_a, frame_b):
        return self.decoder(self.encoder(paddle.concat([frame_a, frame_b], axis=1)))


INITIAL_DISP_LOGIT = -3.0  # the disparity heads' initial bias (init_as_original; see stereo_start_logit)


def build_net(part, num_layers=18, scales=(0, 1, 2, 3), batch_coupled_filter=False):
    """A fresh "depth" (DepthNet) or "pose" (PoseNet) network, in train mode."""
    if part == "depth":
        return DepthNet(num_layers, scales, batch_coupled_filter)
    if part == "pose":
        return PoseNet(num_layers)
    raise ValueError(f"unknown network {part!r}; expected 'depth' or 'pose'")


_INITIALISATION_LOCK = threading.RLock()


@contextmanager
def unset_initialisation():
    """Parameters created in the block get a constant fill instead of their random initialisation: for networks
    whose every parameter a weights file then overwrites (load_file refuses a file that misses one). Drawing the
    random values takes most of a network's build time on a CPU (about 1.0 of the depth network's 1.3 s); a
    parameter with an explicit initialiser (ParamAttr) keeps it. Paddle's initialiser is one per process: the
    blocks of several threads take turns (a network that another thread builds meanwhile, outside such a
    block, would get the fill too; this project builds networks in one thread)."""
    from paddle.base import initializer

    with _INITIALISATION_LOCK:
        saved = initializer._global_weight_initializer(), initializer._global_bias_initializer()
        fill = paddle.nn.initializer.Constant(0.0)
        paddle.nn.initializer.set_global_initializer(fill, fill)
        try:
            yield
        finally:
            paddle.nn.initializer.set_global_initializer(*saved)


def build_nets(num_layers=18, scales=(0, 1, 2, 3), use_pose=True, batch_coupled_filter=False, initialise=True):
    """Fresh networks for training: {"depth": DepthNet[, "pose": PoseNet]}, in train mode, initialised
    as the original (`init_as_original`; draws from Paddle's generator, so paddle.seed fixes them).
    initialise=False: no values drawn at all (unset_initialisation), for a caller that loads every one."""
    parts = ("depth", "pose") if use_pose else ("depth",)
    if not initialise:
        with unset_initialisation():
            return {p: build_net(p, num_layers, scales, batch_coupled_filter) for p in parts}
    return {p: init_as_original(build_net(p, num_layers, scales, batch_coupled_filter)) for p in parts}


def stereo_start_logit(focal_over_width, baseline, min_depth=0.1, max_depth=100.0):
    """The disparity-head bias at which stereo training starts with KITTI's initial shift, whatever
    the camera: the warp shifts a pixel by (fx / W) x baseline x scaled disparity of the width, with
    scaled = 1/max_depth + (1/min_depth - 1/max_depth) sigmoid(z) (disp_to_depth). KITTI's camera
    (0.58, 0.1 units) at INITIAL_DISP_LOGIT gives 2.8 %; a real camera and a baseline in metres
    (e.g. 0.75, 0.3 m: 4 x more per unit of disparity) would start at 11 %, beyond every real shift,
    where the identity wins the auto-mask at most pixels and training stayed at its initial depth
    (bench/RESULTS.md, "True camera vs KITTI's camera"). Returns z for the same initial shift
    (sigmoid clipped to [1e-4, 0.5]: from beyond a wide baseline's matches to Monodepth2's 0.5)."""
    span = 1 / min_depth - 1 / max_depth
    kitti_shift = NORMALISED_K[0][0] * STEREO_BASELINE * (1 / max_depth + span / (1 + math.exp(-INITIAL_DISP_LOGIT)))
    sig = min(max((kitti_shift / (focal_over_width * baseline) - 1 / max_depth) / span, 1e-4), 0.5)
    return math.log(sig / (1 - sig))


def set_disp_logit(net, logit):
    """Set the disparity heads' biases of a DepthNet to `logit` (a fresh network's start)."""
    for head in getattr(net.decoder, "dispconvs", {}).values():
        nn.initializer.Constant(logit)(head.conv.bias)
    return net


def init_as_original(net):
    """Re-draw every convolution outside the ResNet backbone with PyTorch's default, the
    initialisation the original MLDA-Net (and Monodepth2) trained from:
        weight, bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))      fan_in = in_channels x k x k
    Why: Paddle's default (weight ~ N(0, 2/fan_in), bias 0) is sqrt(6) x larger per layer, and the
    decoder's convolutions and guided filters have no normalisation, so the disparity logits start
    at |z| ~ 2-7 and one Adam step at lr 1e-4 (each weight moves ~lr) changes them by ~3 on average,
    up to 15; a few steps saturate the sigmoid (exactly 0 or 1 in float32, zero gradient) and
    training from scratch with small batches collapses to a constant disparity. With this
    initialisation the logits start near 0 (disparity ~0.5, as Monodepth2's) and one step moves
    them by ~0.1 (bench/RESULTS.md, "Small-batch collapse"). The backbone keeps its own (batch-
    normalised, usually replaced by ImageNet weights).

    The disparity heads' biases start at INITIAL_DISP_LOGIT instead: sigmoid 0.047, a scaled
    disparity of 0.48 (depth ~2 units), a stereo shift of ~2.8 % of the width with KITTI's camera
    and 0.1-unit baseline (a few pixels, where real ones are), not the ~28 % of sigmoid 0.5, at which
    the warp samples far from the match and training at lr 5e-4 drove every disparity to 1
    (bench/RESULTS.md). Another camera or a baseline in metres moves that shift: see
    stereo_start_logit. Returns `net`."""
    backbone = getattr(net.encoder, "backbone", None)
    skip = {id(layer) for layer in backbone.sublayers(include_self=True)} if backbone is not None else set()
    for layer in net.sublayers():
        if isinstance(layer, nn.Conv2D) and id(layer) not in skip:
            bound = 1 / math.sqrt(math.prod(layer.weight.shape[1:]))
            init = nn.initializer.Uniform(-bound, bound)
            init(layer.weight)
            if layer.bias is not None:
                init(layer.bias)
    return set_disp_logit(net, INITIAL_DISP_LOGIT)


def weight_files(nets):
    """The sub-layers of `nets` ({"depth": DepthNet, "pose": PoseNet}, either optional) by the
    weights-folder file that stores them: {"encoder": ..., "depth": ..., "pose_encoder": ..., "pose": ...}."""
    return {name: getattr(nets[part], sub) for name, (part, sub) in WEIGHT_FILES.items() if part in nets}
