"""Latency of one frame through the deployed depth network (encoder + depth decoder, scale 0).

    python bench/inference.py                                   # CPU: eager, Paddle Inference (oneDNN), ONNX Runtime
    python bench/inference.py --device gpu [--use_trt --trt_precision fp16]

Rows: median wall time of one B=1 frame after warm-up, next to the floor = the network's FLOPs over
numpy's float32 matmul rate measured in the same run with the same threads. Weights are fresh (timing
does not depend on their values). Prints a markdown table for bench/RESULTS.md.
"""
import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402


def median_time(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def sgemm_rate(n=2048, repeats=5):
    """float32 FLOP/s of numpy's matmul (its BLAS with its default threads: every core)."""
    a = np.random.rand(n, n).astype(np.float32)
    b = np.random.rand(n, n).astype(np.float32)
    return 2 * n ** 3 / median_time(lambda: a @ b, repeats, warmup=1)


def count_flops(models, image):
    """Multiply-adds x 2 of every Conv2D and matmul in one forward pass (hooks on Conv2D; the
    attention and resize matmuls counted from their shapes)."""
    import paddle
    import paddle.nn as nn

    total = [0.0]

    def conv_hook(layer, inputs, output):
        k = int(np.prod(layer.weight.shape[1:]))  # Cin/groups x kh x kw
        total[0] += 2.0 * k * float(np.prod(output.shape[1:]))

    hooks = [s.register_forward_post_hook(conv_hook) for m in models.values()
             for s in m.sublayers() if isinstance(s, nn.Conv2D)]
    original = paddle.matmul

    def counting_matmul(x, y, transpose_x=False, transpose_y=False, name=None):
        out = original(x, y, transpose_x, transpose_y, name)
        inner = x.shape[-2] if transpose_x else x.shape[-1]
        total[0] += 2.0 * inner * float(np.prod(out.shape))
        return out

    paddle.matmul = counting_matmul
    try:
        with paddle.no_grad():
            models["depth"](models["encoder"](image))
    finally:
        paddle.matmul = original
        for h in hooks:
            h.remove()
    return total[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--use_trt", action="store_true", help="add Paddle Inference + TensorRT rows (GPU)")
    parser.add_argument("--trt_precision", choices=["fp32", "fp16"], default="fp16")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads, 0 = every core")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--bf16", action="store_true", help="also time oneDNN bfloat16 (CPUs with avx512_bf16/AMX)")
    args = parser.parse_args()
    threads = args.threads or os.cpu_count() or 1

    import paddle
    import networks
    from utils.deploy import DepthPredictor, export_models

    paddle.set_device("gpu" if args.device == "gpu" else "cpu")
    paddle.base.core.set_num_threads(threads)
    models = networks.build_models(use_pose=False)
    for m in models.values():
        m.eval()
    x = np.random.RandomState(0).rand(1, 3, args.height, args.width).astype(np.float32)
    image = paddle.to_tensor(x)
    flops = count_flops(models, image)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        export_models(models["encoder"], models["depth"], tmp, args.height, args.width, "combined",
                      ("paddle", "onnx"))

        def eager():
            with paddle.no_grad():
                out = models["depth"](models["encoder"](image))[("disp", 0)]
                out.numpy()  # wait for the device

        rows.append(("eager (paddle dygraph)", median_time(eager, args.repeats)))
        if args.device == "cpu":
            runs = [("Paddle Inference, oneDNN", dict(backend="paddle", onednn=True)),
                    ("Paddle Inference, no oneDNN", dict(backend="paddle", onednn=False)),
                    ("ONNX Runtime", dict(backend="onnxruntime"))]
            if args.bf16:
                runs.append(("Paddle Inference, oneDNN bf16", dict(backend="paddle", onednn=True, bf16=True)))
        else:
            runs = [("Paddle Inference GPU", dict(backend="paddle")),
                    ("ONNX Runtime GPU", dict(backend="onnxruntime"))]
            if args.use_trt:
                runs += [(f"Paddle Inference GPU + TensorRT {p}",
                          dict(backend="paddle", use_trt=True, trt_precision=p))
                         for p in sorted({"fp32", args.trt_precision})]
        for name, kwargs in runs:
            try:
                predictor = DepthPredictor(tmp, device=args.device, cpu_threads=threads, **kwargs)
                rows.append((name, median_time(lambda: predictor(x), args.repeats)))
            except Exception as e:  # one failing backend should not hide the others
                rows.append((name, f"failed: {str(e).splitlines()[0][:120]}"))

    rate = sgemm_rate() if args.device == "cpu" else None
    floor = flops / rate if rate else None
    cpu = platform.processor() or platform.machine()
    print(f"\n{args.height} x {args.width}, batch 1, {args.device}, {threads} threads, {cpu}, "
          f"Paddle {paddle.__version__}; network {flops / 1e9:.1f} GFLOP"
          + (f", numpy sgemm {rate / 1e9:.0f} GFLOP/s, floor {floor * 1e3:.0f} ms" if rate else ""))
    print("\n| runtime | median latency | x floor |\n| --- | --- | --- |")
    for name, t in rows:
        if isinstance(t, str):
            print(f"| {name} | {t} | |")
        else:
            print(f"| {name} | {t * 1e3:.0f} ms | {t / floor:.2f} |" if floor else f"| {name} | {t * 1e3:.1f} ms | |")


if __name__ == "__main__":
    main()
