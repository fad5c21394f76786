"""Fixed resizes written without Paddle's ``interpolate`` op.

Every resize in MLDA-Net has a size known from the input's shape, so each is a fixed linear map.
Writing them as matmuls, pooling and reshapes gives the same numbers as ``F.interpolate`` and lets
the exported program run under Paddle Inference with oneDNN (which refuses ``interpolate`` in
Paddle 3.3) and convert with paddle2onnx. Eager, static and ONNX models share these functions, so
they compute one function.
"""
from functools import lru_cache

import numpy as np
import paddle
import paddle.nn.functional as F


@lru_cache(maxsize=None)
def _align_corners_matrix(n_in, n_out):
    """(n_out x n_in) matrix of 1-D linear interpolation with align_corners=True:
    output j samples the input at s = j (n_in - 1) / (n_out - 1)."""
    m = np.zeros((n_out, n_in), dtype=np.float64)
    # float32 ratio and positions, as Paddle's own kernel computes them
    scale = np.float32((n_in - 1) / (n_out - 1)) if n_out > 1 else np.float32(0.0)
    for j in range(n_out):
        s = float(np.float32(j) * scale)
        i0 = min(int(np.floor(s)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        w = s - i0
        m[j, i0] += 1.0 - w
        m[j, i1] += w
    return m.astype(np.float32)


def bilinear_align_corners(x, height, width):
    """Bilinear resize of B x C x h x w to B x C x height x width with align_corners=True,
    as the separable product  M_h @ x @ M_w^T  of two fixed interpolation matrices."""
    h, w = x.shape[-2], x.shape[-1]
    m_h = paddle.to_tensor(_align_corners_matrix(h, height), dtype=x.dtype)
    m_w_t = paddle.to_tensor(_align_corners_matrix(w, width).T.copy(), dtype=x.dtype)
    return paddle.matmul(paddle.matmul(m_h, x), m_w_t)


def downsample2_bilinear(x):
    """Half-pixel bilinear resize to half the size. With an even size, output j samples the
    input at 2j + 0.5, the mean of pixels 2j and 2j+1: exactly a 2 x 2 average pool."""
    return F.avg_pool2d(x, kernel_size=2, stride=2)


def _interleave(even, odd, axis):
    """Merge two equally shaped tensors along `axis`: out[2k] = even[k], out[2k+1] = odd[k]."""
    shape = list(even.shape)
    stacked = paddle.stack([even, odd], axis=axis + 1)
    shape[axis] = shape[axis] * 2
    shape[0] = -1  # the batch stays dynamic in exported programs
    return paddle.reshape(stacked, shape)


def upsample2_nearest(x):
    """Nearest-neighbour x2 upsampling: every pixel repeated into a 2 x 2 block."""
    x = _interleave(x, x, axis=3)
    return _interleave(x, x, axis=2)


def _upsample2_bilinear_axis(x, axis):
    """Half-pixel linear x2 along `axis`. Output 2k samples the input at k - 1/4 and 2k+1 at
    k + 1/4, so out[2k] = 3/4 x[k] + 1/4 x[k-1], out[2k+1] = 3/4 x[k] + 1/4 x[k+1], with the
    border sample repeated (the clamping that bilinear interpolation applies)."""
    n = x.shape[axis]
    first = paddle.slice(x, [axis], [0], [1])
    last = paddle.slice(x, [axis], [n - 1], [n])
    prev = paddle.concat([first, paddle.slice(x, [axis], [0], [n - 1])], axis=axis)
    nxt = paddle.concat([paddle.slice(x, [axis], [1], [n]), last], axis=axis)
    return _interleave(0.75 * x + 0.25 * prev, 0.75 * x + 0.25 * nxt, axis)


def upsample2_bilinear(x):
    """Half-pixel bilinear x2 upsampling of B x C x h x w (== F.interpolate(x, scale_factor=2,
    mode='bilinear', align_corners=False)), separable in height and width."""
    return _upsample2_bilinear_axis(_upsample2_bilinear_axis(x, 3), 2)
