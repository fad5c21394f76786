"""Latency of one frame through the deployed depth network (encoder + depth decoder, scale 0).

    python bench/inference.py                                   # CPU: eager, Paddle Inference (oneDNN), ONNX Runtime
    python bench/inference.py --device gpu [--use_trt --trt_precision fp16]

Rows: median wall time of one B=1 frame after warm-up, next to the floor = the network's FLOPs (counted
by bench/flops.py in this run) over numpy's float32 matmul rate (the best of a measurement before and after the
rest, so a busy machine does not flatter the ratio). Weights are fresh, tamed as in the tests
(docs/MLDA_NET.md §10) so that the last column, the largest disparity difference from the eager model on a natural
photo, means something (timing does not depend on the values). Prints a markdown table for bench/RESULTS.md.
int8 against fp32 ONNX Runtime, with the task metrics of trained weights: bench/quantized.py.
"""
import argparse
import os
import platform
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402


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
    from deployment import DepthPredictor
    from deployment.export import export_models
    from bench.flops import count_flops, median_time, sgemm_rate

    paddle.set_device("gpu" if args.device == "gpu" else "cpu")
    paddle.base.core.set_num_threads(threads)
    rate = sgemm_rate() if args.device == "cpu" else None
    from skimage import data

    from tests.support.lsuv import tame_weights
    from utils.io import image_io

    paddle.seed(0)
    net = networks.build_nets(use_pose=False)["depth"]
    x = image_io.preprocess(image_io.load_image(data.astronaut()), args.height, args.width)
    image = paddle.to_tensor(x)
    tame_weights(net, image)
    flops = count_flops(lambda: net.disparity(image), [net])
    with paddle.no_grad():
        reference = net.disparity(image).numpy()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        export_models(net, tmp, args.height, args.width, "combined", ("paddle", "onnx"))

        def eager():
            with paddle.no_grad():
                out = net.disparity(image)
                out.numpy()  # wait for the device

        rows.append(("eager (paddle dygraph)", median_time(eager, args.repeats), 0.0))
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
                error = float(np.abs(predictor(x) - reference).max())
                rows.append((name, median_time(lambda: predictor(x), args.repeats), error))
            except Exception as e:  # one failing backend should not hide the others
                rows.append((name, f"failed: {str(e).splitlines()[0][:120]}", None))

    rate = max(rate, sgemm_rate()) if rate else None
    floor = flops / rate if rate else None
    cpu = platform.processor() or platform.machine()
    print(f"\n{args.height} x {args.width}, batch 1, {args.device}, {threads} threads, {cpu}, "
          f"Paddle {paddle.__version__}; network {flops / 1e9:.1f} GFLOP"
          + (f", numpy sgemm {rate / 1e9:.0f} GFLOP/s, floor {floor * 1e3:.0f} ms" if rate else ""))
    print("\n| runtime | median latency | x floor | max abs disp diff vs eager |\n| --- | --- | --- | --- |")
    for name, t, error in rows:
        if isinstance(t, str):
            print(f"| {name} | {t} | | |")
        else:
            ratio = f"{t / floor:.2f}" if floor else ""
            print(f"| {name} | {t * 1e3:.1f} ms | {ratio} | {error:.1e} |")


if __name__ == "__main__":
    main()
