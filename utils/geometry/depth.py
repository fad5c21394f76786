"""Disparity <-> depth conventions, free of Paddle so that the ONNX route runs without it."""
from utils.cameras.kitti_layout import STEREO_SCALE_FACTOR  # noqa: F401  (re-exported)

RELATIVE_DEPTH_NOTE = ("relative depth: these weights were trained without stereo; "
                       "pass --pred_depth_scale_factor F for metres")
RELATIVE_METRIC_NOTE = ("relative depth: these weights were not trained with a known stereo baseline or metric "
                        "depth; pass --pred_depth_scale_factor F for metres")
ASSUMED_STEREO_NOTE = ("metric depth (x{factor:g}): the weights record no training options (the original "
                       "MLDA-Net layout, trained mono+stereo), so they are taken as stereo-trained")


def disp_to_depth(disp, min_depth, max_depth):
    """Sigmoid output -> (scaled disparity, depth):
    scaled = 1/max + (1/min - 1/max) * disp, depth = 1 / scaled. Tensors or numpy arrays."""
    min_disp = 1.0 / max_depth
    max_disp = 1.0 / min_depth
    scaled_disp = min_disp + (max_disp - min_disp) * disp
    return scaled_disp, 1.0 / scaled_disp


def depth_scale(use_stereo, explicit=None, metric=None):
    """(factor, metric, note) for depth = factor x disp_to_depth depth, as Monodepth2 decides it.

    Only stereo training fixes the scale (the 0.1 training baseline is KITTI's 0.54 m), so stereo
    weights give metres with STEREO_SCALE_FACTOR; monocular-only weights give relative depth
    (factor 1). use_stereo None means the weights record no training options: the original MLDA-Net
    / PaddleMono layout, trained mono+stereo, taken as stereo. An explicit factor always wins (metric
    then means "the user says so"). `note` is a line to show the user once, or None.

    `metric`: the weights' own record (opt.json "metric", written by the folder dataset, whose stereo
    transform uses the camera's real baseline): True means disp_to_depth depth is already metres
    (factor 1), False relative depth; it replaces the KITTI convention above when recorded."""
    if explicit is not None:
        return float(explicit), True, None
    if metric is not None:
        return 1.0, bool(metric), None if metric else RELATIVE_METRIC_NOTE
    if use_stereo is None:
        return STEREO_SCALE_FACTOR, True, ASSUMED_STEREO_NOTE.format(factor=STEREO_SCALE_FACTOR)
    if use_stereo:
        return STEREO_SCALE_FACTOR, True, None
    return 1.0, False, RELATIVE_DEPTH_NOTE
