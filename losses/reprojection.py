"""Photometric reprojection: the per-pixel loss pe and view synthesis by warping (docs/MLDA_NET.md §5, §6)."""
import paddle
import paddle.nn.functional as F

from networks.layers import SSIM, BackprojectDepth, Project3D, disp_to_depth

_SSIM = SSIM()


def reprojection_loss(pred, target, ssim=None):
    """pe(pred, target) = 0.85 clip((1 - SSIM)/2, 0, 1) + 0.15 |pred - target|, each averaged
    over colour channels: B x 1 x H x W."""
    ssim = ssim or _SSIM
    l1 = paddle.abs(target - pred).mean(axis=1, keepdim=True)
    return 0.85 * ssim(pred, target).mean(axis=1, keepdim=True) + 0.15 * l1


def sample(source, grid):
    """Bilinear grid_sample with border padding and align_corners=True (matching Project3D's
    x / (W - 1) normalisation)."""
    if source.stop_gradient:
        # Paddle 3.3's CPU grid_sample backward segfaults when the sampled image does not
        # require a gradient (docs/MLDA_NET.md §10); the copy keeps the caller's tensor untouched.
        source = source.clone()
        source.stop_gradient = False
    return F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=True)


def warp_image(source, depth, K, inv_K, T):
    """Synthesise the target view from `source`: backproject the target's depth with K^-1,
    move the points by T (target -> source camera), project with K and sample the source there."""
    _, _, h, w = depth.shape
    points = BackprojectDepth(None, h, w)(depth, inv_K)
    return sample(source, Project3D(None, h, w)(points, K, T))


def generate_images_pred(inputs, outputs, frame_ids, scales, min_depth, max_depth, use_depth_hints=False):
    """For every scale: upsample ("disp", s) to full resolution, convert it to ("depth", 0, s) and
    warp each source frame into ("color", f, s); with depth hints also warp the stereo partner with
    the hint depth into "hint_color". Poses come from outputs[("cam_T_cam", 0, f)] and the stereo
    transform from inputs["stereo_T"]."""
    target = inputs[("color", 0, 0)]
    h, w = target.shape[2:]
    K, inv_K = inputs[("K", 0)], inputs[("inv_K", 0)]
    for s in scales:
        disp = F.interpolate(outputs[("disp", s)], size=[h, w], mode="bilinear", align_corners=False)
        _, depth = disp_to_depth(disp, min_depth, max_depth)
        outputs[("depth", 0, s)] = depth
        for f in frame_ids[1:]:
            T = inputs["stereo_T"] if f == "s" else outputs[("cam_T_cam", 0, f)]
            outputs[("color", f, s)] = warp_image(inputs[("color", f, 0)], depth, K, inv_K, T)
    if use_depth_hints:
        outputs["hint_color"] = warp_image(inputs[("color", "s", 0)], inputs["depth_hint"], K, inv_K,
                                           inputs["stereo_T"])
    return outputs
