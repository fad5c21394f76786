"""Depth evaluation on KITTI with the standard protocol (spec section 8).

    python test.py --load_weights_folder WEIGHTS --data_path kitti_data --eval_split eigen --eval_mono
    python test.py --load_weights_folder WEIGHTS --eval_stereo --post_process --save_pred_disps
    python test.py --ext_disp_to_eval disps_eigen_split.npy --eval_mono      # no network

The network size and depth range come from the weights folder's opt.json (192 x 640, 0.1-100
without one). Ground truth: splits/<split>/gt_depths.npz, computed (and saved there) from the
velodyne scans, or for eigen_benchmark the annotated depth, when absent. Per image: the scaled
disparity is resized to the ground truth, inverted, masked by the split's rules as Monodepth2
(utils.kitti_layout.eval_rules: eigen keeps 1e-3 < gt < 80 inside the Garg crop, every other split
every gt > 0), scaled (median ratio with --eval_mono, x5.4 with --eval_stereo), clipped to
[1e-3, 80] and scored (utils.metrics.evaluate_depth); the seven errors are averaged over the images.
Refusals (e.g. --image_metrics on sparse ground truth) come before anything is written; the
json and the saved disparities appear atomically.
Saved disparities (--save_pred_disps, read by --ext_disp_to_eval) are Monodepth2's format:
the scaled disparities, N x H x W float32.
"""
import utils  # noqa: F401  (first import: silences Paddle's import-time ccache warning)
import json
import os
import sys

import numpy as np
import paddle
from tqdm import tqdm

import networks
import options
from networks.layers import disp_to_depth
from datasets import DataError, KITTIRAWDataset, read_split
from utils import kitti_layout
from utils.fileio import atomic_write, atomic_write_text
from utils.kitti_layout import STEREO_SCALE_FACTOR
from utils.metrics import METRIC_NAMES, evaluate_depth, post_process_disparity
from utils.system import RuntimeSetupError, setup_runtime

DENSE_FRACTION = 0.5  # ground truth counts as dense when at least this share of pixels is valid


def fail(message):
    sys.exit(f"test.py: error: {message}")


def resolve_split(eval_split):
    """A split name under splits/ or a folder path -> the folder holding test_files.txt."""
    folder = kitti_layout.split_folder(eval_split)
    if not os.path.isfile(os.path.join(folder, "test_files.txt")):
        fail(f"--eval_split {eval_split}: {os.path.join(folder, 'test_files.txt')} not found "
             "(use eigen, eigen_benchmark or a folder with test_files.txt)")
    return folder


def read_lines(split_dir):
    try:
        return read_split(os.path.join(split_dir, "test_files.txt"))
    except DataError as e:
        fail(e)


@paddle.no_grad()
def predict_disparities(depth_net, loader, min_depth, max_depth, post_process=False):
    """Scaled scale-0 disparities (after disp_to_depth), N x H x W float32; with post_process each
    batch also holds the mirrored images and the two predictions are blended."""
    disps = []
    for inputs in tqdm(loader, desc="predict", unit="batch"):
        images = inputs[("color", 0, 0)]
        if post_process:
            images = paddle.concat([images, images.flip([3])], axis=0)
        disp = depth_net.disparity(images)
        scaled = disp_to_depth(disp, min_depth, max_depth)[0].numpy()[:, 0]
        if post_process:
            n = scaled.shape[0] // 2
            scaled = post_process_disparity(scaled[:n], scaled[n:, :, ::-1])
        disps.append(scaled.astype(np.float32))
    return np.concatenate(disps)


def load_gt_depths(split_dir, data_path):
    """<split folder>/gt_depths.npz (key "data"), exported there first when absent (velodyne scans,
    or KITTI's annotated depth for eigen_benchmark: export_gt_depth.py)."""
    path = os.path.join(split_dir, "gt_depths.npz")
    if not os.path.isfile(path):
        from export_gt_depth import export_gt_depth
        print(f"-> {path} not found: computing the ground truth from {data_path}")
        try:
            export_gt_depth(data_path, split_dir)
        except (OSError, ValueError) as e:
            fail(f"cannot compute the ground truth for {split_dir}: {e}")
    return list(np.load(path, allow_pickle=True, fix_imports=True, encoding="latin1")["data"])


def evaluate(pred_disps, gt_depths, mode="median", stereo_factor=STEREO_SCALE_FACTOR, rules=None):
    """Per-image errors (N x 7) and scale ratios (N) of scaled disparities against gt maps, masked by
    `rules` (kitti_layout.eval_rules(split); None: eigen's)."""
    rules = rules or kitti_layout.eval_rules("eigen")
    errors, ratios = [], []
    for disp, gt in zip(pred_disps, gt_depths):
        e, r = evaluate_depth(gt, disp, mode=mode, stereo_factor=stereo_factor, **rules)
        errors.append(e)
        ratios.append(r)
    return np.array(errors), np.array(ratios)


def is_dense(gt_depths):
    return all((gt > 0).mean() >= DENSE_FRACTION for gt in gt_depths)


def image_metrics(pred_disps, gt_depths, ratios, max_depth=80.0, min_depth=1e-3):
    """RMSE, PSNR and SSIM (skimage.metrics) between the ground truth and the scaled, clipped
    predicted depth at its size, both mapped to 0-255 by the ground truth's maximum; invalid
    ground-truth pixels are 0 in both. Averaged over the images."""
    import cv2
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


def main(argv=None):
    opt = options.parse("test", argv)
    mode = "stereo" if opt.eval_stereo else "median"
    split_dir = resolve_split(opt.eval_split)
    split_name = os.path.basename(os.path.normpath(split_dir))
    lines = read_lines(split_dir)
    out_dir = opt.eval_out_dir or (os.path.dirname(os.path.abspath(opt.ext_disp_to_eval)) if opt.ext_disp_to_eval
                                   else opt.load_weights_folder)
    rules = kitti_layout.eval_rules(split_dir)

    # the ground truth first: a refusal must come before anything is predicted or written
    gt_depths = load_gt_depths(split_dir, opt.data_path)
    if opt.image_metrics and not is_dense(gt_depths):
        fail("--image_metrics needs dense ground truth (at least half the pixels valid in every map); "
             f"{split_dir}'s maps are sparse (velodyne), where RMSE/PSNR/SSIM of images mean nothing; drop "
             "--image_metrics or export dense maps first (synthetic KITTI: export_gt_depth.py --source annotated)")

    if opt.ext_disp_to_eval:
        print(f"-> Loading predictions from {opt.ext_disp_to_eval}")
        try:
            pred_disps = np.load(opt.ext_disp_to_eval)
        except (OSError, ValueError) as e:
            fail(f"--ext_disp_to_eval {opt.ext_disp_to_eval}: not a saved disparity array ({e})")
    else:
        try:
            setup_runtime(opt.device, opt.num_threads)
        except RuntimeSetupError as e:
            fail(e)
        try:
            wopt, nets = networks.load_weights_folder(opt.load_weights_folder, ("depth",), opt.batch_coupled_filter)
        except networks.CheckpointError as e:
            fail(e)
        try:
            dataset = KITTIRAWDataset(opt.data_path, lines, int(wopt.height), int(wopt.width), [0], num_scales=1,
                                      is_train=False, img_ext=".png" if opt.png else ".jpg", load_depth=False)
        except DataError as e:
            fail(e)
        print(f"-> Predicting {len(dataset)} images at {wopt.width} x {wopt.height} with {opt.load_weights_folder}")
        loader = paddle.io.DataLoader(dataset, batch_size=opt.batch_size, shuffle=False, num_workers=opt.num_workers)
        try:
            pred_disps = predict_disparities(nets["depth"], loader, float(wopt.min_depth), float(wopt.max_depth),
                                             opt.post_process)
        except (OSError, ValueError) as e:  # an unreadable image
            fail(e)
        if opt.save_pred_disps:
            os.makedirs(out_dir, exist_ok=True)
            path = os.path.join(out_dir, f"disps_{split_name}_split.npy")
            atomic_write(path, lambda tmp: np.save(tmp, pred_disps))
            print(f"-> Saved predicted disparities to {path}")

    if len(pred_disps) != len(gt_depths):
        fail(f"{len(pred_disps)} predictions for {len(gt_depths)} ground-truth maps of {split_dir}")

    print(f"-> Evaluating {len(gt_depths)} images, " +
          ("median scaling" if mode == "median" else f"fixed scale factor {STEREO_SCALE_FACTOR}") + ", " +
          ("Garg crop, 1e-3 < gt < 80" if rules["garg_crop"] else "every gt > 0 (no crop)"))
    errors, ratios = evaluate(pred_disps, gt_depths, mode, rules=rules)
    mean_errors = errors.mean(axis=0)
    result = {"split": split_name, "num_images": len(gt_depths), "scaling": mode,
              "post_process": bool(opt.post_process), "metrics": dict(zip(METRIC_NAMES, map(float, mean_errors)))}
    if mode == "median":
        med, std = float(np.median(ratios)), float(np.std(ratios / np.median(ratios)))
        print(f" Scaling ratios | med: {med:0.3f} | std: {std:0.3f}")
        result.update(ratio_median=med, ratio_std=std)
    print("\n" + format_table(mean_errors))
    if opt.image_metrics:
        result["image_metrics"] = image_metrics(pred_disps, gt_depths, ratios)
        im = result["image_metrics"]
        print(f"\n  image metrics (0-255): rmse {im['rmse_255']:.3f} | psnr {im['psnr']:.2f} dB | ssim {im['ssim']:.4f}")
    os.makedirs(out_dir, exist_ok=True)
    json_path = os.path.join(out_dir, f"eval_{split_name}_{'mono' if mode == 'median' else 'stereo'}"
                                      f"{'_pp' if opt.post_process else ''}.json")
    atomic_write_text(json_path, json.dumps(result, indent=2))
    print(f"\n-> Results written to {json_path}\n-> Done!")
    return result


if __name__ == "__main__":
    main()
