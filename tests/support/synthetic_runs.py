"""Short runs on the synthetic KITTI shared by tests and bench scripts: training steps without
validation or saving, the test split as one batch, mean errors under the synthetic split's rules."""
import os

import numpy as np
import paddle

import datasets
import synthetic
from utils.geometry.metrics import evaluate_depth

RULES = dict(garg_crop=False, cap_gt=False)   # the synthetic split: every gt > 0, no crop, no 80 m cap


def train_steps(tr, steps):
    """Run Trainer `tr` for `steps` optimiser steps, epoch after epoch, without validation or saving
    (the trainer's loop less end_of_epoch); closes it and returns it."""
    tr.opt.max_steps = steps
    try:
        while not tr.steps_done():
            if tr.run_epoch() and tr.batch_in_epoch == len(tr.sampler):
                tr.epoch, tr.batch_in_epoch = tr.epoch + 1, 0
    finally:
        tr.close()
    return tr


def synthetic_test_frames(root, height, width):
    """(images B x 3 x height x width tensor, [velodyne depth maps]) of the synthetic test split."""
    lines = datasets.read_split(os.path.join(synthetic.split_dir(root), "test_files.txt"))
    ds = datasets.KITTIRAWDataset(root, lines, height, width, [0], num_scales=1, is_train=False, load_depth=True,
                                  depth_gt_size=None)
    items = [datasets.batch_to_float(ds.get_item(i, np.random.RandomState(0))) for i in range(len(ds))]
    return paddle.to_tensor(np.stack([it[("color", 0, 0)] for it in items])), [it["depth_gt"][0] for it in items]


def mean_errors(gts, disps, mode):
    """The 7 depth errors averaged over images (utils.geometry.metrics.evaluate_depth, RULES)."""
    return np.mean([evaluate_depth(g, d, mode=mode, **RULES)[0] for g, d in zip(gts, disps)], axis=0)
