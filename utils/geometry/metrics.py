"""The evaluation protocol of docs/MLDA_NET.md §8, in one place: errors, Garg crop, scaling, per-image
evaluation, a test set's errors and table (test.py) and Monodepth's post-processing. Which mask a split
uses (Garg crop and 1e-3 < gt < 80 for eigen, gt > 0 for every other split) is
utils.cameras.kitti_layout.eval_rules(split), passed here as keyword arguments:
evaluate_depth(gt, disp, mode, **eval_rules(split))."""
import cv2
import numpy as np

from utils.cameras.kitti_layout import STEREO_SCALE_FACTOR

MIN_EVAL_DEPTH, MAX_EVAL_DEPTH = 1e-3, 80.0
DENSE_FRACTION = 0.5  # ground truth counts as dense when at least this share of pixels is valid
METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")


def compute_depth_errors(gt, pred):
    """Seven standard errors between valid ground-truth and predicted depths (1-D arrays):
    abs_rel = mean(|g - p| / g), sq_rel = mean((g - p)^2 / g), rmse, rmse_log, and
    a_k = fraction with max(g/p, p/g) < 1.25^k."""
    gt, pred = np.asarray(gt, np.float64), np.asarray(pred, np.float64)
    thresh = np.maximum(gt / pred, pred / gt)
    a1, a2, a3 = [float((thresh < 1.25 ** k).mean()) for k in (1, 2, 3)]
    rmse = float(np.sqrt(((gt - pred) ** 2).mean()))
    rmse_log = float(np.sqrt(((np.log(gt) - np.log(pred)) ** 2).mean()))
    abs_rel = float((np.abs(gt - pred) / gt).mean())
    sq_rel = float(((gt - pred) ** 2 / gt).mean())
    return abs_rel, sq_rel, rmse, rmse_log, a1, a2, a3


def garg_crop_mask(h, w):
    """Eigen/Garg crop: rows int(0.40810811 h):int(0.99189189 h), columns
    int(0.03594771 w):int(0.96405229 w) (upper bounds exclusive)."""
    mask = np.zeros((h, w), dtype=bool)
    mask[int(0.40810811 * h):int(0.99189189 * h), int(0.03594771 * w):int(0.96405229 * w)] = True
    return mask


def evaluation_mask(gt, min_depth=MIN_EVAL_DEPTH, max_depth=MAX_EVAL_DEPTH, garg_crop=True, cap_gt=True):
    """Pixels that count: min_depth < gt < max_depth when `cap_gt`, else every gt > 0 (Monodepth2's
    rule for the splits other than eigen); and inside the Garg crop when `garg_crop`."""
    mask = (gt > min_depth) & (gt < max_depth) if cap_gt else gt > 0
    return mask & garg_crop_mask(*gt.shape) if garg_crop else mask


def scale_prediction(pred, gt, mode="median", factor=STEREO_SCALE_FACTOR):
    """Bring predicted depths to metres: "median" multiplies by the image's own median(gt) / median(pred),
    "factor" by the given `factor` (a fixed one such as KITTI's stereo 5.4, the default, or one the caller
    found for this image, e.g. from the ground plane), "none" leaves them. Returns (scaled, ratio)."""
    if mode == "median":
        ratio = float(np.median(gt) / np.median(pred))
    elif mode == "factor":
        ratio = float(factor)
    elif mode == "none":
        ratio = 1.0
    else:
        raise ValueError(f"scaling mode must be 'median', 'factor' or 'none', got {mode!r}")
    return pred * ratio, ratio


def evaluate_depth(gt_depth, pred_disp, mode="median", min_depth=MIN_EVAL_DEPTH, max_depth=MAX_EVAL_DEPTH,
                   factor=STEREO_SCALE_FACTOR, garg_crop=True, cap_gt=True):
    """Evaluate one image: the scaled disparity (after disp_to_depth) at network resolution is
    resized to the ground truth's size (cv2 INTER_LINEAR, half-pixel), inverted to depth, masked
    (evaluation_mask; the defaults are eigen's rules), scaled, clipped to [min_depth, max_depth].
    Returns (errors tuple, scale ratio)."""
    gt, pred = masked_depths(gt_depth, pred_disp, min_depth, max_depth, garg_crop, cap_gt)
    pred, ratio = scale_prediction(pred, gt, mode, factor)
    pred = np.clip(pred, min_depth, max_depth)
    return compute_depth_errors(gt, pred), ratio


def masked_depths(gt_depth, pred_disp, min_depth=MIN_EVAL_DEPTH, max_depth=MAX_EVAL_DEPTH, garg_crop=True,
                  cap_gt=True):
    """(ground truth, unscaled predicted depth) at the pixels that count (1-D each): the disparity
    resized to the ground truth's size (cv2 INTER_LINEAR), inverted, masked by evaluation_mask."""
    h, w = gt_depth.shape
    disp = cv2.resize(np.asarray(pred_disp, np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    mask = evaluation_mask(gt_depth, min_depth, max_depth, garg_crop, cap_gt)
    if not mask.any():
        raise ValueError("no ground-truth pixel inside the evaluation range and crop")
    return gt_depth[mask], 1.0 / disp[mask]


def median_ratio(gt_depth, pred_disp, **rules):
    """median(gt) / median(predicted depth) over the pixels that count: the factor median scaling
    would apply, 1 for a prediction already in the ground truth's units (metric weights)."""
    gt, pred = masked_depths(gt_depth, pred_disp, **rules)
    return float(np.median(gt) / np.median(pred))


def evaluate_images(pred_disps, gt_depths, mode="median", factors=None, rules=None):
    """Per-image errors (N x 7) and scale ratios (N) of scaled disparities against gt maps, masked by
    `rules` (utils.cameras.kitti_layout.eval_rules(split); None: eigen's). mode: scale_prediction's
    ("median", "factor", "none"); `factors` with "factor": one factor for every image, or one per image."""
    rules = rules or {}
    errors, ratios = [], []
    factors = np.broadcast_to(np.asarray(1.0 if factors is None else factors, dtype=np.float64), (len(pred_disps),))
    for disp, gt, factor in zip(pred_disps, gt_depths, factors):
        e, r = evaluate_depth(gt, disp, mode=mode, factor=float(factor), **rules)
        errors.append(e)
        ratios.append(r)
    return np.array(errors), np.array(ratios)


def mean_metrics(errors):
    """{metric name: mean over the images} of per-image errors (N x 7, METRIC_NAMES' order)."""
    return dict(zip(METRIC_NAMES, map(float, np.asarray(errors, np.float64).mean(axis=0))))


def median_ratios(pred_disps, gt_depths, rules):
    """Per image median(gt) / median(unscaled predicted depth) over the pixels that count."""
    return np.array([median_ratio(gt, disp, **rules) for disp, gt in zip(pred_disps, gt_depths)])


def is_dense(gt_depths):
    return all((gt > 0).mean() >= DENSE_FRACTION for gt in gt_depths)


def image_metrics(pred_disps, gt_depths, ratios, max_depth=80.0, min_depth=1e-3):
    """RMSE, PSNR and SSIM (skimage.metrics) between the ground truth and the scaled, clipped
    predicted depth at its size, both mapped to 0-255 by the ground truth's maximum; invalid
    ground-truth pixels are 0 in both. Averaged over the images."""
    from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

    out = []
    for disp, gt, ratio in zip(pred_disps, gt_depths, ratios):
        h, w = gt.shape
        pred = np.clip(ratio / cv2.resize(disp, (w, h), interpolation=cv2.INTER_LINEAR), min_depth, max_depth)
        valid = gt > 0
        peak = float(gt.max())
        g = np.where(valid, gt, 0.0) / peak * 255.0
        p = np.clip(np.where(valid, pred, 0.0) / peak * 255.0, 0.0, 255.0)
        out.append((np.sqrt(mean_squared_error(g, p)), peak_signal_noise_ratio(g, p, data_range=255.0),
                    structural_similarity(g, p, data_range=255.0)))
    mean = np.array(out).mean(axis=0)
    return {"rmse_255": float(mean[0]), "psnr": float(mean[1]), "ssim": float(mean[2])}


def format_table(mean_errors):
    """The field's table: a header, the row, and a LaTeX-ready row."""
    header = "  " + " | ".join(f"{n:>8}" for n in METRIC_NAMES)
    row = "  " + " | ".join(f"{v:8.3f}" for v in mean_errors)
    latex = " & ".join(f"{v:.3f}" for v in mean_errors) + r" \\"
    return f"{header}\n{row}\n  LaTeX: {latex}"


def post_process_disparity(l_disp, r_disp):
    """Monodepth's blend of a prediction `l_disp` and the prediction of the mirrored image flipped
    back `r_disp` (..., h, w): the mean in the middle, each one alone near the border it sees."""
    w = l_disp.shape[-1]
    x = np.linspace(0, 1, w)
    l_mask = 1.0 - np.clip(20 * (x - 0.05), 0, 1)
    r_mask = l_mask[::-1]
    m_disp = 0.5 * (l_disp + r_disp)
    return r_mask * l_disp + l_mask * r_disp + (1.0 - l_mask - r_mask) * m_disp
