"""The two attention blocks of MLDA-Net and its attention-weighted guided filter (docs/MLDA_NET.md §1, §3)."""
from functools import lru_cache

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from networks.resize import upsample2_bilinear


class GlobalAttention(nn.Layer):
    """Channel attention over the whole image ("Attention_net").

    k, q, v = K(x), Q(x), V(x) flattened to B x C x N;  A = softmax(q v^T) (B x C x C);
    o = (k^T A)^T = A^T k;  out = local_weight(o + x).
    """

    def __init__(self, channels):
        super().__init__()
        conv3 = lambda: nn.Conv2D(channels, channels, 3, padding=1, bias_attr=False)  # noqa: E731
        self.K, self.Q, self.V = conv3(), conv3(), conv3()
        self.local_weight = nn.Conv2D(channels, channels, 1, bias_attr=False)

    def forward(self, x):
        c, h, w = x.shape[1:]
        k, q, v = (t.flatten(2) for t in paddle.split(self.kqv(x), 3, axis=1))
        attention = F.softmax(paddle.matmul(q, v, transpose_y=True), axis=-1)
        o = paddle.matmul(attention, k, transpose_x=True).reshape([-1, c, h, w])
        return self.local_weight(o + x)

    def kqv(self, x):
        """K(x), Q(x), V(x) stacked on the channel axis, as one convolution with the three kernels stacked:
        bit for bit the numbers of the three, about 1.5x faster on the CPU at the largest level
        (bench/RESULTS.md). The logits q v^T reach |1e4| with random weights, so any float32 summation
        order moves the softmax (and the feature) by ~1e-5; the golden test allows for that."""
        return F.conv2d(x, paddle.concat([self.K.weight, self.Q.weight, self.V.weight]), padding=1)


class GridAttention(nn.Layer):
    """Attention map of one decoder level:  a = sigmoid(psi(relu(theta(x) + phi(g)))), B x 1 x h x w.

    x is the level's output brought down to the size of g, so phi(g) needs no resize."""

    def __init__(self, channels):
        super().__init__()
        self.theta = nn.Conv2D(channels, channels, 1)
        self.phi = nn.Conv2D(channels, channels, 1)
        self.psi = nn.Conv2D(channels, 1, 1)

    def forward(self, x, g):
        return F.sigmoid(self.psi(F.relu(self.theta(x) + self.phi(g))))


@lru_cache(maxsize=None)
def _window_counts(h, w, r):
    """Nb: number of pixels in each (2r+1)^2 window clipped at the border, 1 x 1 x h x w."""
    rows = np.minimum(np.arange(h) + r, h - 1) - np.maximum(np.arange(h) - r, 0) + 1
    cols = np.minimum(np.arange(w) + r, w - 1) - np.maximum(np.arange(w) - r, 0) + 1
    return np.outer(rows, cols).astype(np.float32)[None, None]


def box_mean(t, r):
    """box(t) / Nb: the mean over each (2r+1)^2 window clipped at the border."""
    return F.avg_pool2d(t, kernel_size=2 * r + 1, stride=1, padding=r, exclusive=True)


def attention_guided_filter(lr_x, lr_y, hr_x, attention, r=2, eps=1e-2, batch_coupled=False):
    """Attention-weighted fast guided filter (docs/MLDA_NET.md §3), always computed in float32.

    With l_a = |a| + 1e-12 and l_t = l_a / sum(l_a) (sum per sample, or over the whole batch when
    `batch_coupled`, as the original), mean_* = box(.)/Nb:
        A = (mean(l_a^2 x y) - Nb mean(l_t l_a x) mean(l_a y)) / (|mean(l_a^2 x^2) - Nb mean(l_t l_a x) mean(l_a x)| + eps)
        b = (mean(l_a y) - A mean(l_a x)) / mean(l_a)
        out = up2(mean(A)) * hr_x + up2(mean(b))
    The result has hr_x's dtype.
    """
    # Under --amp the inputs may be float16 (or autocast would make the products float16): there
    # the +1e-12 vanishes, l_t (~3e-5) underflows and a batch-coupled sum can pass 65504.
    dtype = hr_x.dtype
    with paddle.amp.auto_cast(enable=False):
        lr_x, lr_y, hr_x, attention = (t if t.dtype == paddle.float32 else t.astype("float32")
                                       for t in (lr_x, lr_y, hr_x, attention))
        out = _guided_filter_float32(lr_x, lr_y, hr_x, attention, r, eps, batch_coupled)
    return out if dtype == paddle.float32 else out.astype(dtype)


def _guided_filter_float32(lr_x, lr_y, hr_x, attention, r, eps, batch_coupled):
    l_a = paddle.abs(attention) + 1e-12
    total = l_a.sum() if batch_coupled else l_a.sum(axis=[1, 2, 3], keepdim=True)
    l_t = l_a / total
    nb = paddle.to_tensor(_window_counts(lr_x.shape[2], lr_x.shape[3], r), dtype=lr_x.dtype)

    mean_a = box_mean(l_a, r)
    mean_a2xy = box_mean(l_a * l_a * lr_x * lr_y, r)
    mean_tax = box_mean(l_t * l_a * lr_x, r)
    mean_ay = box_mean(l_a * lr_y, r)
    mean_a2x2 = box_mean(l_a * l_a * lr_x * lr_x, r)
    mean_ax = box_mean(l_a * lr_x, r)

    A = (mean_a2xy - nb * mean_tax * mean_ay) / (paddle.abs(mean_a2x2 - nb * mean_tax * mean_ax) + eps)
    b = (mean_ay - A * mean_ax) / mean_a
    A, b = box_mean(A, r), box_mean(b, r)
    return upsample2_bilinear(A) * hr_x + upsample2_bilinear(b)


class AttentionGuidedFilter(nn.Layer):
    """Layer wrapper of `attention_guided_filter` (no parameters; decoder index 0 in checkpoints)."""

    def __init__(self, r=2, eps=1e-2, batch_coupled=False):
        super().__init__()
        self.r, self.eps, self.batch_coupled = r, eps, batch_coupled

    def forward(self, lr_x, lr_y, hr_x, attention):
        return attention_guided_filter(lr_x, lr_y, hr_x, attention, self.r, self.eps, self.batch_coupled)
