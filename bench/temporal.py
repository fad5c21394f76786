"""Video depth per frame vs temporal (utils/geometry/stabilise.py) on synthetic KITTI drives: TAE, the
per-sequence median-scaled abs_rel and the flicker figure, for each drive and on average.

    python bench/temporal.py --weights logs/mlda/models/weights_5 --data_path data/synth
    python bench/temporal.py --weights W --data_path D --drives all --scale_jitter 0.05 --diagnostics

Each drive's left frames (image_02) are the video, predicted one by one as predict.py does (Predictor.depth:
depth at the image size, metres for stereo-trained weights). Ground truth: the drive's exact depth maps
(depth/image_02/*.npy, every pixel but the sky) and its poses (utils.cameras.poses.sequence_poses: the
synthetic KITTI's pose file), the camera from its calibration. Rows:
  per-frame            the predictions as they are
  temporal, relative   stabilised with the relative-depth rule (no clip on the corrections)
  temporal, metric     stabilised with the metric rule (corrections within [1/r, r])
  ..., motion          the same, each frame also blended with the previous output carried along the camera
                       motion found from the frames and the previous depth (utils.geometry.motion: ORB
                       matches, PnP) with the drive's camera: the product's default (predict.py --temporal)
  ... + jitter S       (--scale_jitter S) the same predictions, each frame's depth times exp(N(0, S)) first:
                       a network whose scale flickers (seeded), the case the stabiliser is for
  --diagnostics, what else could lower TAE (not product rules):
  oracle frame scale   each frame scaled by its own median(gt) / median(pred) (one ratio per drive put
                       back): the best any per-frame scale can do
  pixel mean of 3      the metric rule, then each pixel's geometric mean over frames t-1, t, t+1 (no motion
                       compensation: it blurs whatever moves in the picture)
  fused, true motion   the metric rule, then each frame blended (geometric mean) with the previous output
                       warped into it along the TRUE pose (utils.geometry.temporal.reproject_depth)
Columns: TAE with Video Depth Anything's one disparity scale and shift per drive ("fit"), and without it
("no fit": metres as predicted; meaningful for metric weights); abs_rel with ONE median ratio per drive
(utils.geometry.temporal.sequence_median_errors, predictions clipped to [1e-3, 80] m); flicker = std of the
log median-depth ratio between consecutive frames. --exposure_jitter S multiplies each frame's pixels by a
gain exp(N(0, S)) before prediction (a camera's automatic exposure). The stabiliser's cost is given as a
share of the prediction's, same run.
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
    from utils.io.image_io import load_image
    depths = []
    for path in paths:
        image = np.asarray(load_image(path), np.float32)
        if jitter:
            image = np.clip(np.round(image * np.exp(rng.normal(0, jitter))), 0, 255)
        depths.append(predictor.depth(image.astype(np.uint8)))
    return depths


def frame_motions(paths, depths, k):
    """Each frame's (T, K) from the previous frame (utils.geometry.motion), None where none is found."""
    from utils.geometry.motion import FrameMotion
    from utils.io.image_io import load_image
    motion = FrameMotion()
    return [motion(np.asarray(load_image(p)), d, k) for p, d in zip(paths, depths)]


def score(depths, gts, poses, k):
    """{tae_fit, tae_none, abs_rel} of one drive's depths (module docstring)."""
    from utils.geometry.temporal import sequence_median_errors, temporal_alignment_error
    masks = [g > 0 for g in gts]
    return {"tae_fit": temporal_alignment_error(depths, poses, k, gts=gts, masks=masks).tae,
            "tae_none": temporal_alignment_error(depths, poses, k, masks=masks, align="none").tae,
            "abs_rel": sequence_median_errors(gts, depths, masks)[0][0]}


def oracle_frame_scale(depths, gts):
    """Each frame times its median(gt) / median(pred), divided by the drive's one ratio."""
    scaled = [d * np.median(g[g > 0] / d[g > 0]) for d, g in zip(depths, gts)]
    pooled = np.median(np.concatenate([g[g > 0] for g in gts])) / np.median(
        np.concatenate([d[g > 0] for d, g in zip(depths, gts)]))
    return [s / pooled for s in scaled]


def pixel_mean(depths, half=1):
    """Each pixel's geometric mean over the frames within `half` of it (no motion compensation)."""
    logs = np.log(np.array(depths, np.float64))
    return [np.exp(logs[max(0, t - half): t + half + 1].mean(0)) for t in range(len(depths))]


def fused_along_motion(depths, poses, k):
    """out_0 = d_0; out_t = geometric mean of d_t and out_(t-1) warped into frame t by the true pose
    (where a warped depth lands; d_t alone elsewhere)."""
    from utils.geometry.temporal import relative_pose, reproject_depth
    out = [np.asarray(depths[0], np.float64)]
    for t in range(1, len(depths)):
        warped = reproject_depth(out[-1], relative_pose(poses[t - 1], poses[t]), k)
        fused = np.asarray(depths[t], np.float64).copy()
        hit = warped > 0
        fused[hit] = np.sqrt(fused[hit] * warped[hit])
        out.append(fused)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", required=True, help="weights folder (models/weights_N of a training run)")
    p.add_argument("--data_path", required=True, help="a synthetic KITTI (python -m synthetic --out ...)")
    p.add_argument("--drives", default="test", help="'test' (the split's test drive), 'all', or drive names")
    p.add_argument("--half_window", type=int, default=4, help="the stabiliser's half window (default 4)")
    p.add_argument("--max_correction", type=float, default=1.1, help="the metric rule's clip (default 1.1)")
    p.add_argument("--exposure_jitter", type=float, default=0.0, help="std of the log gain per frame (default 0)")
    p.add_argument("--scale_jitter", type=float, default=0.0, help="also rows with this per-frame log scale jitter")
    p.add_argument("--diagnostics", action="store_true", help="also the oracle, pixel-mean and fused rows")
    p.add_argument("--frames", type=int, default=0, help="only the first N frames of each drive (0: all)")
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
          f"(factor {predictor.scale_factor:g}); network {predictor.height} x {predictor.width}")
    relative = StabiliserOptions(half_window=args.half_window)
    metric = StabiliserOptions(metric=True, half_window=args.half_window, max_correction=args.max_correction)
    rng = np.random.default_rng(args.seed)
    results, seconds = {}, {"predict": 0.0, "stabilise": 0.0}
    for drive in drives:
        paths, gts, poses, k = drive_data(args.data_path, drive)
        if args.frames:
            paths, gts, poses = paths[:args.frames], gts[:args.frames], poses[:args.frames]
        start = time.perf_counter()
        depths = predict(predictor, paths, rng, args.exposure_jitter)
        seconds["predict"] += time.perf_counter() - start
        start = time.perf_counter()
        rel, report = stabilise(depths, relative)
        seconds["stabilise"] += time.perf_counter() - start
        met, met_report = stabilise(depths, metric)
        start = time.perf_counter()
        motions = frame_motions(paths, depths, k)
        rel_m, rel_m_report = stabilise(depths, relative, motions)
        seconds["fuse"] = seconds.get("fuse", 0.0) + time.perf_counter() - start
        met_m, met_m_report = stabilise(depths, metric, motions)
        videos = {"per-frame": (depths, report.flicker_raw), "temporal, relative": (rel, report.flicker_aligned),
                  "temporal, metric": (met, met_report.flicker_aligned),
                  "temporal, relative, motion": (rel_m, rel_m_report.flicker_aligned),
                  "temporal, metric, motion": (met_m, met_m_report.flicker_aligned)}
        if args.diagnostics:
            for name, video in (("oracle frame scale", oracle_frame_scale(depths, gts)),
                                ("pixel mean of 3", pixel_mean(met)), ("fused, true motion",
                                                                       fused_along_motion(met, poses, k))):
                videos[name] = (video, stabilise(video)[1].flicker_raw)
        if args.scale_jitter:
            jittered = [d * np.exp(rng.normal(0, args.scale_jitter)) for d in depths]
            j_rel, j_report = stabilise(jittered, relative)
            j_met, j_met_report = stabilise(jittered, metric)
            j_fused, j_fused_report = stabilise(jittered, metric, motions)
            tag = f" + jitter {args.scale_jitter:g}"
            videos.update({"per-frame" + tag: (jittered, j_report.flicker_raw),
                           "temporal, relative" + tag: (j_rel, j_report.flicker_aligned),
                           "temporal, metric" + tag: (j_met, j_met_report.flicker_aligned),
                           "temporal, metric, motion" + tag: (j_fused, j_fused_report.flicker_aligned)})
        for name, (video, flicker) in videos.items():
            row = dict(score(video, gts, poses, k), flicker=flicker)
            results.setdefault(name, []).append(row)
            print(f"{drive} {name:>30}: TAE fit {100 * row['tae_fit']:.2f} %, no fit {100 * row['tae_none']:.2f} %, "
                  f"abs_rel {row['abs_rel']:.4f}, flicker {100 * row['flicker']:.2f} %", flush=True)
    print(f"pixels blended along the motion: {100 * rel_m_report.blended:.0f} % (last drive)")
    keys = ("tae_fit", "tae_none", "abs_rel", "flicker")
    means = {name: {key: float(np.mean([r[key] for r in rows])) for key in keys} for name, rows in results.items()}
    print(f"\n{len(drives)} drive(s), {len(paths)} frames each at {gts[0].shape[1]} x {gts[0].shape[0]}, "
          f"exposure jitter {args.exposure_jitter:g}, half window {args.half_window}; stabiliser cost "
          f"{100 * seconds['stabilise'] / seconds['predict']:.1f} % of the prediction's, with the motion and the "
          f"blending along it {100 * seconds['fuse'] / seconds['predict']:.1f} %")
    print("| video | TAE fit % | vs per-frame | TAE no fit % | vs per-frame | abs_rel (1 ratio / drive) | flicker % |\n"
          "|---|---|---|---|---|---|---|")
    for name, m in means.items():
        base = means["per-frame" + name.partition(" + ")[1] + name.partition(" + ")[2]]
        print(f"| {name} | {100 * m['tae_fit']:.2f} | {100 * (m['tae_fit'] / base['tae_fit'] - 1):+.0f} % | "
              f"{100 * m['tae_none']:.2f} | {100 * (m['tae_none'] / base['tae_none'] - 1):+.0f} % | "
              f"{m['abs_rel']:.4f} ({m['abs_rel'] - base['abs_rel']:+.4f}) | {100 * m['flicker']:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "per_drive": results, "means": means}, f, indent=1)


if __name__ == "__main__":
    main()
