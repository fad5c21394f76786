"""Validation abs_rel against training steps on the synthetic KITTI, next to the median-scaled
constant prediction (the trivial baseline a depth network must beat).

    python bench/train_synthetic.py                       # quick-start data, preset size, 300 steps
    python bench/train_synthetic.py --steps 1000 --every 100 --height 96 --width 320

Uses train.py's synthetic preset (data/synthetic_kitti, generated with hints if absent) and the
standard protocol of utils.geometry.metrics.evaluate_depth (velodyne ground truth, Garg crop, median scaling)
on the split's val files. Prints one line per checkpoint and a markdown table at the end.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import options  # noqa: E402
from utils.geometry.metrics import evaluate_depth  # noqa: E402


def constant_baseline(dataset):
    """Mean abs_rel of a constant depth, median-scaled per image, over the dataset's depth_gt."""
    values = []
    for i in range(len(dataset)):
        gt = dataset[i]["depth_gt"][0]
        values.append(evaluate_depth(gt, np.ones((8, 8), np.float32), mode="median")[0][0])
    return float(np.mean(values))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--every", type=int, default=50, help="validate every this many steps")
    # constant learning rate (no decay) unless --scheduler_step_size is among the train options
    p.add_argument("train_args", nargs="*", help="extra train.py options after --, e.g. -- --height 96")
    args = p.parse_args()
    argv = ["--dataset", "synthetic", "--model_name", "bench_synthetic", "--num_epochs", "1000",
            "--scheduler_step_size", "1000"] + args.train_args
    opt = options.parse("train", argv)
    import train
    from trainer import Trainer
    train.prepare_synthetic(opt)
    tr = Trainer(opt)
    baseline = constant_baseline(tr.val_dataset)
    rows, start = [], time.time()
    while tr.step < args.steps:
        # the trainer's loop without its per-epoch saving: epochs until the next validation point
        tr.opt.max_steps = min(tr.step + args.every, args.steps)
        while not tr.steps_done():
            if tr.run_epoch() and tr.batch_in_epoch == len(tr.sampler):
                tr.epoch, tr.batch_in_epoch = tr.epoch + 1, 0
                tr.lr_scheduler.step()
        score, name = tr.validate()
        rows.append((tr.step, score, time.time() - start))
        print(f"step {tr.step}: val {name} {score:.4f} (constant {baseline:.4f}), {rows[-1][2]:.0f} s", flush=True)
    tr.close()  # releases the run folder's lock
    print(f"\n{opt.height}x{opt.width}, batch {opt.batch_size}, lr {opt.learning_rate}, "
          f"{len(tr.train_dataset)} train / {len(tr.val_dataset)} val images; constant baseline abs_rel {baseline:.4f}")
    print("| steps | val abs_rel | / constant | wall s |\n|---|---|---|---|")
    for step, score, wall in rows:
        print(f"| {step} | {score:.4f} | {score / baseline:.2f} | {wall:.0f} |")


if __name__ == "__main__":
    main()
