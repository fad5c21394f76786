"""Seconds per training step (mono+stereo+hints by default), split into data, forward (networks,
warps and losses), backward and optimiser, next to the FLOPs floor.

    python bench/train_step.py                                   # 192 x 640, batch 2, 3 timed steps
    python bench/train_step.py --height 64 --width 192 --batch_size 4 --steps 2

Data: a small synthetic KITTI (generated under --data_path if absent, with depth hints), read through
the training data loader in the main process. Floor: 3 x the networks' forward FLOPs (forward +
backward ~ 2 x forward) divided by numpy's float32 matmul rate measured in the same run.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import paddle  # noqa: E402

import options  # noqa: E402
from bench.flops import count_flops, sgemm_rate  # noqa: E402


def _median(fn, repeats=3):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--height", type=int, default=192)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--batch_size", type=int, default=2)
    p.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    p.add_argument("--data_path", default=os.path.join("data", "bench_synthetic"))
    p.add_argument("--mode", choices=["mono+stereo", "mono", "stereo"], default="mono+stereo")
    p.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto")
    p.add_argument("--amp", action="store_true", help="float16 autocast (GPU only)")
    p.add_argument("--num_workers", type=int, default=0, help="loader processes (0: a prefetch thread)")
    args = p.parse_args()

    mode = {"mono+stereo": [], "mono": ["--no-use_stereo", "--no-use_depth_hints"],
            "stereo": ["--frame_ids", "0"]}[args.mode]
    argv = ["--dataset", "synthetic", "--data_path", args.data_path, "--height", str(args.height),
            "--width", str(args.width), "--batch_size", str(args.batch_size), "--num_workers", str(args.num_workers),
            "--log_dir", os.path.join(args.data_path, "logs"), "--weights_init", "scratch",
            "--device", args.device] + mode + (["--amp"] if args.amp else [])
    opt = options.parse("train", argv)
    import synthetic
    synthetic.ensure(args.data_path, num_drives=3, frames_per_drive=6)  # small: 16 train lines
    import train
    train.prepare_synthetic(opt)
    from trainer import Trainer
    tr = Trainer(opt)

    sync = paddle.device.synchronize if tr.device != "cpu" else (lambda: None)

    def one_step(times):  # Trainer.train_step, timed in parts
        t0 = time.perf_counter()
        inputs = next(loader)
        t1 = time.perf_counter()
        with paddle.amp.auto_cast(enable=tr.amp):
            outputs, losses = tr.process_batch(inputs)
        loss = losses["loss"]
        float(loss)  # forces the forward to finish
        t2 = time.perf_counter()
        tr.backward(loss)
        sync()
        t3 = time.perf_counter()
        tr.update_weights()
        sync()
        t4 = time.perf_counter()
        times.append((t1 - t0, t2 - t1, t3 - t2, t4 - t3))

    tr.sampler.set_epoch(0)
    loader = iter(tr.loader)
    one_step([])  # warm-up: oneDNN kernel selection, allocations
    times = []
    for _ in range(args.steps):
        try:
            one_step(times)
        except StopIteration:
            tr.sampler.set_epoch(tr.sampler.epoch + 1)
            loader = iter(tr.loader)
            one_step(times)
    t = np.array(times).mean(axis=0)
    tr.close()  # releases the run folder's lock; the networks stay usable

    # the loader's prefetch thread hides most of the data time above; its cost on one core:
    from paddle.io.dataloader.collate import default_collate_fn
    t_data = _median(lambda: default_collate_fn([tr.sampler.dataset[k] for k in range(args.batch_size)]))
    inputs = next(iter(tr.loader))
    flops = count_flops(lambda: tr.process_batch(inputs), list(tr.models.values()))
    rate = sgemm_rate()
    floor = 3 * flops / rate
    step = t.sum()
    print(f"{args.mode} {args.height}x{args.width} batch {args.batch_size}, mean of {args.steps} steps, "
          f"{os.cpu_count()} cores")
    print(f"step {step:.2f} s = data {t[0]:.2f} + forward {t[1]:.2f} + backward {t[2]:.2f} + optimiser {t[3]:.2f}")
    if tr.device != "cpu":
        peak = paddle.device.cuda.max_memory_allocated() / 2 ** 30
        print(f"{tr.device}, amp {tr.amp}: {args.batch_size / step:.1f} images/s, peak GPU memory {peak:.1f} GiB")
    print(f"data loading cost when not overlapped: {t_data:.2f} s per batch (one process)")
    print(f"network forward {flops / 1e9:.1f} GFLOP; numpy sgemm {rate / 1e9:.0f} GFLOP/s; "
          f"floor 3 x FLOPs / sgemm = {floor:.2f} s; step / floor = {step / floor:.1f}")


if __name__ == "__main__":
    main()
