"""Video depth per frame vs temporal (utils/geometry/stabilise.py) on synthetic KITTI drives: TAE, the
per-sequence median-scaled abs_rel and the flicker figure, for each drive and on average.

    python bench/temporal.py --weights logs/mlda/models/weights_5 --data_path data/synth
    python bench/temporal.py --weights W --data_path D --drives all --exposure_jitter 0.03

Each drive's left frames (image_02) are the video, predicted one by one as predict.py does (Predictor.depth:
depth at the image size, metres for stereo-trained weights). Ground truth: the drive's exact depth maps
(depth/image_02/*.npy, every pixel but the sky) and its poses (utils.cameras.poses.sequence_poses: the
synthetic KITTI's pose file), the camera from its calibration. Rows:
  per-frame            the predictions as they are
  temporal, relative   stabilised with the relative-depth rule (no clip on the corrections)
  temporal, metric     stabilised with the metric rule (corrections within [1/r, r]), for metric weights
Columns: TAE with Video Depth Anything's one disparity scale and shift per drive ("fit"), and without it
("no fit": metres as predicted; meaningful for metric weights); abs_rel with ONE median ratio per drive
(utils.geometry.temporal.sequence_median_errors, predictions clipped to [1e-3, 80] m); flicker = std of the
log median-depth ratio between consecutive frames. --exposure_jitter S multiplies each frame by a gain
exp(N(0, S)) before prediction (a camera's automatic exposure; seeded), which a per-frame network
answers with scale jitter. The stabiliser's cost is given as a share of the prediction's, same run.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def drive_data(data_path, drive):
    """(image paths, exact depth maps, camera-to-world poses, 3 x 3 K) of a synthetic drive's left camera."""
    from utils.cameras.poses import camera_matrix, sequence_poses
    folder = os.path.join(data_path, drive, "image_02", "data")
    names = sorted(os.listdir(folder))
    gts = [np.load(os.path.join(data_path, drive, "depth", "image_02", os.path.splitext(n)[0] + ".npy"))
           for n in names]
    poses = sequence_poses("kitti", data_path, drive, range(len(names)))
    k = camera_matrix(os.path.join(data_path, drive.split("/")[0]))
    return [os.path.join(folder, n) for n in names], gts, poses, k


def predict(predictor, paths, rng, jitter):
    """Depth of every frame at its own size, each frame's brightness times exp(N(0, jitter)) first."""
    from utils.image_io import load_image
    depths = []
    for path in paths:
        image = np.asarray(load_image(path), np.float32)
        if jitter:
            image = np.clip(np.round(image * np.exp(rng.normal(0, jitter))), 0, 255)
        depths.append(predictor.depth(image.astype(np.uint8)))
    return depths


def score(depths, gts, poses, k):
    """{tae_fit, tae_none, abs_rel} of one drive's depths (module docstring)."""
    from utils.geometry.temporal import sequence_median_errors, temporal_alignment_error
    masks = [g > 0 for g in gts]
    return {"tae_fit": temporal_alignment_error(depths, poses, k, gts=gts, masks=masks).tae,
            "tae_none": temporal_alignment_error(depths, poses, k, masks=masks, align="none").tae,
            "abs_rel": sequence_median_errors(gts, depths, masks)[0][0]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", required=True, help="weights folder (models/weights_N of a training run)")
    p.add_argument("--data_path", required=True, help="a synthetic KITTI (python -m synthetic --out ...)")
    p.add_argument("--drives", default="test", help="'test' (the split's test drive), 'all', or drive names")
    p.add_argument("--half_window", type=int, default=4, help="the stabiliser's half window (default 4)")
    p.add_argument("--max_correction", type=float, default=1.1, help="the metric rule's clip (default 1.1)")
    p.add_argument("--exposure_jitter", type=float, default=0.0, help="std of the log gain per frame (default 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the numbers to this file")
    args = p.parse_args()

    with open(os.path.join(args.data_path, "synthetic_info.json")) as f:
        info = json.load(f)
    drives = {"test": info["drives"][-1:], "all": info["drives"]}.get(args.drives, args.drives.split(","))
    from predict import Predictor
    from utils.geometry.stabilise import StabiliserOptions, stabilise
    predictor = Predictor(args.weights)
    print(f"weights {args.weights}: {'metric' if predictor.metric else 'relative'} depth "
          f"(factor {predictor.scale_factor:g}); network {predictor.width} x {predictor.height}")
    rules = {"per-frame": None, "temporal, relative": StabiliserOptions(half_window=args.half_window),
             "temporal, metric": StabiliserOptions(metric=True, half_window=args.half_window,
                                                   max_correction=args.max_correction)}
    rng = np.random.default_rng(args.seed)
    results, seconds = {name: [] for name in rules}, {"predict": 0.0, "stabilise": 0.0}
    for drive in drives:
        paths, gts, poses, k = drive_data(args.data_path, drive)
        start = time.perf_counter()
        depths = predict(predictor, paths, rng, args.exposure_jitter)
        seconds["predict"] += time.perf_counter() - start
        start = time.perf_counter()
        videos = {name: stabilise(depths, opt) for name, opt in rules.items() if opt is not None}
        seconds["stabilise"] += (time.perf_counter() - start) / len(videos)
        raw_flicker = videos["temporal, relative"][1].flicker_raw     # the same figure in every report
        videos["per-frame"] = (depths, None)
        for name in rules:
            aligned, report = videos[name]
            row = score(aligned, gts, poses, k)
            row["flicker"] = report.flicker_aligned if report else raw_flicker
            results[name].append(row)
            print(f"{drive} {name:>19}: TAE fit {100 * row['tae_fit']:.2f} %, no fit {100 * row['tae_none']:.2f} %, "
                  f"abs_rel {row['abs_rel']:.4f}, flicker {100 * row['flicker']:.2f} %", flush=True)
    keys = ("tae_fit", "tae_none", "abs_rel", "flicker")
    means = {name: {key: float(np.mean([r[key] for r in rows])) for key in keys} for name, rows in results.items()}
    base = means["per-frame"]
    print(f"\n{len(drives)} drive(s), {len(paths)} frames each at {gts[0].shape[1]} x {gts[0].shape[0]}, "
          f"exposure jitter {args.exposure_jitter:g}, half window {args.half_window}; stabiliser cost "
          f"{100 * seconds['stabilise'] / seconds['predict']:.1f} % of the prediction's")
    print("| video | TAE fit % | vs per-frame | TAE no fit % | abs_rel (1 ratio / drive) | flicker % |\n"
          "|---|---|---|---|---|---|")
    for name, m in means.items():
        print(f"| {name} | {100 * m['tae_fit']:.2f} | {100 * (m['tae_fit'] / base['tae_fit'] - 1):+.0f} % | "
              f"{100 * m['tae_none']:.2f} | {m['abs_rel']:.4f} ({m['abs_rel'] - base['abs_rel']:+.4f}) | "
              f"{100 * m['flicker']:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "per_drive": results, "means": means}, f, indent=1)


if __name__ == "__main__":
    main()
