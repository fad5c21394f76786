"""The speed floor of the benchmarks: the model's FLOPs over a measured matrix-multiply rate."""
import os
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


def int8_matmul_rate(n=2048, threads=0, repeats=5):
    """Multiply-accumulates per second of an n x n x n uint8 x int8 MatMulInteger in ONNX Runtime
    (its VNNI / AMX kernels; best of `repeats`): the rate an int8 convolution can reach at best."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.integers(-127, 128, (n, n)).astype(np.int8), "w")
    graph = helper.make_graph([helper.make_node("MatMulInteger", ["a", "w"], ["y"])], "matmul",
                              [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n])],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, [n, n])], initializer=[weight])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    session = ort.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
                                   .SerializeToString(), options, providers=["CPUExecutionProvider"])
    a = rng.integers(0, 256, (n, n)).astype(np.uint8)
    session.run(None, {"a": a})
    return n ** 3 / min(_timed(lambda: session.run(None, {"a": a})) for _ in range(repeats))
