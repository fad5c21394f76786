"""Data-loader throughput: mono+stereo samples (frames 0, -1, +1, "s") with depth hints at 192 x 640.

    python bench/loader.py                      # KITTI-size (1242 x 375) synthetic jpgs, 0 / 1 / 2 workers
    python bench/loader.py --data_path kitti_data --split eigen_zhou

Without --data_path it generates a small synthetic KITTI at KITTI's full size under data/bench_kitti
(once) and writes hint files of the real size (1 x 320 x 1024 float32; their values do not matter
for speed). Prints samples/s through paddle.io.DataLoader for each worker count and, for one
process, where the time of a sample goes. The workers send uint8 images and the main process turns
each batch into floats (datasets.batch_to_float, timed with the batch); the resize_on_device row has
the workers send the decoded frames only (their resizes are a GPU's work in training: not timed in the
rate, their cost on this CPU printed apart); --compare also times, in the same run, the loader as it
was before: Monodepth2's full image pyramid (every scale of every frame, each jittered) converted to
float in the worker.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import utils  # noqa: E402,F401
import paddle  # noqa: E402

import synthetic  # noqa: E402
from datasets import KITTIRAWDataset, batch_to_float, read_split  # noqa: E402
from datasets.batch import collate  # noqa: E402
from utils.io import image_io  # noqa: E402
from utils.cameras.kitti_layout import default_hint_root  # noqa: E402

FRAMES = [0, -1, 1, "s"]


def bench_data(root):
    info = synthetic.ensure(root, num_drives=2, frames_per_drive=14, width=1242, height=375)
    lines = read_split(os.path.join(synthetic.split_dir(root), "train_files.txt"))
    ds = KITTIRAWDataset(root, lines, 64, 64, [0], load_depth=False, depth_hint_path=default_hint_root(root))
    for folder, frame, side in ds.lines:
        path = ds.hint_path(folder, frame, side)
        if not os.path.isfile(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            np.save(path, np.random.default_rng(frame).uniform(0, 10, (1, 320, 1024)).astype(np.float32))
    return info, lines


class MonodepthPyramid(KITTIRAWDataset):
    """The images the loader made before (as Monodepth2's): every scale of every frame, each with
    its colour_aug; 9 of the 16 images and 14 of the 16 colour_augs are never read by the losses."""

    def image_scales(self, f):
        return range(self.num_scales)

    def is_network_input(self, f, s):
        return True


class FloatInWorker(paddle.io.Dataset):
    """The loader as it was before: Monodepth2's image pyramid, each sample converted to float32 in
    the worker (15.7 MB a sample at 192 x 640 instead of 1.3 MB of uint8 to copy between processes)."""

    def __init__(self, ds):
        super().__init__()
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, index):
        return batch_to_float(self.ds[index])


def throughput(ds, workers, samples, batch_size, shared_memory, convert=True):
    """Samples/s of batches in the main process; with `convert` as float batches there
    (batch_to_float on the CPU included; a no-op for FloatInWorker). Without it, the rate a GPU
    trainer sees, whose batch_to_float runs on the device."""
    to_float = batch_to_float if convert else (lambda batch: batch)
    loader = paddle.io.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers,
                                  use_shared_memory=shared_memory, drop_last=True,
                                  collate_fn=collate if getattr(ds, "resize_on_device", False) else None)
    it = iter(loader)
    to_float(next(it))   # start-up (worker processes, first files) is not counted
    n, start = 0, time.perf_counter()
    while n < samples:
        try:
            to_float(next(it))
        except StopIteration:
            it = iter(loader)
            continue
        n += batch_size
    return n / (time.perf_counter() - start)


def profile(ds, samples):
    """Wall and CPU seconds per sample, and CPU seconds per sample in each stage (wrapped functions)."""
    from PIL import Image
    totals = {}

    def timed(name, fn):
        def wrapper(*a, **k):
            t = time.thread_time()   # CPU time: steadier than wall time on a shared machine
            try:
                return fn(*a, **k)
            finally:
                totals[name] = totals.get(name, 0.0) + time.thread_time() - t
        return wrapper

    # the dataset's stages are methods (wrapped on this instance) and public functions (wrapped, then restored)
    orig = (Image.Image.resize, image_io.to_chw)
    ds.get_color = timed("read + decode jpg (PIL), flip", ds.get_color)
    Image.Image.resize = timed("Lanczos resizes (4 scales)", Image.Image.resize)
    image_io.to_chw = timed("float image for the jitter's mean", image_io.to_chw)
    ds.image_array = timed("uint8 CHW arrays", ds.image_array)
    ds.get_hint = timed("depth hint (np.load + nearest resize)", ds.get_hint)
    ds.get_depth = timed("depth_gt (velodyne projection)", ds.get_depth)
    ds.jitter_of = timed("colour jitter parameters (incl. the float image)", ds.jitter_of)
    try:
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(samples):
            ds.get_item(i % len(ds), np.random.RandomState(i))
        total = time.perf_counter() - start
        cpu = time.process_time() - cpu
    finally:
        Image.Image.resize, image_io.to_chw = orig
        del ds.get_color, ds.get_hint, ds.get_depth, ds.image_array, ds.jitter_of
    return total / samples, cpu / samples, {k: v / samples for k, v in totals.items()}


def device_step_cost(ds, batch_size):
    """Seconds per sample of batch_to_float on a resize_on_device batch, run here on the CPU (on a GPU
    trainer it is device work: PIL's Lanczos as integer gathers, datasets/lanczos.py)."""
    batch = collate([ds.get_item(i % len(ds), np.random.RandomState(i)) for i in range(batch_size)])
    tensors = {k: paddle.to_tensor(v) for k, v in batch.items()}
    batch_to_float(dict(tensors))   # warm-up
    start = time.perf_counter()
    batch_to_float(dict(tensors))
    return (time.perf_counter() - start) / batch_size


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_path", help="KITTI raw root with hints in <data_path>/depth_hints "
                                            "(default: a generated KITTI-size synthetic set)")
    parser.add_argument("--split", default="eigen_zhou")
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--samples", type=int, default=96, help="samples timed per worker count")
    parser.add_argument("--batch_size", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of every timing (median reported)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--depth_gt", action="store_true", help="also load velodyne depth_gt")
    parser.add_argument("--shared_memory", nargs="+", type=int, default=[0, 1], choices=[0, 1],
                        help="use_shared_memory values timed with workers (default: both)")
    parser.add_argument("--compare", action="store_true",
                        help="also time float samples converted in the workers (the loader before uint8)")
    args = parser.parse_args()
    if args.data_path:
        root = args.data_path
        lines = read_split(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "splits",
                                        args.split, "train_files.txt"))
    else:
        root = os.path.join("data", "bench_kitti")
        _, lines = bench_data(root)
    # One epoch must outlast the timing: a new epoch starts new worker processes, whose start-up a
    # 24-line synthetic split would otherwise charge every 2 batches (KITTI's 40k-line epochs never pay it).
    repeat = -(-(args.samples + 2 * args.batch_size) // max(len(lines), 1))
    lines = lines * repeat
    ds = KITTIRAWDataset(root, lines, args.height, args.width, FRAMES, is_train=True, use_depth_hints=True,
                         load_depth=args.depth_gt, skip_missing=True)
    if len(ds) == 0:
        sys.exit(f"loader.py: error: no sample of --split {args.split} has its files under {root}")
    paddle.set_device("cpu")
    per_sample, cpu, stages = profile(ds, min(args.samples, 48))
    print(f"one process: {1 / per_sample:.1f} samples/s ({1000 * per_sample:.0f} ms/sample wall, "
          f"{1000 * cpu:.0f} ms CPU, "
          f"{args.height}x{args.width}, frames {FRAMES}, hints{', depth_gt' if args.depth_gt else ''})")
    for name, sec in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"  {name:40s} {1000 * sec:6.1f} ms CPU  {100 * sec / cpu:5.1f} %")
    full_size = KITTIRAWDataset(root, lines, args.height, args.width, FRAMES, is_train=True, use_depth_hints=True,
                                load_depth=args.depth_gt, skip_missing=True)
    full_size.resize_on_device = True
    print(f"resize_on_device's batch_to_float on this CPU (a GPU's work): "
          f"{1000 * device_step_cost(full_size, args.batch_size):.0f} ms per sample")
    kinds = [("uint8 from the workers, batch_to_float on the CPU", ds, True),
             ("uint8 from the workers, no conversion (done on the GPU)", ds, False),
             ("full-size uint8 from the workers, resized + converted on the GPU (resize_on_device)",
              full_size, False)]
    if args.compare:
        before = MonodepthPyramid(root, lines, args.height, args.width, FRAMES, is_train=True,
                                  use_depth_hints=True, load_depth=args.depth_gt, skip_missing=True)
        kinds.append(("float from the workers, every scale of every frame (before)", FloatInWorker(before), False))
    for workers in args.workers:
        for shared in ([bool(x) for x in args.shared_memory] if workers else [False]):
            # the kinds take turns, --repeats rounds, and each reports its median: a shared machine's
            # drift then hits every kind alike and the ratios between them hold
            rates = {name: [] for name, _, _ in kinds}
            for _ in range(args.repeats):
                for name, data, convert in kinds:
                    rates[name].append(throughput(data, workers, args.samples, args.batch_size, shared, convert))
            for name, _, _ in kinds:
                spread = f" (runs {min(rates[name]):.1f}-{max(rates[name]):.1f})" if args.repeats > 1 else ""
                print(f"DataLoader num_workers={workers}, use_shared_memory={shared}, {name}: "
                      f"{np.median(rates[name]):.1f} samples/s{spread} (batch {args.batch_size})", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
