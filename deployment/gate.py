"""The task-metric gate of a reduced-precision model (export.py --precision int8 | bf16): the gate split,
the gate itself and the per-pixel figures recorded beside it. Free of Paddle.

The gate split (GateSplit) is the test split of --gate_split (utils/io/eval_split.py: a KITTI-layout root
with splits/test_files.txt, or one's own sequences with depth maps), its frames as network inputs, scored
as test.py scores them (utils.geometry.metrics.evaluate_images): median scaling, or deploy.json's factor
for metric weights.

The gate compares the standard evaluation metrics (docs/MLDA_NET.md §8: abs_rel, a1 = share of pixels
with max(d/d*, d*/d) < 1.25, ...) of the reduced model with those of the fp32 model on a held-out test
split with ground truth, and accepts when both
    |abs_rel_r - abs_rel_f| / abs_rel_f   <= max_abs_rel_change   (default 0.01: 1 % relative)
    100 |a1_r - a1_f|                     <= max_delta1_change    (default 0.5 points)
i.e. when score = max(first / max_abs_rel_change, second / max_delta1_change) <= 1.

Per-pixel figures, recorded only: over the same frames, the relative disparity error
    e = |s_r - s_f| / s_f,   s = 1/max_depth + (1/min_depth - 1/max_depth) disp
(s is disp_to_depth's scaled disparity, an inverse depth that is never 0, so e is also the relative
depth error |D_r - D_f| / D_r), as median, 95th percentile and worst pixel. This network's global
attention is in effect an argmax over channels, so int8 moves single pixels by several percent
(bench/RESULTS.md); the task metrics decide.
"""
import os
from collections import namedtuple

import numpy as np

from deployment.config import DeployError
from utils.cameras.kitti_layout import LayoutError
from utils.geometry.metrics import evaluate_images
from utils.io import image_io
from utils.io.eval_split import load_split, resolve_layout

DEFAULT_MAX_ABS_REL_CHANGE = 0.01
DEFAULT_MAX_DELTA1_CHANGE = 0.5
Bounds = namedtuple("Bounds", "max_abs_rel_change max_delta1_change")
DEFAULT_BOUNDS = Bounds(DEFAULT_MAX_ABS_REL_CHANGE, DEFAULT_MAX_DELTA1_CHANGE)


class GateSplit:
    """The frames of the test split of `root` as network inputs at height x width (`inputs`), their
    photos (`paths`), the split's `name`, and how its predictions are scaled (`scaling`): metric weights
    by their factor (deploy.json's depth_scale_factor), others by each image's median ratio."""

    def __init__(self, root, height, width, metric, scale_factor, log=print):
        layout = resolve_layout(None, root)
        if layout == "kitti" and not os.path.isfile(os.path.join(root, "splits", "test_files.txt")):
            raise DeployError(f"--gate_split {root}: no test split ({os.path.join(root, 'splits', 'test_files.txt')} "
                              "missing); python -m synthetic --out ROOT writes the synthetic KITTI with one, or give the "
                              "root of your own sequences with depth maps")
        try:
            self.split = load_split(root, os.path.join(root, "splits") if layout == "kitti" else None, layout, log)
            self.paths = self.split.image_paths()
        except LayoutError as e:
            raise DeployError(f"--gate_split {root}: {e}") from None
        self.name = f"{root} test split"
        self.mode, self.factor = ("factor", scale_factor) if metric else ("median", None)
        self.scaling = f"x{scale_factor:g}" if metric else "median"
        self.inputs = [image_io.preprocess(image_io.load_image(p), height, width) for p in self.paths]

    def errors(self, disparities, min_depth, max_depth, indices=None):
        """Per-image evaluation rows (N x 7, METRIC_NAMES' order) of the sigmoid disparities (1 x 1 x h x w
        each) of the frames `indices` (default: all, in order)."""
        indices = range(len(self.inputs)) if indices is None else indices
        scaled = [scaled_disparity(d[0, 0], min_depth, max_depth) for d in disparities]
        gts = [self.split.gt_depths[i] for i in indices]
        return evaluate_images(scaled, gts, self.mode, self.factor, rules=self.split.rules)[0]


def changes(before, after):
    """(relative change of abs_rel, change of a1 in points) from metrics `before` (fp32) to `after`."""
    return (after["abs_rel"] - before["abs_rel"]) / before["abs_rel"], 100.0 * (after["a1"] - before["a1"])


def score(before, after, bounds):
    """max(|abs_rel change| / its bound, |a1 change| / its bound): the gate accepts a score <= 1."""
    abs_rel, a1 = changes(before, after)
    return max(abs(abs_rel) / bounds.max_abs_rel_change, abs(a1) / bounds.max_delta1_change)


def check(before, after, bounds, precision, split_name):
    """Raise DeployError (nothing is written then) unless `after` is within `bounds` of `before`."""
    abs_rel, a1 = changes(before, after)
    if not score(before, after, bounds) <= 1:  # NaN fails too
        raise DeployError(
            f"the {precision} model moves abs_rel by {abs_rel:+.2%} of fp32's ({before['abs_rel']:.4f} -> "
            f"{after['abs_rel']:.4f}) and a1 by {a1:+.2f} points ({100 * before['a1']:.2f} -> "
            f"{100 * after['a1']:.2f} %) "
            f"on {split_name}, beyond the bounds of {bounds.max_abs_rel_change:.2%} and {bounds.max_delta1_change:g} "
            f"points; nothing written. Fine-tune the weights with train.py --qat, or accept it explicitly with "
            f"--max_abs_rel_change / --max_delta1_change")


def scaled_disparity(disp, min_depth, max_depth):
    """disp_to_depth's scaled disparity 1/max + (1/min - 1/max) disp (float64), an inverse depth > 0."""
    return 1.0 / max_depth + (1.0 / min_depth - 1.0 / max_depth) * np.asarray(disp, np.float64)


def relative_errors(reference, reduced, min_depth, max_depth):
    """Per-pixel |s_r - s_f| / s_f of lists of disparities (fp32 `reference`, `reduced`), flattened."""
    out = []
    for f, r in zip(reference, reduced):
        s_f, s_r = scaled_disparity(f, min_depth, max_depth), scaled_disparity(r, min_depth, max_depth)
        out.append((np.abs(s_r - s_f) / s_f).ravel())
    return np.concatenate(out)


def pixel_figures(reference, reduced, min_depth, max_depth):
    """{"median_rel_error", "p95_rel_error", "worst_pixel_rel_error"} of relative_errors."""
    errors = relative_errors(reference, reduced, min_depth, max_depth)
    return {"median_rel_error": float(np.median(errors)), "p95_rel_error": float(np.percentile(errors, 95)),
            "worst_pixel_rel_error": float(np.max(errors))}


def record(before, after, bounds, split, figures):
    """The "accuracy" entry of deploy.json: both metric sets, their changes, the bounds and the split,
    and the per-pixel figures."""
    abs_rel, a1 = changes(before, after)
    return dict(figures, metrics_fp32=before, metrics=after, abs_rel_change=abs_rel, delta1_change_points=a1,
                max_abs_rel_change=float(bounds.max_abs_rel_change),
                max_delta1_change=float(bounds.max_delta1_change),
                gate_split=split.name, gate_frames=len(split.inputs), gate_scaling=split.scaling,
                per_pixel_metric="|s_r - s_f| / s_f per pixel of the gate split's frames, "
                                 "s = 1/max_depth + (1/min_depth - 1/max_depth) disp")


def describe(config):
    """The one line inference.py prints about a folder's precision (None for fp32 folders)."""
    precision = config.get("precision", "fp32")
    if precision == "fp32":
        return None
    acc = config.get("accuracy", {})
    if "metrics" not in acc:
        return f"precision {precision} (no recorded accuracy)"
    before, after = acc["metrics_fp32"], acc["metrics"]
    return (f"precision {precision}: abs_rel {after['abs_rel']:.4f} (fp32 {before['abs_rel']:.4f}), a1 "
            f"{100 * after['a1']:.2f} % (fp32 {100 * before['a1']:.2f} %) on {acc['gate_split']} "
            f"({acc['gate_frames']} frames); per-pixel disparity change against fp32: median "
            f"{acc['median_rel_error']:.2%}, 95th percentile {acc['p95_rel_error']:.2%}")
