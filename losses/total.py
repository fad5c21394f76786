"""MLDA-Net's re-weighted multi-scale loss on the Monodepth2 + Depth Hints framework (docs/MLDA_NET.md §6)."""
import paddle

from losses.reprojection import reprojection_loss
from networks.layers import get_smooth_loss
from utils.cameras.kitti_layout import HINT_INVALID_PENALTY


def select_masks(reproj, identity, hint_reproj=None):
    """Per-pixel choice among [reproj, identity, hint_reproj] (ties to the lowest index):
    returns (reprojection mask = argmin != 1, hint mask = argmin == 2), float B x 1 x H x W.
    Comparisons instead of argmin make the tie rule explicit."""
    if hint_reproj is None:
        identity_wins = identity < reproj
        return (~identity_wins).astype(reproj.dtype), None
    identity_wins = (identity < reproj) & (identity <= hint_reproj)
    hint_wins = (hint_reproj < reproj) & (hint_reproj < identity)
    return (~identity_wins).astype(reproj.dtype), hint_wins.astype(reproj.dtype)


def hint_loss(hint_depth, depth, hint_valid, hint_mask):
    """Depth-hint proxy loss: sum(log(|hint - depth| + 1) * valid * mask) / (sum(mask) + 1e-7)."""
    err = paddle.log(paddle.abs(hint_depth - depth) + 1)
    return (err * hint_valid * hint_mask).sum() / (hint_mask.sum() + 1e-7)


def min_over_sources(pred_list, target):
    """Per-pixel minimum of pe over source frames: B x 1 x H x W."""
    losses = paddle.concat([reprojection_loss(p, target) for p in pred_list], axis=1)
    return losses.min(axis=1, keepdim=True)


def compute_losses(inputs, outputs, frame_ids, scales, use_depth_hints=False, disparity_smoothness=1e-3):
    """Total loss = sum over scales s of  [reprojection_s + hint_s + (lambda / 2^s) smooth_s] / 2^s.

    reprojection_s = sum(reproj * mask) / (sum(mask) + 1e-7) with reproj the per-pixel minimum of
    pe over warped source frames and mask the auto-mask (identity reprojection of the unwarped
    sources loses); hint_s as `hint_loss`, where the hint's own reprojection (scale 0 warp, +1000
    where the hint is invalid) wins. Returns a dict with "loss", every term per scale and the
    scale-0 masks for logging.
    """
    target = inputs[("color", 0, 0)]
    sources = frame_ids[1:]
    identity = min_over_sources([inputs[("color", f, 0)] for f in sources], target)
    hint_reproj = None
    if use_depth_hints:
        hint_valid = inputs["depth_hint_mask"]
        hint_reproj = reprojection_loss(outputs["hint_color"], target) + HINT_INVALID_PENALTY * (1 - hint_valid)

    losses = {}
    total = 0.0
    for s in scales:
        reproj = min_over_sources([outputs[("color", f, s)] for f in sources], target)
        mask, hint_mask = select_masks(reproj, identity, hint_reproj)
        reprojection = (reproj * mask).sum() / (mask.sum() + 1e-7)
        loss = reprojection
        if use_depth_hints:
            losses[f"hint/{s}"] = hint_loss(inputs["depth_hint"], outputs[("depth", 0, s)], hint_valid, hint_mask)
            loss = loss + losses[f"hint/{s}"]
        disp = outputs[("disp", s)]
        norm_disp = disp / (disp.mean(axis=[2, 3], keepdim=True) + 1e-7)
        smooth = get_smooth_loss(norm_disp, inputs[("color", 0, s)])
        loss = (loss + disparity_smoothness / 2 ** s * smooth) / 2 ** s
        losses[f"reprojection/{s}"] = reprojection
        losses[f"smooth/{s}"] = smooth
        losses[f"loss/{s}"] = loss
        total = total + loss
        if s == scales[0]:
            losses["automask"] = mask
            if hint_mask is not None:
                losses["hint_mask"] = hint_mask
    losses["loss"] = total
    return losses
