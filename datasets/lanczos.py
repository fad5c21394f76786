"""PIL's Lanczos resize of uint8 images, reproduced exactly in integer arithmetic on Paddle tensors,
so that the training images can be resized on the device (GPU) instead of in the loader workers
and still be bit for bit the images PIL makes there.

Pillow (Resample.c) resizes in two passes, horizontal then vertical, each rounded to uint8. Output
pixel j of a pass from n to m pixels (scale a = n / m, f = max(a, 1)) is

    out_j = clip(floor((2^21 + sum_i k_ji x_i) / 2^22), 0, 255)     for i in [lo_j, hi_j)
    lo_j = max(int(c_j - 3f + 1/2), 0),  hi_j = min(int(c_j + 3f + 1/2), n),  c_j = (j + 1/2) a
    k_ji = round_half_away_from_zero(2^22 w_ji / sum_i w_ji),  w_ji = L((i - c_j + 1/2) / f)

with L(x) = sinc(x) sinc(x / 3) on [-3, 3), 0 elsewhere. The sums are exact in int32: they stay
below 255 * 1.3 * 2^22 + 2^21 < 2^31 (tests/test_lanczos.py checks the bound for the sizes used).
"""
import functools
import math

import numpy as np
import paddle

PRECISION_BITS = 22
SUPPORT = 3.0


def _sinc(x):
    return 1.0 if x == 0.0 else math.sin(math.pi * x) / (math.pi * x)


def _lanczos(x):
    return _sinc(x) * _sinc(x / 3) if -SUPPORT <= x < SUPPORT else 0.0


@functools.lru_cache(maxsize=64)
def lanczos_taps(in_size, out_size):
    """(index, weight): out_size x taps arrays of int64 input positions and int32 fixed-point
    weights (2^22 = 1) of one pass from in_size to out_size pixels; a pixel with fewer taps than
    the widest has weight 0 (at index 0) in its last columns."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = SUPPORT * filterscale
    taps = int(math.ceil(support)) * 2 + 1
    index = np.zeros((out_size, taps), np.int64)
    weight = np.zeros((out_size, taps), np.int32)
    for j in range(out_size):
        center = (j + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        # Pillow's operations in Pillow's order (a sequential sum, x 1/f): its doubles to the last bit
        w = [_lanczos((i - center + 0.5) * (1.0 / filterscale)) for i in range(lo, hi)]
        total = sum(w)
        w = np.array([v / total if total != 0.0 else v for v in w]) * (1 << PRECISION_BITS)
        index[j, :hi - lo] = np.arange(lo, hi)
        weight[j, :hi - lo] = np.where(w < 0, w - 0.5, w + 0.5).astype(np.int64)   # int() truncates
    return index, weight


def _resize_pass(x, size, axis):
    """One pass of the resize along `axis` of an int32 tensor, to `size` pixels; int32 in [0, 255]."""
    index, weight = lanczos_taps(x.shape[axis], size)
    shape = [1] * len(x.shape)
    shape[axis] = size
    acc = None
    for t in range(index.shape[1]):
        column = paddle.to_tensor(index[:, t], place=x.place)
        k = paddle.to_tensor(weight[:, t].reshape(shape), place=x.place)
        term = paddle.index_select(x, column, axis=axis) * k
        acc = term if acc is None else acc + term
    acc = paddle.clip(acc + (1 << (PRECISION_BITS - 1)), 0, (256 << PRECISION_BITS) - 1)
    return acc // (1 << PRECISION_BITS)


def resize_nhwc(x, size):
    """PIL's Image.resize(size[::-1], LANCZOS) of every image of an N x H x W x C uint8 (or int32)
    tensor, to size = (height, width): an N x height x width x C uint8 tensor on x's place."""
    x = x.astype("int32")
    return _resize_pass(_resize_pass(x, size[1], axis=2), size[0], axis=1).astype("uint8")


def resize_padded(x, sizes, flips, size):
    """resize_nhwc of a batch whose image i is the top-left sizes[i] = (h, w) corner of the padded
    N x Hmax x Wmax x C uint8 tensor x (images of several sizes, as KITTI's dates have), mirrored
    left-right first where flips[i]: the images are flipped and resized in groups of one kind."""
    sizes = [tuple(int(v) for v in hw) for hw in np.asarray(sizes).reshape(-1, 2)]
    groups = {}
    for i, (hw, flip) in enumerate(zip(sizes, np.asarray(flips).reshape(-1))):
        groups.setdefault(hw + (bool(flip),), []).append(i)
    parts, order = [], []
    for (h, w, flip), rows in groups.items():
        picked = x if len(groups) == 1 else paddle.gather(x, paddle.to_tensor(rows, place=x.place))
        picked = picked[:, :h, :w].astype("int32")   # Paddle's flip has no uint8 kernel
        parts.append(resize_nhwc(paddle.flip(picked, axis=2) if flip else picked, size))
        order.extend(rows)
    if len(parts) == 1:
        return parts[0]
    inverse = paddle.to_tensor(np.argsort(order), place=x.place)
    return paddle.gather(paddle.concat(parts), inverse)
