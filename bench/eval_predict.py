"""Images per second of test.py and predict.py at the network size 192 x 640 (default).

    python bench/eval_predict.py [--frames 16] [--height 192 --width 640] [--device cpu]

Both scripts run end to end (image decoding, Lanczos resize, network, and for test.py the protocol;
for predict.py the three output files per image) on the test drive of a synthetic KITTI at KITTI's
1242 x 375, with fresh weights tamed as in docs/MLDA_NET.md §10 (speed does not depend on their values).
The forward pass alone (batch 1, no data) is timed in the same run to show the overhead.
Prints markdown rows for bench/RESULTS.md.
"""
import argparse
import os
import platform
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--num_workers", type=int, default=2)
    args = parser.parse_args()

    import importlib.util
    import paddle
    import predict
    import synthetic
    from tests.support.lsuv import tamed_depth_folder
    from utils.io import image_io
    from utils.system import setup_runtime

    device = setup_runtime(args.device)
    spec = importlib.util.spec_from_file_location("_test_script", os.path.join(ROOT, "test.py"))
    test_script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(test_script)

    with tempfile.TemporaryDirectory() as tmp:
        info = synthetic.generate(os.path.join(tmp, "kitti"), num_drives=2, frames_per_drive=args.frames,
                                  width=1242, height=375)
        split = os.path.join(info["data_path"], "splits")
        lines = [line.split() for line in open(os.path.join(split, "test_files.txt")).read().splitlines()]
        paths = [os.path.join(info["data_path"], d, "image_02", "data", f"{int(f):010d}.jpg") for d, f, _ in lines]
        gt = np.empty(len(lines), dtype=object)
        gt[:] = [np.load(os.path.join(info["data_path"], d, "depth", "image_02", f"{int(f):010d}.npy"))
                 for d, f, _ in lines]
        np.savez_compressed(os.path.join(split, "gt_depths.npz"), data=gt)

        weights = os.path.join(tmp, "weights")
        nets = tamed_depth_folder(weights, paths[0], args.height, args.width)
        sample = paddle.to_tensor(image_io.preprocess(image_io.load_image(paths[0]), args.height, args.width))

        with paddle.no_grad():
            for _ in range(2):
                nets["depth"](sample)
            t = time.perf_counter()
            for _ in range(5):
                nets["depth"](sample)
            forward = (time.perf_counter() - t) / 5

        rows = []
        for batch in (1, 16):
            t = time.perf_counter()
            test_script.main(["--load_weights_folder", weights, "--data_path", info["data_path"], "--eval_split",
                              split, "--batch_size", str(batch), "--num_workers", str(args.num_workers)])
            rows.append((f"test.py --batch_size {batch} (eval_mono)", len(paths) / (time.perf_counter() - t)))
        folder = os.path.join(tmp, "photos")
        os.makedirs(folder)
        for p in paths:
            os.symlink(p, os.path.join(folder, os.path.basename(p)))
        t = time.perf_counter()
        predict.main(["--load_weights_folder", weights, "--color_path", folder, "--output_dir",
                      os.path.join(tmp, "predictions")])
        rows.append(("predict.py (folder, 3 files per image)", len(paths) / (time.perf_counter() - t)))

    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, device {device}, "
          f"{args.height} x {args.width}, {len(paths)} images of 1242 x 375 (whole command incl. model loading)\n")
    print("| command | images/s | s/image | forward alone (B=1) |")
    print("|---|---|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:.2f} | {1 / rate:.3f} | {forward:.3f} s |")


if __name__ == "__main__":
    main()
