"""Depth evaluation on KITTI with the standard protocol (spec section 8), or on one's own sequences.

    python test.py --load_weights_folder WEIGHTS --data_path kitti_data --eval_split eigen --eval_mono
    python test.py --load_weights_folder WEIGHTS --eval_stereo --post_process --save_pred_disps
    python test.py --ext_disp_to_eval disps_eigen_split.npy --eval_mono      # no network
    python test.py --load_weights_folder WEIGHTS --data_path ROOT            # one's own camera (ROOT/camera.json)

The network size and depth range come from the weights folder's opt.json (192 x 640, 0.1-100
without one). Ground truth: splits/<split>/gt_depths.npz, computed (and saved there) from the
velodyne scans, or for eigen_benchmark the annotated depth, when absent. Per image: the scaled
disparity is resized to the ground truth, inverted, masked by the split's rules as Monodepth2
(utils.kitti_layout.eval_rules: eigen keeps 1e-3 < gt < 80 inside the Garg crop, every other split
every gt > 0), scaled (median ratio with --eval_mono, x5.4 with --eval_stereo, none with
--eval_metric), clipped to [1e-3, 80] and scored (utils.metrics.evaluate_depth); the seven errors
are averaged over the images. Without a scaling flag: none for weights whose opt.json records
"metric": true, else the median ratio. The per-image ratio median(gt) / median(pred) is printed
(and stored) whatever the scaling: with metric weights it says how far from metres they are.
--camera_height H scales each prediction by its own ground-plane factor instead (utils/ground_plane.py:
H over the distance of the road plane fitted in its lower band, KITTI's camera or the folder layout's at
the prediction's size); frames without a road plane take the median of the others' factors, and the
share of such frames and each factor's error against the median ratio are printed and stored.

The folder layout (utils/folder_layout.py; --dataset folder, or found by <data_path>/camera.json):
the test lines of <data_path>/splits/test_files.txt (made by the layout's rule when there are no
split files; --eval_split FOLDER for another), ground truth read from ROOT/<sequence>/depth
(.npy metres, or .png uint16 / 256) each run, every gt > 0 counting (no crop), predictions clipped
only below (1e-3); --eval_stereo there means no scaling, since stereo trains with the real baseline.
Refusals (e.g. --image_metrics on sparse ground truth, a test frame without a depth map) come
before anything is written; the json and the saved disparities appear atomically.
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
from datasets import DataError, FolderDataset, KITTIRAWDataset, batch_to_float
from eval_split import SplitError, evaluate, load_split, resolve_layout
from utils import folder_layout, ground_plane, kitti_layout
from utils.fileio import atomic_write, atomic_write_text
from utils.kitti_layout import STEREO_SCALE_FACTOR
from utils.metrics import METRIC_NAMES, median_ratio, post_process_disparity
from utils.system import RuntimeSetupError, setup_runtime

DENSE_FRACTION = 0.5  # ground truth counts as dense when at least this share of pixels is valid


def fail(message):
    sys.exit(f"test.py: error: {message}")


@paddle.no_grad()
def predict_disparities(depth_net, loader, min_depth, max_depth, post_process=False):
    """Scaled scale-0 disparities (after disp_to_depth), N x H x W float32; with post_process each
    batch also holds the mirrored images and the two predictions are blended."""
    disps = []
    for inputs in tqdm(loader, desc="predict", unit="batch"):
        images = batch_to_float(inputs)[("color", 0, 0)]
        if post_process:
            images = paddle.concat([images, images.flip([3])], axis=0)
        disp = depth_net.disparity(images)
        scaled = disp_to_depth(disp, min_depth, max_depth)[0].numpy()[:, 0]
        if post_process:
            n = scaled.shape[0] // 2
            scaled = post_process_disparity(scaled[:n], scaled[n:, :, ::-1])
        disps.append(scaled.astype(np.float32))
    return np.concatenate(disps)


@paddle.no_grad()
def predict_refined_disparities(net, loader, ddim_steps, strength, noise_seed):
    """1 / depth of a RefinedDepthNet (the diffusion head's metric depth), N x H x W float32, every
    image from the same seeded start noise."""
    disps = []
    for inputs in tqdm(loader, desc=f"refine ({ddim_steps} steps)", unit="batch"):
        images = batch_to_float(inputs)[("color", 0, 0)]
        noise = net.noise_for(images.shape[2], images.shape[3], noise_seed)
        disps.append((1.0 / net(images, noise, ddim_steps, strength)).numpy()[:, 0].astype(np.float32))
    return np.concatenate(disps)


def evaluate_refined(opt, depth_net, loader, gt_depths, rules):
    """The weights folder's diffusion head (refine.pdparams): its depth unscaled (it is metric) and,
    for comparison, median-scaled, for each --ddim_steps. Returns {"strength", "noise_seed",
    "ddim_steps": {steps: {"none" | "median": metrics}}}, stored in the results json as "refined"."""
    try:
        net = networks.RefinedDepthNet(depth_net, networks.load_refine_head(opt.load_weights_folder)).eval()
    except networks.CheckpointError as e:
        fail(e)
    cfg = net.head.config
    strength = opt.strength or cfg["strength"]
    seed = cfg["noise_seed"] if opt.noise_seed is None else opt.noise_seed
    results = {}
    for steps in opt.ddim_steps or [cfg["ddim_steps"]]:
        disps = predict_refined_disparities(net, loader, steps, strength, seed)
        results[str(steps)] = {}
        for mode in ("none", "median"):
            errors, _ = evaluate(disps, gt_depths, mode, rules=rules)
            results[str(steps)][mode] = dict(zip(METRIC_NAMES, map(float, errors.mean(axis=0))))
            scaling = "unscaled (metric)" if mode == "none" else "median scaling"
            print(f"\n-> Diffusion refinement, {steps} DDIM steps, strength {strength}, {scaling}:\n"
                  + format_table(errors.mean(axis=0)))
    return {"strength": strength, "noise_seed": seed, "ddim_steps": results}


def ground_scales(pred_disps, intrinsics_of, camera_height):
    """Per image the factor that brings 1 / scaled disparity to metres from the road plane
    (utils.ground_plane.ground_scale with the intrinsics `intrinsics_of(i)` at the prediction's size).
    A frame without a road plane takes the median of the other frames' factors: median scaling against
    the ground truth would flatter the method. Returns (factors N, failed N bool), or fails when no frame
    has a road plane."""
    fits = [ground_plane.ground_scale(1.0 / disp, intrinsics_of(i), camera_height)
            for i, disp in enumerate(tqdm(pred_disps, desc="ground plane", unit="image"))]
    failed = np.array([f.scale is None for f in fits])
    if failed.all():
        fail(f"--camera_height: no frame has a road plane ({fits[0].describe()}); evaluate with --eval_mono")
    scales = np.array([np.nan if f.scale is None else f.scale for f in fits])
    return np.where(failed, np.median(scales[~failed]), scales), failed


def median_ratios(pred_disps, gt_depths, rules):
    """Per image median(gt) / median(unscaled predicted depth) over the pixels that count."""
    return np.array([median_ratio(gt, disp, **rules) for disp, gt in zip(pred_disps, gt_depths)])


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


def scaling_mode(opt, wopt, layout_name):
    """How predictions become metres: "median" (per image), "stereo" (x5.4, KITTI's stereo training
    units), "ground" (per image from the road plane, --camera_height) or "none" (metric weights).
    --eval_stereo on the folder layout is "none": there stereo trains with the camera's real baseline.
    Without a flag: "none" for weights whose opt.json says "metric": true, else "median"."""
    if opt.camera_height:
        return "ground"
    if opt.eval_metric or (opt.eval_stereo and layout_name == "folder"):
        return "none"
    if opt.eval_stereo:
        return "stereo"
    if not opt.eval_mono and wopt is not None and wopt.get("metric"):
        return "none"
    return "median"


SCALING_TEXT = {"median": "median scaling", "stereo": f"fixed scale factor {STEREO_SCALE_FACTOR}",
                "none": "no scaling (metric depth)", "ground": "ground-plane scale per image (--camera_height)"}
RESULT_TAG = {"median": "mono", "stereo": "stereo", "none": "metric", "ground": "ground"}


def main(argv=None):
    opt = options.parse("test", argv)
    layout_name = resolve_layout(opt.dataset, opt.data_path)
    try:  # the ground truth first: a refusal must come before anything is predicted or written
        split = load_split(opt.data_path, opt.eval_split, layout_name)
    except SplitError as e:
        fail(e)
    split_dir, split_name, lines = split.split_dir, split.name, split.lines
    rules, gt_depths = split.rules, split.gt_depths
    out_dir = opt.eval_out_dir or (os.path.dirname(os.path.abspath(opt.ext_disp_to_eval)) if opt.ext_disp_to_eval
                                   else opt.load_weights_folder)
    if opt.image_metrics and not is_dense(gt_depths):
        fail("--image_metrics needs dense ground truth (at least half the pixels valid in every map); "
             f"{split_dir}'s maps are sparse{' (velodyne)' if layout_name == 'kitti' else ''}, where "
             "RMSE/PSNR/SSIM of images mean nothing; drop --image_metrics or "
             + ("export dense maps first (synthetic KITTI: export_gt_depth.py --source annotated)"
                if layout_name == "kitti" else "evaluate a split of the frames with dense depth maps (--eval_split)"))

    wopt = None
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
            if layout_name == "folder":
                dataset = FolderDataset(opt.data_path, lines, int(wopt.height), int(wopt.width), [0], num_scales=1,
                                        is_train=False, load_depth=False)
            else:
                dataset = KITTIRAWDataset(opt.data_path, lines, int(wopt.height), int(wopt.width), [0], num_scales=1,
                                          is_train=False, img_ext=".png" if opt.png else ".jpg", load_depth=False)
        except DataError as e:
            fail(e)
        print(f"-> Predicting {len(dataset)} images at {wopt.width} x {wopt.height} with {opt.load_weights_folder}")
        loader = paddle.io.DataLoader(dataset, batch_size=opt.batch_size, shuffle=False, num_workers=opt.num_workers)
        try:
            pred_disps = predict_disparities(nets["depth"], loader, float(wopt.min_depth), float(wopt.max_depth),
                                             opt.post_process)
        except (OSError, ValueError) as e:  # an unreadable image (DataError: a resized copy with a stale camera)
            fail(e)
        if opt.save_pred_disps:
            os.makedirs(out_dir, exist_ok=True)
            path = os.path.join(out_dir, f"disps_{split_name}_split.npy")
            atomic_write(path, lambda tmp: np.save(tmp, pred_disps))
            print(f"-> Saved predicted disparities to {path}")

    if len(pred_disps) != len(gt_depths):
        fail(f"{len(pred_disps)} predictions for {len(gt_depths)} ground-truth maps of {split_dir}")

    mode = scaling_mode(opt, wopt, layout_name)
    print(f"-> Evaluating {len(gt_depths)} images, {SCALING_TEXT[mode]}, " +
          ("Garg crop, 1e-3 < gt < 80" if rules["garg_crop"] else "every gt > 0 (no crop)"))
    if mode == "ground":   # KITTI's camera, or the folder layout's (each line's sequence), at the prediction's size
        h, w = pred_disps.shape[1:]
        intrinsics_of = ((lambda i: folder_layout.intrinsics(folder_layout.camera_of(
            opt.data_path, lines[i].split()[0]), w, h)) if layout_name == "folder"
            else (lambda i: kitti_layout.intrinsics(w, h)))
        factors, failed = ground_scales(pred_disps, intrinsics_of, opt.camera_height)
        errors, ratios = evaluate(pred_disps, gt_depths, "stereo", factors, rules=rules)
    else:
        errors, ratios = evaluate(pred_disps, gt_depths, mode, rules=rules)
    mean_errors = errors.mean(axis=0)
    result = {"split": split_name, "num_images": len(gt_depths), "scaling": mode,
              "post_process": bool(opt.post_process), "metrics": dict(zip(METRIC_NAMES, map(float, mean_errors)))}
    # median(gt) / median(pred) per image: the factor of median scaling; without scaling, how far the
    # weights' own scale is from the ground truth's (1 = metric)
    medians = ratios if mode == "median" else median_ratios(pred_disps, gt_depths, rules)
    med, std = float(np.median(medians)), float(np.std(medians / np.median(medians)))
    if mode == "median":
        print(f" Scaling ratios | med: {med:0.3f} | std: {std:0.3f}")
    else:
        meaning = {"none": "1 = metres", "ground": "the ground plane's factors are compared below"}.get(
            mode, f"the fixed factor is {STEREO_SCALE_FACTOR}")
        print(f" Median ratios gt / pred (not applied; {meaning}) | med: {med:0.3f} | std: {std:0.3f}")
    result.update(ratio_median=med, ratio_std=std)
    if mode == "ground":   # how far each frame's ground-plane factor is from the ground truth's median ratio
        scale_error = ratios[~failed] / medians[~failed] - 1
        result["ground_plane"] = {"camera_height": opt.camera_height, "failed_share": float(failed.mean()),
                                  "scale_error_median_abs": float(np.median(np.abs(scale_error))),
                                  "scale_error_mean": float(np.mean(scale_error))}
        print(f" Ground plane (camera height {opt.camera_height:g} m) | no road plane in {failed.sum()} of "
              f"{len(failed)} frames (given the others' median factor) | factor / median ratio - 1: median |.| "
              f"{100 * result['ground_plane']['scale_error_median_abs']:.1f} %, mean "
              f"{100 * result['ground_plane']['scale_error_mean']:+.1f} %")
    print("\n" + format_table(mean_errors))
    if not opt.ext_disp_to_eval and opt.refine and networks.has_refine_head(opt.load_weights_folder):
        result["refined"] = evaluate_refined(opt, nets["depth"], loader, gt_depths, rules)
    if opt.image_metrics:
        result["image_metrics"] = image_metrics(pred_disps, gt_depths, ratios, rules["max_depth"], rules["min_depth"])
        im = result["image_metrics"]
        print(f"\n  image metrics (0-255): rmse {im['rmse_255']:.3f} | psnr {im['psnr']:.2f} dB | ssim {im['ssim']:.4f}")
    os.makedirs(out_dir, exist_ok=True)
    json_path = os.path.join(out_dir, f"eval_{split_name}_{RESULT_TAG[mode]}{'_pp' if opt.post_process else ''}.json")
    atomic_write_text(json_path, json.dumps(result, indent=2))
    print(f"\n-> Results written to {json_path}\n-> Done!")
    return result


if __name__ == "__main__":
    main()
