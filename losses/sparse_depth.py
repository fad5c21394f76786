"""Losses that fix the metric scale of self-supervised training: sparse depth (LiDAR) and velocity.

Both are added to the photometric loss by the trainer with their own weight (README "Depth in metres"):
- `sparse_depth_loss`: supervision on the few pixels where a range sensor measured depth
  (DiffusionDepth's scale-invariant log loss, or L1), every other pixel ignored;
- `velocity_loss`: the pose network's translation norm pulled towards the distance the vehicle
  travelled (PackNet-SfM's velocity supervision).
"""
import paddle
import paddle.nn.functional as F

SPARSE_DEPTH_LOSSES = ("silog", "l1")


def _masked(x, valid, fill):
    """x where valid, else the constant fill. paddle.where (not x * valid): garbage (NaN, inf,
    0, negative) at invalid pixels must neither reach log() nor leak into the gradient, and
    0 * NaN = NaN."""
    return paddle.where(valid, x, paddle.full_like(x, fill))


def to_gt_size(pred, gt):
    """Prediction B x 1 x h x w bilinearly (half-pixel, the evaluation's resize) to the ground
    truth's H x W: a sparse ground truth is compared where it was measured, never resampled."""
    if tuple(pred.shape[-2:]) == tuple(gt.shape[-2:]):
        return pred
    return F.interpolate(pred, size=list(gt.shape[-2:]), mode="bilinear", align_corners=False)


def sparse_depth_loss(pred_depth, gt_depth, valid, kind="silog", silog_lambda=0.85):
    """Loss on the valid pixels only, per image, then the mean over the batch.

    pred_depth, gt_depth: B x 1 x H x W (same size); valid: bool or float mask of that shape
    (non-zero = valid). With T the number of valid pixels of an image and d = log pred - log gt
    on them:
      silog: (1/T) sum d^2 - (lambda/T^2) (sum d)^2     (lambda = 1: fully scale-invariant;
             the scale is learnt through the remaining (1 - lambda) mean(d)^2)
      l1:    (1/T) sum |pred - gt|
    An image with T = 0 contributes 0 (the batch mean still divides by B). Invalid pixels
    contribute nothing and receive exactly zero gradient, whatever values they hold.
    Returns a scalar tensor.
    """
    if kind not in SPARSE_DEPTH_LOSSES:
        raise ValueError(f"sparse depth loss {kind!r}: expected one of {SPARSE_DEPTH_LOSSES}")
    valid = valid.astype("bool") if valid.dtype != paddle.bool else valid
    mask = valid.astype(pred_depth.dtype)
    count = mask.sum(axis=[1, 2, 3])
    safe_count = paddle.clip(count, min=1.0)
    pred = _masked(pred_depth, valid, 1.0)
    gt = _masked(gt_depth, valid, 1.0)
    if kind == "silog":
        d = _masked(paddle.log(pred) - paddle.log(gt), valid, 0.0)
        per_image = ((d * d).sum(axis=[1, 2, 3]) / safe_count
                     - silog_lambda * (d.sum(axis=[1, 2, 3]) / safe_count) ** 2)
    else:
        err = _masked(paddle.abs(pred - gt), valid, 0.0)
        per_image = err.sum(axis=[1, 2, 3]) / safe_count
    return per_image.mean()


def velocity_loss(translation, distance, valid=None):
    """mean over the batch of | ||t|| - distance |.

    translation: B x 3 (or any B x ... x 3 holding one vector per image), the pose network's
    translation between frame 0 and a source frame; distance: B, the distance travelled between
    the two frames (metres, >= 0). valid (B, optional): images whose distance is known; the others
    contribute 0 and get zero gradient (the mean still divides by B). The norm is taken as
    sqrt(|t|^2 + 1e-12) so its gradient stays finite at t = 0.
    """
    t = translation.reshape([translation.shape[0], -1])
    norm = paddle.sqrt((t * t).sum(axis=1) + 1e-12)
    distance = distance.reshape([-1]).astype(norm.dtype)
    if valid is None:
        return paddle.abs(norm - distance).mean()
    valid = valid.reshape([-1]).astype("bool")
    # an unknown distance may be NaN: replace it before the subtraction, not only after
    err = paddle.abs(norm - _masked(distance, valid, 0.0))
    return _masked(err, valid, 0.0).mean()
