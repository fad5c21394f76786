"""Frames per second of predict.py, compiled (the default) against --eager, on a folder of photos and a video.

    python bench/compiled.py [--photos 32] [--video_frames 60] [--eager_frames N] [--height 192 --width 640]

Whole commands in one process (predict.main: weights loading, image decoding and resizing, the network, the
output files), on synthetic KITTI frames of 1242 x 375 (`synthetic.generate`): a folder of --photos photos and
an mp4 of --video_frames frames. Fresh weights tamed as in docs/MLDA_NET.md §10 (speed does not depend on their
values). --eager_frames N times --eager on the first N photos and a video of the first N frames only (a busy
machine makes the full eager runs long; the rate is per frame either way). The compiled path runs twice:
cold (an empty cache: the build is in the time and its one line is printed) and warm (the cache entry of the
cold run, as every later run of the same weights). Prints markdown rows for bench/RESULTS.md, the load
average around each run, and the largest disparity difference between the two paths' outputs.
"""
import argparse
import contextlib
import io
import os
import platform
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402


def write_video(frames, path, fps=10):
    """An mp4 of the image files `frames` (all of one size)."""
    import cv2
    first = cv2.imread(frames[0])
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (first.shape[1], first.shape[0]))
    for frame in frames:
        writer.write(cv2.imread(frame))
    writer.release()


def processor_name():
    """The CPU's model name (Linux), else what platform says."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def timed_predict(predict, args):
    """Seconds of one predict.py run and what it printed."""
    printed = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(printed):
        predict.main(args)
    return time.perf_counter() - start, printed.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=32)
    parser.add_argument("--video_frames", type=int, default=60)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--eager_frames", type=int, default=0, help="--eager on this many photos and frames only, "
                                                                       "0 = all of them")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads, 0 = every core")
    args = parser.parse_args()

    import paddle
    import predict
    import synthetic
    from tests.support.lsuv import tamed_depth_folder

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLDA_CACHE_DIR"] = os.path.join(tmp, "cache")   # cold: nothing compiled yet
        per_drive = max(args.photos, (args.video_frames + 1) // 2, 3)
        info = synthetic.generate(os.path.join(tmp, "kitti"), num_drives=2, frames_per_drive=per_drive,
                                  width=1242, height=375, progress=False)
        frames = sorted(os.path.join(root, name) for root, _, names in os.walk(info["data_path"])
                        for name in names if root.endswith(os.path.join("image_02", "data")))
        eager_photos, eager_frames = (min(args.eager_frames or n, n) for n in (args.photos, args.video_frames))
        sources = {}
        for name, count in (("photos", args.photos), ("eager_photos", eager_photos)):
            sources[name] = os.path.join(tmp, name)
            os.makedirs(sources[name])
            for path in frames[:count]:
                os.symlink(path, os.path.join(sources[name], os.path.basename(path)))
        for name, count in (("video", args.video_frames), ("eager_video", eager_frames)):
            sources[name] = os.path.join(tmp, f"{name}.mp4")
            write_video(frames[:count], sources[name])

        weights = os.path.join(tmp, "weights")
        tamed_depth_folder(weights, frames[0], args.height, args.width)

        common = ["--load_weights_folder", weights, "--num_threads", str(args.threads)]
        runs = [("photos", sources["photos"], args.photos, "cold", "default, cold cache", []),
                ("photos", sources["photos"], args.photos, "default", "default", []),
                ("photos", sources["eager_photos"], eager_photos, "eager", "--eager", ["--eager"]),
                ("video", sources["video"], args.video_frames, "default", "default", []),
                ("video", sources["eager_video"], eager_frames, "eager", "--eager", ["--eager"])]
        rows, notes, load = [], [], [os.getloadavg()[0]]
        for kind, source, count, tag, name, extra in runs:
            out = os.path.join(tmp, "out", f"{kind}_{tag}")
            seconds, printed = timed_predict(predict, common + ["--color_path", source, "--output_dir", out] + extra)
            notes += [line for line in printed.splitlines() if "compiled" in line]
            rows.append((kind, name, count, seconds))
            load.append(os.getloadavg()[0])

        disp = {}
        for tag in ("default", "eager"):
            folder = os.path.join(tmp, "out", f"photos_{tag}")
            disp[tag] = np.stack([np.load(os.path.join(folder, n)) for n in sorted(os.listdir(folder))
                                  if n.endswith("_disp.npy")])
        diff = np.abs(disp["default"][:len(disp["eager"])] - disp["eager"]).max() / np.abs(disp["eager"]).max()

    print(f"\n{processor_name()}, {os.cpu_count()} cores, Paddle {paddle.__version__}, "
          f"network {args.height} x {args.width}, frames of 1242 x 375 (whole command incl. model loading), "
          f"load average (1 min) before and after each run: {' '.join(f'{x:.1f}' for x in load)}\n")
    print("\n".join(f"    {n}" for n in notes))
    print("\n| input | path | frames | seconds | frames/s | x --eager |")
    print("|---|---|---|---|---|---|")
    eager = {kind: count / seconds for kind, name, count, seconds in rows if name == "--eager"}
    for kind, name, count, seconds in rows:
        print(f"| {kind} | {name} | {count} | {seconds:.1f} | {count / seconds:.2f} | "
              f"{count / seconds / eager[kind]:.2f}x |")
    print(f"\nlargest disparity difference, default vs --eager, over the photos: {diff:.1e} of the largest")


if __name__ == "__main__":
    main()
