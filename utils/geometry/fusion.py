"""Motion-compensated temporal filtering of video depth, Paddle-free: each frame's depth blended with the
previous output carried along the camera's motion, where both see the same surface.

For consecutive frames t-1, t: F_(t-1) the filter's previous output, D_t the current depth (both H x W,
scale-aligned: utils/geometry/stabilise.py), K the camera at H x W, T = [R | t] the camera motion
(coordinates in camera t-1 -> coordinates in camera t; t in the depth's units):

  1. lift     every pixel p of frame t with its own depth, X = D_t(p) K^-1 p~, and move it into camera t-1:
              X' = T^-1 X; it lands at q = (K X')_xy / z' with depth z' = X'_z
  2. carry    f = F_(t-1)(q) (bilinear); that point of frame t-1, Y = f K^-1 q~, is at depth
              c(p) = (R Y + t)_z in camera t: the previous output carried into frame t
  3. agree    the two see one surface where |f - z'| <= tau z' (tau = `agreement`); elsewhere frame t
              stands alone: q outside frame t-1 or behind it, a disocclusion (frame t-1 saw something nearer
              at q), a moving object, a wrong motion
  4. blend    F_t(p) = D_t(p)^(1 - w) c(p)^w where they agree, D_t(p) elsewhere (w = `blend`); F_0 = D_0

A first-order recursive (exponential) filter that follows the scene's points instead of the pixels: on a
static scene with exact motion, independent per-frame errors of variance s^2 in log depth keep
(1 - w) / (1 + w) of it (1/3 at w = 1/2), an error that persists over frames is not reduced, and a point
is followed for about 1 / (1 - w) frames. The error of a wrong motion stays bounded: a carried depth
that is off by a factor e each frame puts the output off by e^(w / (1 - w)) at most, and the agreement test
drops what is off by more than tau.
"""
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class FusionOptions:
    blend: float = 0.5       # w: weight of the previous output carried along the motion
    agreement: float = 0.1   # tau: largest relative depth difference of one surface seen from both frames

    def check(self):
        """ValueError naming the first option out of range."""
        if not 0 <= self.blend < 1:
            raise ValueError(f"blend must be in [0, 1), not {self.blend}")
        if not self.agreement > 0:
            raise ValueError(f"agreement must be > 0, not {self.agreement}")
        return self


def pixel_rays(k, height, width):
    """3 x H W rays K^-1 [u, v, 1] of every pixel, row by row."""
    v, u = np.mgrid[0:height, 0:width]
    pixels = np.stack([u.ravel(), v.ravel(), np.ones(height * width)]).astype(np.float64)
    return np.linalg.solve(np.asarray(k, np.float64)[:3, :3], pixels)


def carry_previous(previous, depth, transform, k):
    """Steps 1-3 of the module docstring: (c, f, z') as H x W float64 maps; f = 0 where q falls outside
    frame t-1 or behind camera t-1 (then c and z' mean nothing)."""
    previous = np.asarray(previous, np.float64)
    depth = np.asarray(depth, np.float64)
    h, w = depth.shape
    k = np.asarray(k, np.float64)[:3, :3]
    transform = np.asarray(transform, np.float64)
    rays = pixel_rays(k, h, w)
    inverse = np.linalg.inv(transform)
    moved = inverse[:3, :3] @ (rays * depth.ravel()) + inverse[:3, 3:4]     # X' = T^-1 X
    z_prev = moved[2]
    front = z_prev > 1e-9
    with np.errstate(divide="ignore", invalid="ignore"):
        q = (k @ moved)[:2] / np.where(front, z_prev, 1.0)
    q = np.where(front, q, -1e6).astype(np.float32)                       # behind: outside, f = 0
    sampled = cv2.remap(previous.astype(np.float32), q[0].reshape(h, w), q[1].reshape(h, w), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0.0).astype(np.float64)
    # Y = f K^-1 q~ in camera t-1, carried to camera t: c = R_z . Y + t_z
    q_rays = np.linalg.solve(k, np.vstack([q.astype(np.float64), np.ones((1, h * w))]))
    carried = transform[2, :3] @ (q_rays * sampled.ravel()) + transform[2, 3]
    return carried.reshape(h, w), sampled, z_prev.reshape(h, w)


def fuse(previous, depth, transform, k, options=None):
    """(F_t, agree): the blended depth of step 4 and the boolean map of the pixels that were blended.
    `previous` F_(t-1), `depth` D_t (pixels <= 0 or not finite: no depth, kept as they are)."""
    opt = (options or FusionOptions()).check()
    depth = np.asarray(depth, np.float64)
    carried, sampled, z_prev = carry_previous(previous, depth, transform, k)
    with np.errstate(invalid="ignore"):
        agree = ((depth > 0) & np.isfinite(depth) & (sampled > 0) & (z_prev > 0) & (carried > 0)
                 & (np.abs(sampled - z_prev) <= opt.agreement * z_prev))
    out = depth.copy()
    out[agree] = np.exp((1 - opt.blend) * np.log(depth[agree]) + opt.blend * np.log(carried[agree]))
    return out, agree
