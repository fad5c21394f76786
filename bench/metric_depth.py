"""How metric each kind of supervision makes the depth, on the synthetic KITTI, at one budget:
unscaled and median-scaled abs_rel and the spread of the per-image ratio median(gt) / median(pred)
for self-supervised mono, + velocity, + sparse depth with 64, 16 and 4 beams, and stereo.

    python bench/metric_depth.py                          # 40 steps each at 64 x 96, batch 2
    python bench/metric_depth.py --steps 200 --height 64 --width 192 --configs mono sparse64

Every configuration trains from the same random start (seed 0, --weights_init scratch, --min_depth
0.01: see --help) on the same train lines for the same number of steps (sparse and velocity
weights 1), then predicts the split's test drive (every frame, left
camera) and is scored against its velodyne ground truth as test.py scores the synthetic KITTI (every
gt > 0, no crop, predictions clipped to [1e-3, 80]). "unscaled" applies the factor the weights'
opt.json implies (utils.geometry.depth.depth_scale: 1 for metric weights and for mono, 5.4 for KITTI-unit
stereo): the error a user without ground truth gets. The ratio spread is the std of the per-image
ratios divided by their median (test.py's "std"). The data: synthetic.ensure(--data_path) (the
quick-start subset when absent; it needs oxts/, written by synthetic format 2 and later).
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CONFIGS = {   # name -> train.py options over the shared monocular ones
    "mono": [],
    "velocity": ["--velocity_weight", "1"],
    "sparse64": ["--sparse_depth_weight", "1"],
    "sparse16": ["--sparse_depth_weight", "1", "--lidar_beams", "16"],
    "sparse4": ["--sparse_depth_weight", "1", "--lidar_beams", "4"],
    "stereo": ["--frame_ids", "0", "--use_stereo"],
}
LABELS = {"mono": "self-supervised mono", "velocity": "mono + velocity (oxts)",
          "sparse64": "mono + sparse depth, 64 beams",
          "sparse16": "mono + sparse depth, 16 beams", "sparse4": "mono + sparse depth, 4 beams",
          "stereo": "stereo (KITTI units, x5.4)"}


def train_config(name, args, log_dir):
    """A Trainer of config `name`, trained args.steps steps; returns it (closed)."""
    import options
    from trainer import Trainer
    argv = ["--dataset", "synthetic", "--data_path", args.data_path, "--log_dir", log_dir, "--model_name", name,
            "--height", str(args.height), "--width", str(args.width), "--batch_size", str(args.batch_size),
            "--num_workers", "0", "--frame_ids", "0", "-1", "1", "--no-use_stereo", "--no-use_depth_hints",
            "--num_epochs", "100000", "--scheduler_step_size", "100000", "--log_frequency", "100000",
            "--val_max_images", "1", "--seed", "0", "--min_depth", str(args.min_depth)] + CONFIGS[name]
    from tests.support.synthetic_runs import train_steps
    return train_steps(Trainer(options.parse("train", argv)), args.steps)


def score(tr, test_set):
    """(unscaled abs_rel, median-scaled abs_rel, median ratio, ratio spread) on test_set."""
    import paddle
    import datasets
    from networks.layers import disp_to_depth
    from utils.cameras.kitti_layout import eval_rules
    from utils.geometry.depth import depth_scale
    from utils.geometry.metrics import evaluate_depth
    factor, _, _ = depth_scale(tr.opt.use_stereo, metric=tr.opt.get("metric"))
    rules = eval_rules("synthetic")
    net = tr.models["depth"]
    net.eval()
    unscaled, median, ratios = [], [], []
    with paddle.no_grad():
        for i in range(len(test_set)):
            item = datasets.batch_to_float(test_set.get_item(i, np.random.default_rng(0)))
            disp = net(paddle.to_tensor(item[("color", 0, 0)][None]))[("disp", 0)]
            scaled = disp_to_depth(disp, tr.opt.min_depth, tr.opt.max_depth)[0].numpy()[0, 0]
            gt = item["depth_gt"][0]
            # depth x factor = 1 / (disp / factor): the factor applied as evaluate_depth's "factor" mode does
            unscaled.append(evaluate_depth(gt, scaled, mode="factor", factor=factor, **rules)[0][0])
            errors, ratio = evaluate_depth(gt, scaled / factor, mode="median", **rules)
            median.append(errors[0])
            ratios.append(ratio)
    ratios = np.array(ratios)
    return float(np.mean(unscaled)), float(np.mean(median)), float(np.median(ratios)), \
        float(np.std(ratios / np.median(ratios)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data_path", default=os.path.join("data", "synthetic_kitti"))
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--height", type=int, default=64)
    p.add_argument("--width", type=int, default=96)
    p.add_argument("--batch_size", type=int, default=2)
    p.add_argument("--min_depth", type=float, default=0.01,
                   help="disp_to_depth's minimum depth: 0.01 starts every network ~8x below metres (a monocular "
                        "model's scale is arbitrary; with 0.1 a fresh network happens to start near the synthetic "
                        "scene's scale, which would hide what each supervision does) (default: %(default)s)")
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--log_dir", default=os.path.join("logs", "bench_metric"))
    args = p.parse_args()
    import datasets
    import synthetic
    info = synthetic.ensure(args.data_path)
    if "velocity" in args.configs and info.get("format_version", 1) < 2:
        sys.exit(f"metric_depth.py: error: {args.data_path} has no oxts/ (generated before synthetic format 2): "
                 f"regenerate it with python -m synthetic --out {args.data_path} --overwrite")
    test_lines = datasets.read_split(os.path.join(synthetic.split_dir(args.data_path), "test_files.txt"))
    test_set = datasets.KITTIRAWDataset(args.data_path, test_lines, args.height, args.width, [0],
                                        depth_gt_size=None, load_depth=True)
    rows = []
    for name in args.configs:
        start = time.time()
        tr = train_config(name, args, args.log_dir)
        row = (name,) + score(tr, test_set) + (time.time() - start,)
        rows.append(row)
        print(f"{name}: unscaled {row[1]:.3f}, median-scaled {row[2]:.3f}, ratio {row[3]:.3f} +- {row[4]:.3f} "
              f"({row[5]:.0f} s)", flush=True)
    print(f"\n{args.steps} steps from scratch at {args.height} x {args.width}, batch {args.batch_size}, Adam 1e-4, "
          f"min_depth {args.min_depth:g}; "
          f"{len(test_set)} test frames of {args.data_path}")
    print("| supervision | abs_rel unscaled | abs_rel median-scaled | median ratio gt/pred | ratio spread (std) "
          "| wall s |")
    print("|---|---|---|---|---|---|")
    for name, unscaled, median, ratio, spread, wall in rows:
        print(f"| {LABELS[name]} | {unscaled:.3f} | {median:.3f} | {ratio:.3f} | {spread:.3f} | {wall:.0f} |")


if __name__ == "__main__":
    main()
