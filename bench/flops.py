"""The speed floor of the benchmarks: the model's FLOPs over a measured matrix-multiply rate."""
import time

import numpy as np
import paddle
import paddle.nn as nn


def conv_flops(layer, output):
    """2 x MACs of a Conv2D producing `output`: 2 Cin/groups k_h k_w Cout H_out W_out per sample."""
    k_h, k_w = layer.weight.shape[2:]
    c_in = layer.weight.shape[1]
    return 2 * c_in * k_h * k_w * int(np.prod(output.shape[1:])) * output.shape[0]


def count_flops(run, layers):
    """FLOPs of the convolutions and attention matmuls executed by `run()` (a callable doing one
    forward pass) inside `layers`. Element-wise work is left out, as in the usual counts."""
    total = [0]
    hooks = []

    def on_conv(layer, inputs, output):
        total[0] += conv_flops(layer, output)

    def on_attention(layer, inputs, output):
        b, c, h, w = inputs[0].shape
        total[0] += 3 * 2 * c * c * 9 * b * h * w  # K, Q, V (one stacked convolution)
        total[0] += 2 * (2 * b * c * c * h * w)  # q v^T and A^T k

    from networks.attention import GlobalAttention
    for layer in layers:
        for sub in layer.sublayers(include_self=True):
            if isinstance(sub, nn.Conv2D):  # K, Q, V are not called as layers: counted below
                hooks.append(sub.register_forward_post_hook(on_conv))
            elif isinstance(sub, GlobalAttention):
                hooks.append(sub.register_forward_post_hook(on_attention))
    try:
        with paddle.no_grad():
            run()
    finally:
        for h in hooks:
            h.remove()
    return total[0]


def sgemm_rate(n=1024, repeats=5):
    """numpy float32 matrix-multiply rate in FLOP/s (best of `repeats`)."""
    a = np.random.rand(n, n).astype(np.float32)
    b = np.random.rand(n, n).astype(np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def median_time(fn, repeats=5, warmup=1):
    """Median wall time of `fn()` over `repeats` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    return float(np.median([_timed(fn) for _ in range(repeats)]))
