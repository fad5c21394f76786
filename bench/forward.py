"""Eager forward pass of the encoder + depth decoder at 1 x 3 x 192 x 640 on the CPU, next to the floor.

    python bench/forward.py [--height 192 --width 640 --threads N --repeats 5]

The floor is the model's FLOPs (convolutions and attention matmuls) over numpy's float32
matrix-multiply rate measured in the same run: the time a perfect implementation would need.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import utils  # noqa: E402,F401
import paddle  # noqa: E402

import networks  # noqa: E402
from bench.flops import count_flops, median_time, sgemm_rate  # noqa: E402
from utils.system import set_cpu_threads  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--height", type=int, default=192)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: every core)")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()

    paddle.set_device("cpu")
    threads = set_cpu_threads(args.threads)
    paddle.seed(0)
    net = networks.DepthNet()
    net.eval()
    image = paddle.rand([1, 3, args.height, args.width])
    run = lambda: net(image)  # noqa: E731
    flops = count_flops(run, [net])
    with paddle.no_grad():
        eager = median_time(run, args.repeats)
        enc = median_time(lambda: net.encoder(image), args.repeats)
    rate = sgemm_rate()
    floor = flops / rate
    print(f"| {args.height} x {args.width} | {threads} | {flops / 1e9:.1f} | {rate / 1e9:.0f} | {floor:.3f} | "
          f"{eager:.3f} (encoder {enc:.3f}) | {eager / floor:.1f}x |")


if __name__ == "__main__":
    main()
