"""Stereo training from scratch on one real rectified pair at batch 2 (the small-batch collapse check).

    python bench/stereo_pair.py --height 96 --width 160 --steps 250 --lr 1e-4

skimage's Middlebury motorcycle pair and its mirror image as a batch of 2 (tests/test_collapse.py's
batch), `--frame_ids 0 --use_stereo --no-use_depth_hints --weights_init scratch`, seed 0. Prints,
every --every steps, the scale-0 disparity range, each scale's smoothness, the identity share of
the auto-mask, and the disparity error on the pair against Middlebury's ground truth at its 741 px
width (pixel disparity = 0.58 W x 0.1 x scaled disparity: the camera and baseline the warp used).
"""
import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2  # noqa: E402
import skimage.data  # noqa: E402

import options  # noqa: E402
import trainer  # noqa: E402
from networks.layers import disp_to_depth  # noqa: E402
from tests.support.stereo_pair import NoFiles, stereo_batch  # noqa: E402
from utils.cameras.kitti_layout import STEREO_BASELINE  # noqa: E402


def pixel_error(disp, gt):
    """(mean |pred - gt| px, median gt / pred) of the left view's disparity at gt's size."""
    scaled, _ = disp_to_depth(disp, 0.1, 100.0)
    h, w = gt.shape
    pred = cv2.resize(scaled, (w, h), interpolation=cv2.INTER_LINEAR) * 0.58 * w * STEREO_BASELINE
    valid = np.isfinite(gt) & (gt > 0)
    return float(np.abs(pred - gt)[valid].mean()), float(np.median(gt[valid]) / np.median(pred[valid]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--lr", type=float, default=1e-4)
    args = parser.parse_args()
    gt = skimage.data.stereo_motorcycle()[2]
    inputs = stereo_batch(args.height, args.width)
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["--data_path", tmp, "--log_dir", tmp, "--frame_ids", "0", "--use_stereo", "--no-use_depth_hints",
                "--weights_init", "scratch", "--height", str(args.height), "--width", str(args.width),
                "--batch_size", "2", "--learning_rate", str(args.lr), "--num_workers", "0", "--seed", "0"]
        tr = trainer.Trainer(options.parse("train", argv), train_dataset=NoFiles(), val_dataset=None)
        try:
            for step in range(args.steps + 1):
                result = tr.train_step(inputs)
                if result is None:   # a non-finite loss or gradient: the update was skipped
                    print(f"step {step}: skipped (non-finite loss or gradient)", flush=True)
                    continue
                outputs, losses = result
                if step % args.every == 0 or step == args.steps:
                    d = outputs[("disp", 0)].numpy()
                    err, ratio = pixel_error(d[0, 0], gt)
                    smooth = " / ".join(f"{float(losses[f'smooth/{s}']):.3f}" for s in range(4))
                    identity = 1 - float(losses["automask"].mean())
                    print(f"step {step}: disparity {d.min():.4f} - {d.max():.4f}, smoothness {smooth}, identity "
                          f"share {identity:.2f}, error {err:.1f} px (gt mean {gt[np.isfinite(gt) & (gt > 0)].mean():.1f}), "
                          f"median gt / pred {ratio:.3f}", flush=True)
        finally:
            tr.close()


if __name__ == "__main__":
    main()
