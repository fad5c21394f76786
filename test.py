"""Depth evaluation on KITTI with the standard protocol (docs/MLDA_NET.md §8), or on one's own sequences.

    python test.py --load_weights_folder WEIGHTS --data_path kitti_data --eval_split eigen --eval_mono
    python test.py --load_weights_folder WEIGHTS --eval_stereo --post_process --save_pred_disps
    python test.py --ext_disp_to_eval disps_eigen_split.npy --eval_mono      # no network
    python test.py --load_weights_folder WEIGHTS --data_path ROOT            # one's own camera (ROOT/camera.json)

The network size and depth range come from the weights folder's opt.json (192 x 640, 0.1-100
without one). Ground truth: splits/<split>/gt_depths.npz, computed (and saved there) from the
velodyne scans, or for eigen_benchmark the annotated depth, when absent. Per image: the scaled
disparity is resized to the ground truth, inverted, masked by the split's rules as Monodepth2
(utils.cameras.kitti_layout.eval_rules: eigen keeps 1e-3 < gt < 80 inside the Garg crop, every other
split every gt > 0), scaled (the image's own median ratio with --eval_mono, the fixed factor 5.4 with
--eval_stereo, none with --eval_metric), clipped to [1e-3, 80] and scored
(utils.geometry.metrics.evaluate_depth); the seven errors are averaged over the images. Without a
scaling flag: none for weights whose opt.json records "metric": true, else the median ratio. The
per-image ratio median(gt) / median(pred) is printed (and stored) whatever the scaling: with metric
weights it says how far from metres they are. --camera_height H scales each prediction by its own
ground-plane factor instead (utils/geometry/ground_plane.py: H over the distance of the road plane fitted
in its lower band, KITTI's camera or the folder layout's at the prediction's size); frames without a
road plane take the median of the others' factors, and the share of such frames and each factor's error
against the median ratio are printed and stored.

The folder layout (utils/cameras/folder_layout.py; --dataset folder, or found by <data_path>/camera.json):
the test lines of <data_path>/splits/test_files.txt (made by the layout's rule when there are no
split files; --eval_split FOLDER for another), ground truth read from ROOT/<sequence>/depth
(.npy metres, or .png uint16 / 256) each run, every gt > 0 counting (no crop), predictions clipped
only below (1e-3); --eval_stereo there means no scaling, since stereo trains with the real baseline.
TAE (Video Depth Anything's temporal alignment error, utils/geometry/temporal.py; README 'Videos') is printed
beside the errors when the test lines hold runs of consecutive left frames of one sequence whose camera poses
are known: the synthetic KITTI's poses/<drive>.txt, KITTI raw's oxts with the date's calibration, the folder
layout's <sequence>/poses.txt (one 3 x 4 camera-to-world matrix a line, a line per frame of left/). Each run's
predicted depths get one disparity scale and shift; the pixels that count are the ground truth's where it is
dense, the evaluated region (Garg crop for eigen) where it is sparse; the runs' TAEs are averaged.
Refusals (e.g. --image_metrics on sparse ground truth, a test frame without a depth map) come
before anything is written; the json and the saved disparities appear atomically.
Saved disparities (--save_pred_disps, read by --ext_disp_to_eval) are Monodepth2's format:
the scaled disparities, N x H x W float32.

Reads top to bottom as main does: load (the test set and its ground truth), predict (the network or the
saved disparities), score (the errors under the run's scaling), report (the table and the json).
"""
import utils  # noqa: F401  (first import: silences Paddle's import-time ccache warning)
import options
options.check_before_imports("test", __name__)
import json
import os
import sys
from dataclasses import dataclass

import cv2
import numpy as np
import paddle
from tqdm import tqdm

import networks
from networks.layers import disp_to_depth
from datasets import DataError, FolderDataset, KITTIRAWDataset, batch_to_float
from utils.cameras import camera, folder_layout, kitti_layout
from utils.cameras.poses import PoseError, camera_matrix, sequence_poses
from utils.cameras.kitti_layout import STEREO_SCALE_FACTOR
from utils.geometry import ground_plane
from utils.geometry.metrics import (METRIC_NAMES, evaluate_images, format_table, garg_crop_mask, image_metrics, is_dense,
                                    mean_metrics, median_ratios, post_process_disparity)
from utils.geometry.temporal import consecutive_runs, temporal_alignment_error
from utils.io.eval_split import EvalSplit, load_split, resolve_layout
from utils.sensors.oxts import OxtsError
from utils.io.fileio import atomic_write, atomic_write_text
from utils.system import RuntimeSetupError, setup_runtime

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
            errors, _ = evaluate_images(disps, gt_depths, mode, rules=rules)
            results[str(steps)][mode] = mean_metrics(errors)
    return {"strength": strength, "noise_seed": seed, "ddim_steps": results}


def ground_scales(pred_disps, intrinsics_of, camera_height):
    """Per image the factor that brings 1 / scaled disparity to metres from the road plane
    (utils.geometry.ground_plane.ground_scale with the intrinsics `intrinsics_of(i)` at the prediction's size).
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


def scaling_mode(opt, wopt, layout_name):
    """How predictions become metres: "median" (per image from the ground truth), "stereo" (the fixed
    factor 5.4 of KITTI's stereo training units), "ground" (per image from the road plane, --camera_height)
    or "none" (metric weights). --eval_stereo on the folder layout is "none": there stereo trains with the
    camera's real baseline. Without a flag: "none" for weights whose opt.json says "metric": true, else
    "median". The name is stored in the results ("scaling") and names their file (RESULT_TAG)."""
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


# ---------------------------------------------------------------------------------- load
@dataclass
class TestSet(EvalSplit):
    """What is evaluated (utils.io.eval_split.EvalSplit: the layout, the split's folder and name, its test
    lines, the masking rules and the ground-truth maps) and where the results go."""
    out_dir: str = None


def load(opt):
    """The test set of the command line, ground truth included: a refusal (a missing or empty map,
    --image_metrics on sparse maps) comes before anything is predicted or written."""
    try:
        split = load_split(opt.data_path, opt.eval_split, resolve_layout(opt.dataset, opt.data_path))
    except DataError as e:
        fail(e)
    if opt.image_metrics and not is_dense(split.gt_depths):
        fail("--image_metrics needs dense ground truth (at least half the pixels valid in every map); "
             f"{split.split_dir}'s maps are sparse{' (velodyne)' if split.layout == 'kitti' else ''}, where "
             "RMSE/PSNR/SSIM of images mean nothing; drop --image_metrics or "
             + ("export dense maps first (synthetic KITTI: export_gt_depth.py --source annotated)"
                if split.layout == "kitti" else "evaluate a split of the frames with dense depth maps (--eval_split)"))
    out_dir = opt.eval_out_dir or (os.path.dirname(os.path.abspath(opt.ext_disp_to_eval)) if opt.ext_disp_to_eval
                                   else opt.load_weights_folder)
    return TestSet(**vars(split), out_dir=out_dir)


# ---------------------------------------------------------------------------------- predict
@dataclass
class Predictions:
    """The scaled disparities (N x H x W float32) and, when a network made them, its weights' options,
    depth network and data loader (for the diffusion head's rows)."""
    disps: np.ndarray
    wopt: object = None
    depth_net: object = None
    loader: object = None


def predict(opt, test_set):
    """--ext_disp_to_eval's saved disparities, or the weights folder's network on the test images (saved
    with --save_pred_disps); one prediction per ground-truth map."""
    if opt.ext_disp_to_eval:
        print(f"-> Loading predictions from {opt.ext_disp_to_eval}")
        try:
            out = Predictions(np.load(opt.ext_disp_to_eval))
        except (OSError, ValueError) as e:
            fail(f"--ext_disp_to_eval {opt.ext_disp_to_eval}: not a saved disparity array ({e})")
    else:
        out = predict_with_network(opt, test_set)
    if len(out.disps) != len(test_set.gt_depths):
        fail(f"{len(out.disps)} predictions for {len(test_set.gt_depths)} ground-truth maps of {test_set.split_dir}")
    return out


def predict_with_network(opt, test_set):
    try:
        setup_runtime(opt.device, opt.num_threads)
    except RuntimeSetupError as e:
        fail(e)
    try:
        wopt, nets = networks.load_weights_folder(opt.load_weights_folder, ("depth",), opt.batch_coupled_filter)
    except networks.CheckpointError as e:
        fail(e)
    size = dict(height=int(wopt.height), width=int(wopt.width), frame_idxs=[0], num_scales=1, is_train=False,
                load_depth=False)
    try:
        if test_set.layout == "folder":
            dataset = FolderDataset(opt.data_path, test_set.lines, **size)
        else:
            dataset = KITTIRAWDataset(opt.data_path, test_set.lines, img_ext=".png" if opt.png else ".jpg", **size)
    except DataError as e:
        fail(e)
    print(f"-> Predicting {len(dataset)} images at {wopt.height} x {wopt.width} with {opt.load_weights_folder}")
    loader = paddle.io.DataLoader(dataset, batch_size=opt.batch_size, shuffle=False, num_workers=opt.num_workers)
    try:
        disps = predict_disparities(nets["depth"], loader, float(wopt.min_depth), float(wopt.max_depth),
                                    opt.post_process)
    except (OSError, ValueError) as e:  # an unreadable image (DataError: a resized copy with a stale camera)
        fail(e)
    if opt.save_pred_disps:
        os.makedirs(test_set.out_dir, exist_ok=True)
        path = os.path.join(test_set.out_dir, f"disps_{test_set.split_name}_split.npy")
        atomic_write(path, lambda tmp: np.save(tmp, disps))
        print(f"-> Saved predicted disparities to {path}")
    return Predictions(disps, wopt, nets["depth"], loader)


# ---------------------------------------------------------------------------------- score
def score(opt, test_set, pred):
    """The results (the json's dict): the mean errors under the run's scaling, the median ratios
    gt / pred, and as asked the ground plane's factors, the diffusion head's rows and image metrics.
    Returns (result, per-image errors N x 7)."""
    mode = scaling_mode(opt, pred.wopt, test_set.layout)
    gts, rules = test_set.gt_depths, test_set.rules
    print(f"-> Evaluating {len(gts)} images, {SCALING_TEXT[mode]}, " +
          ("Garg crop, 1e-3 < gt < 80" if rules["garg_crop"] else "every gt > 0 (no crop)"))
    if mode == "ground":   # KITTI's camera, or the folder layout's (each line's sequence), at the prediction's size
        h, w = pred.disps.shape[1:]
        intrinsics_of = ((lambda i: camera.intrinsics(folder_layout.camera_of(
            opt.data_path, test_set.lines[i].split()[0]), w, h)) if test_set.layout == "folder"
            else (lambda i: kitti_layout.intrinsics(w, h)))
        factors, failed = ground_scales(pred.disps, intrinsics_of, opt.camera_height)
        errors, ratios = evaluate_images(pred.disps, gts, "factor", factors, rules=rules)
    elif mode == "stereo":
        errors, ratios = evaluate_images(pred.disps, gts, "factor", STEREO_SCALE_FACTOR, rules=rules)
    else:
        errors, ratios = evaluate_images(pred.disps, gts, mode, rules=rules)
    result = {"split": test_set.split_name, "num_images": len(gts), "scaling": mode,
              "post_process": bool(opt.post_process), "metrics": mean_metrics(errors)}
    # median(gt) / median(pred) per image: the factor of median scaling; without scaling, how far the
    # weights' own scale is from the ground truth's (1 = metric)
    medians = ratios if mode == "median" else median_ratios(pred.disps, gts, rules)
    result.update(ratio_median=float(np.median(medians)), ratio_std=float(np.std(medians / np.median(medians))))
    if mode == "ground":   # how far each frame's ground-plane factor is from the ground truth's median ratio
        scale_error = ratios[~failed] / medians[~failed] - 1
        result["ground_plane"] = {"camera_height": opt.camera_height, "failed_share": float(failed.mean()),
                                  "scale_error_median_abs": float(np.median(np.abs(scale_error))),
                                  "scale_error_mean": float(np.mean(scale_error))}
    if pred.depth_net is not None and opt.refine and networks.has_refine_head(opt.load_weights_folder):
        result["refined"] = evaluate_refined(opt, pred.depth_net, pred.loader, gts, rules)
    tae = sequence_tae(opt, test_set, pred.disps)
    if tae is not None:
        result["tae"] = tae
    if opt.image_metrics:
        result["image_metrics"] = image_metrics(pred.disps, gts, ratios, rules["max_depth"], rules["min_depth"])
    return result, errors


def sequence_tae(opt, test_set, disps):
    """{"tae", "runs", "frames"}: the mean TAE over the runs of consecutive left frames of one sequence in the
    test lines whose poses are known (module docstring), or None when no run has poses."""
    keys = []
    for pos, line in enumerate(test_set.lines):
        parts = line.split()
        left = len(parts) < 3 or parts[2] == "l"
        keys.append((parts[0], int(parts[1])) if left and len(parts) >= 2 else (None, -2 * pos))   # breaks a run
    taes, frames = [], 0
    for run in consecutive_runs(keys):
        sequence, indices = keys[run[0]][0], [keys[i][1] for i in run]
        gts = [test_set.gt_depths[i] for i in run]
        h, w = gts[0].shape
        try:
            poses = sequence_poses(test_set.layout, opt.data_path, sequence, indices)
            k = (camera.intrinsics(folder_layout.camera_of(opt.data_path, sequence), w, h)[:3, :3]
                 if test_set.layout == "folder" else camera_matrix(os.path.join(opt.data_path, sequence.split("/")[0])))
        except (PoseError, OxtsError, DataError, OSError):
            continue   # no poses for this sequence: no TAE
        depths = [1.0 / np.maximum(cv2.resize(disps[i], (w, h), interpolation=cv2.INTER_LINEAR), 1e-6) for i in run]
        # dense ground truth: its pixels; sparse (velodyne): the evaluated region, else the pairs barely overlap
        masks = ([g > 0 for g in gts] if is_dense(gts) else
                 [garg_crop_mask(h, w) if test_set.rules["garg_crop"] else np.ones((h, w), bool)] * len(run))
        taes.append(temporal_alignment_error(depths, poses, k, gts=gts, masks=masks).tae)
        frames += len(run)
    return {"tae": float(np.mean(taes)), "runs": len(taes), "frames": frames} if taes else None


# ---------------------------------------------------------------------------------- report
def report(opt, test_set, result, errors):
    """Print the ratios, the ground plane's factors, the field's table and the image metrics; write the
    results json (atomically) into the output folder; its path."""
    mode, med, std = result["scaling"], result["ratio_median"], result["ratio_std"]
    if mode == "median":
        print(f" Scaling ratios | med: {med:0.3f} | std: {std:0.3f}")
    else:
        meaning = {"none": "1 = metres", "ground": "the ground plane's factors are compared below"}.get(
            mode, f"the fixed factor is {STEREO_SCALE_FACTOR}")
        print(f" Median ratios gt / pred (not applied; {meaning}) | med: {med:0.3f} | std: {std:0.3f}")
    if "ground_plane" in result:
        g, frames = result["ground_plane"], result["num_images"]
        print(f" Ground plane (camera height {g['camera_height']:g} m) | no road plane in "
              f"{round(g['failed_share'] * frames)} of {frames} frames (given the others' median factor) | "
              f"factor / median ratio - 1: median |.| "
              f"{100 * g['scale_error_median_abs']:.1f} %, mean {100 * g['scale_error_mean']:+.1f} %")
    print("\n" + format_table(errors.mean(axis=0)))
    if "tae" in result:
        t = result["tae"]
        print(f"\n  TAE (temporal alignment error, one disparity scale and shift per run): {100 * t['tae']:.2f} % "
              f"over {t['runs']} run(s) of consecutive frames with poses ({t['frames']} frames)")
    if "refined" in result:
        refined = result["refined"]
        for steps, rows in refined["ddim_steps"].items():
            for mode_name, metrics in rows.items():
                scaling = "unscaled (metric)" if mode_name == "none" else "median scaling"
                print(f"\n-> Diffusion refinement, {steps} DDIM steps, strength {refined['strength']}, {scaling}:\n"
                      + format_table([metrics[n] for n in METRIC_NAMES]))
    if "image_metrics" in result:
        im = result["image_metrics"]
        print(f"\n  image metrics (0-255): rmse {im['rmse_255']:.3f} | psnr {im['psnr']:.2f} dB | "
              f"ssim {im['ssim']:.4f}")
    os.makedirs(test_set.out_dir, exist_ok=True)
    json_path = os.path.join(test_set.out_dir, f"eval_{test_set.split_name}_{RESULT_TAG[mode]}"
                                               f"{'_pp' if opt.post_process else ''}.json")
    atomic_write_text(json_path, json.dumps(result, indent=2))
    print(f"\n-> Results written to {json_path}\n-> Done!")
    return json_path


def main(argv=None):
    opt = options.parse("test", argv)
    test_set = load(opt)
    predictions = predict(opt, test_set)
    result, errors = score(opt, test_set, predictions)
    report(opt, test_set, result, errors)
    return result


if __name__ == "__main__":
    main()
