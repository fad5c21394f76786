"""Geometry and image-similarity layers with the Monodepth2 family's names and signatures.

Everything takes the batch size from its input at run time; the `batch_size` arguments of
BackprojectDepth and Project3D are kept only for the familiar signature.
"""
import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from utils.geometry.depth import disp_to_depth  # noqa: F401  (Monodepth2's home for it)


def rot_from_axisangle(vec):
    """Axis-angle B x 1 x 3 -> rotation B x 4 x 4 by Rodrigues' formula,
    R = cos(a) I + sin(a) [u]x + (1 - cos(a)) u u^T with a = |v|, u = v / (a + 1e-7)."""
    angle = paddle.norm(vec, p=2, axis=2, keepdim=True)  # B x 1 x 1
    axis = vec / (angle + 1e-7)
    ca, sa = paddle.cos(angle)[:, 0, 0], paddle.sin(angle)[:, 0, 0]
    c = 1 - ca
    x, y, z = axis[:, 0, 0], axis[:, 0, 1], axis[:, 0, 2]
    zero, one = paddle.zeros_like(x), paddle.ones_like(x)
    rows = [
        [x * x * c + ca, x * y * c - z * sa, z * x * c + y * sa, zero],
        [x * y * c + z * sa, y * y * c + ca, y * z * c - x * sa, zero],
        [z * x * c - y * sa, y * z * c + x * sa, z * z * c + ca, zero],
        [zero, zero, zero, one],
    ]
    # Built with stack, not in-place writes, so autograd stays intact on Paddle 3.
    return paddle.stack([paddle.stack(r, axis=-1) for r in rows], axis=1)


def get_translation_matrix(translation):
    """Translation B x 1 x 3 (or B x 3) -> 4 x 4 homogeneous matrices B x 4 x 4."""
    t = translation.reshape([-1, 3])
    zero, one = paddle.zeros_like(t[:, 0]), paddle.ones_like(t[:, 0])
    rows = [[one, zero, zero, t[:, 0]],
            [zero, one, zero, t[:, 1]],
            [zero, zero, one, t[:, 2]],
            [zero, zero, zero, one]]
    return paddle.stack([paddle.stack(r, axis=-1) for r in rows], axis=1)


def transformation_from_parameters(axisangle, translation, invert=False):
    """Pose network output -> 4 x 4 transform: M = T(t) R, or its inverse R^T T(-t) if `invert`."""
    rot = rot_from_axisangle(axisangle)
    if invert:
        return paddle.matmul(rot.transpose([0, 2, 1]), get_translation_matrix(-translation))
    return paddle.matmul(get_translation_matrix(translation), rot)


class BackprojectDepth(nn.Layer):
    """Depth B x 1 x H x W -> camera points B x 4 x HW:  X = depth * K^-1 [u, v, 1]^T, then 1."""

    def __init__(self, batch_size, height, width):
        super().__init__()
        self.height, self.width = height, width
        u, v = np.meshgrid(np.arange(width), np.arange(height), indexing="xy")
        pix = np.stack([u.ravel(), v.ravel(), np.ones(height * width)]).astype(np.float32)
        self.register_buffer("pix_coords", paddle.to_tensor(pix[None]), persistable=False)

    def forward(self, depth, inv_K):
        rays = paddle.matmul(inv_K[:, :3, :3], self.pix_coords.astype(inv_K.dtype))  # B x 3 x HW
        points = depth.reshape([-1, 1, self.height * self.width]) * rays
        return paddle.concat([points, paddle.ones_like(points[:, :1])], axis=1)


class Project3D(nn.Layer):
    """Points B x 4 x HW -> sampling grid B x H x W x 2 in [-1, 1] for grid_sample with
    align_corners=True:  p = (K T)[:3] X,  pixel = p_xy / (p_z + eps),  grid = 2 (pixel / (size - 1) - 0.5)."""

    def __init__(self, batch_size, height, width, eps=1e-7):
        super().__init__()
        self.height, self.width, self.eps = height, width, eps

    def forward(self, points, K, T):
        P = paddle.matmul(K, T)[:, :3, :]
        cam = paddle.matmul(P, points)
        pix = cam[:, :2] / (cam[:, 2:3] + self.eps)
        pix = pix.reshape([-1, 2, self.height, self.width]).transpose([0, 2, 3, 1])
        scale = paddle.to_tensor([self.width - 1, self.height - 1], dtype=pix.dtype)
        return (pix / scale - 0.5) * 2


class SSIM(nn.Layer):
    """Per-pixel structural dissimilarity clip((1 - SSIM) / 2, 0, 1), B x C x H x W, with 3 x 3
    mean filters after reflection padding, C1 = 0.01^2, C2 = 0.03^2."""

    C1 = 0.01 ** 2
    C2 = 0.03 ** 2

    def forward(self, x, y):
        x = F.pad(x, [1, 1, 1, 1], mode="reflect")
        y = F.pad(y, [1, 1, 1, 1], mode="reflect")
        pool = lambda t: F.avg_pool2d(t, 3, 1)  # noqa: E731
        mu_x, mu_y = pool(x), pool(y)
        sigma_x = pool(x * x) - mu_x * mu_x
        sigma_y = pool(y * y) - mu_y * mu_y
        sigma_xy = pool(x * y) - mu_x * mu_y
        n = (2 * mu_x * mu_y + self.C1) * (2 * sigma_xy + self.C2)
        d = (mu_x * mu_x + mu_y * mu_y + self.C1) * (sigma_x + sigma_y + self.C2)
        return paddle.clip((1 - n / d) / 2, 0, 1)


def get_smooth_loss(disp, img):
    """Edge-aware smoothness: mean(|dx d| exp(-mean_c |dx I|)) + mean(|dy d| exp(-mean_c |dy I|))."""
    grad_disp_x = paddle.abs(disp[:, :, :, :-1] - disp[:, :, :, 1:])
    grad_disp_y = paddle.abs(disp[:, :, :-1, :] - disp[:, :, 1:, :])
    grad_img_x = paddle.mean(paddle.abs(img[:, :, :, :-1] - img[:, :, :, 1:]), axis=1, keepdim=True)
    grad_img_y = paddle.mean(paddle.abs(img[:, :, :-1, :] - img[:, :, 1:, :]), axis=1, keepdim=True)
    return (grad_disp_x * paddle.exp(-grad_img_x)).mean() + (grad_disp_y * paddle.exp(-grad_img_y)).mean()
