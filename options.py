"""Every command-line option of the project, defined once and shared by all scripts.

Each script builds a parser from the argument groups it needs:

    opt = options.parse("train")               # sys.argv, the groups of SCRIPT_GROUPS["train"]
    opt = options.parse("train", ["--height", "96", "--width", "320"])
    parser = options.build_parser(groups=("paths", "model"))

`parse` returns a Munch (attribute access, JSON-serialisable), the same type that
`networks.read_opt(folder)` returns for a weights folder's `opt.json`, so a later command can read
the options of the run that wrote the weights instead of repeating them.

Adding options for another script: write an `add_<name>_group(parser)` function below the marked
place, register it in GROUPS and list it in SCRIPT_GROUPS; put its checks in a `check_<name>`
function registered in CHECKS. Defaults state their source in the help text
(M2 = Monodepth2, DH = Depth Hints, orig = the original MLDA-Net repository, PM = PaddleMono).
"""
import argparse
import os
import sys

from munch import Munch

MODES_HELP = ("Training mode follows from --frame_ids and --use_stereo: monocular = '--frame_ids 0 -1 1 "
              "--no-use_stereo --no-use_depth_hints', stereo = '--frame_ids 0 --use_stereo', mono+stereo "
              "(default) = '--frame_ids 0 -1 1 --use_stereo'; depth hints need stereo.")

# Settings applied by `--dataset NAME` before the command line is read, so any flag still overrides
# them. The synthetic preset trains a few hundred samples at 64 x 192 in a few minutes on a 2-core CPU.
PRESETS = {
    # 72 training samples at 64 x 192, 3 epochs of 18 steps: a few minutes on a 2-core CPU, no download.
    "synthetic": dict(data_path=os.path.join("data", "synthetic_kitti"), split="synthetic",
                      height=64, width=192, batch_size=4, num_epochs=3, scheduler_step_size=2,
                      weights_init="scratch", num_workers=2, log_frequency=10),
}


class OptionsParser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line: '<prog>: error: <what is wrong>' (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


# ---------------------------------------------------------------------------------------------
# Argument groups. Each function adds one group to a parser.
# ---------------------------------------------------------------------------------------------

def add_paths_group(parser):
    g = parser.add_argument_group("paths")
    g.add_argument("--dataset", choices=["kitti", "synthetic"], default="kitti",
                   help="kitti: KITTI raw at --data_path; synthetic: the project's generated KITTI-layout "
                        "scene (created under --data_path if absent) with the small preset "
                        f"{PRESETS['synthetic']} (flags given still win)")
    g.add_argument("--data_path", default="kitti_data",
                   help="KITTI raw root: <data_path>/<date>/<date>_drive_<nnnn>_sync/... (default as M2)")
    g.add_argument("--split", default="eigen_zhou",
                   help="folder under splits/ with train_files.txt and val_files.txt; eigen_zhou is M2's and "
                        "DH's (orig: eigen_full); 'synthetic' = <data_path>/splits (default: %(default)s)")
    g.add_argument("--png", action=argparse.BooleanOptionalAction, default=False,
                   help="images are .png instead of M2's converted .jpg (a missing file of the chosen type "
                        "falls back to the other extension) (default: %(default)s)")
    g.add_argument("--log_dir", default="logs",
                   help="runs are written to <log_dir>/<model_name>/ (default: %(default)s)")
    g.add_argument("--model_name", default="mlda",
                   help="name of the run folder under --log_dir (default: %(default)s)")
    g.add_argument("--load_weights_folder", default=None,
                   help="fine-tune from this weights folder (this project's, the original MLDA-Net's or "
                        "PaddleMono's: encoder/depth/pose_encoder/pose.pdparams)")
    g.add_argument("--models_to_load", nargs="+", default=["encoder", "depth", "pose_encoder", "pose"],
                   help="which networks --load_weights_folder provides (default: all four)")
    g.add_argument("--resume", default=None, metavar="FOLDER",
                   help="continue an interrupted run exactly from a checkpoint folder "
                        "(<log_dir>/<model_name>/checkpoint, written every epoch and on Ctrl-C)")


def add_model_group(parser):
    g = parser.add_argument_group("model")
    g.add_argument("--num_layers", type=int, default=18, choices=[18, 34, 50, 101, 152],
                   help="ResNet depth of the backbones; published MLDA-Net weights are ResNet-18 "
                        "(default: %(default)s, M2/orig)")
    g.add_argument("--height", type=int, default=192,
                   help="input height, a multiple of 32, >= 64 (default: %(default)s, M2/orig)")
    g.add_argument("--width", type=int, default=640,
                   help="input width, a multiple of 32, >= 64 (default: %(default)s, M2/orig)")
    g.add_argument("--scales", type=int, nargs="+", default=[0, 1, 2, 3],
                   help="decoder output scales used in the loss, subset of 0-3 (default: 0 1 2 3, M2/orig)")
    g.add_argument("--min_depth", type=float, default=0.1,
                   help="minimum depth of disp_to_depth (default: %(default)s, M2/orig)")
    g.add_argument("--max_depth", type=float, default=100.0,
                   help="maximum depth of disp_to_depth (default: %(default)s, M2/orig)")
    g.add_argument("--batch_coupled_filter", action=argparse.BooleanOptionalAction, default=False,
                   help="normalise the decoder's guided-filter attention over the whole batch as the "
                        "original does (couples the samples of a batch); default: per sample (spec section 3)")


def add_training_group(parser):
    g = parser.add_argument_group("training", MODES_HELP)
    g.add_argument("--frame_ids", nargs="+", type=int, default=[0, -1, 1],
                   help="frames to load, the target 0 first (default: 0 -1 1, M2/orig)")
    g.add_argument("--skip_missing", action="store_true",
                   help="drop training lines whose frames, neighbours or hints are missing (reported once with a "
                        "count) instead of stopping at the first missing file")
    g.add_argument("--use_stereo", action=argparse.BooleanOptionalAction, default=True,
                   help="use the stereo partner 's' as a source frame (default: %(default)s, mono+stereo as "
                        "orig and DH)")
    g.add_argument("--disparity_smoothness", type=float, default=1e-3,
                   help="edge-aware smoothness weight lambda (default: %(default)s, M2/DH and orig's test "
                        "script; orig's training used 0)")
    g.add_argument("--weights_init", default="pretrained",
                   help="backbone initialisation: 'pretrained' (ImageNet ResNet via paddle.vision, "
                        "downloaded once), 'scratch', or PATH of a paddle.vision ResNet .pdparams "
                        "(default: %(default)s, M2)")
    g.add_argument("--max_steps", type=int, default=0,
                   help="stop after this many optimiser steps in all, 0 = no limit (default: %(default)s)")


def add_depth_hints_group(parser):
    g = parser.add_argument_group("depth hints")
    g.add_argument("--use_depth_hints", action=argparse.BooleanOptionalAction, default=True,
                   help="add the Depth Hints loss (needs --use_stereo) (default: %(default)s, DH/orig)")
    g.add_argument("--depth_hint_path", default=None,
                   help="precomputed hints <depth_hint_path>/<date>/<drive>/image_0x/<frame>.npy "
                        "(default: <data_path>/depth_hints, as DH; compute with precompute_depth_hints.py)")


def add_optimisation_group(parser):
    g = parser.add_argument_group("optimisation")
    g.add_argument("--batch_size", type=int, default=12,
                   help="samples per step (per process with paddle.distributed.launch) "
                        "(default: %(default)s, M2/DH; orig 2, PM 8)")
    g.add_argument("--learning_rate", type=float, default=1e-4,
                   help="Adam learning rate (default: %(default)s, M2/DH/orig/PM)")
    g.add_argument("--num_epochs", type=int, default=20,
                   help="epochs (default: %(default)s, M2/DH/PM; orig 10)")
    g.add_argument("--scheduler_step_size", type=int, default=15,
                   help="multiply the learning rate by --lr_decay every this many epochs "
                        "(default: %(default)s, M2/DH; orig 2, PM 10)")
    g.add_argument("--lr_decay", type=float, default=0.1,
                   help="step-schedule factor (default: %(default)s, M2/DH/orig/PM)")
    g.add_argument("--amp", action=argparse.BooleanOptionalAction, default=False,
                   help="float16 mixed precision on a GPU (ignored with a notice on the CPU) (default: %(default)s)")
    g.add_argument("--max_bad_steps", type=int, default=10,
                   help="stop after this many consecutive non-finite losses (each skips its step) "
                        "(default: %(default)s)")


def add_logging_group(parser):
    g = parser.add_argument_group("logging")
    g.add_argument("--log_frequency", type=int, default=250,
                   help="steps between VisualDL scalar/image logs (default: %(default)s, M2)")
    g.add_argument("--save_frequency", type=int, default=1,
                   help="epochs between weights folders weights_<epoch> (default: %(default)s, M2)")
    g.add_argument("--num_log_images", type=int, default=2,
                   help="images per VisualDL log (default: %(default)s)")
    g.add_argument("--val_max_images", type=int, default=0,
                   help="validate on at most this many val_files lines each epoch, 0 = all (default: %(default)s)")


def add_system_group(parser):
    g = parser.add_argument_group("system")
    g.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto",
                   help="auto = the GPU when Paddle has one, else the CPU (default: %(default)s)")
    g.add_argument("--num_workers", type=int, default=12,
                   help="DataLoader worker processes (default: %(default)s, M2)")
    g.add_argument("--num_threads", type=int, default=0,
                   help="CPU threads of Paddle's kernels, 0 = every core (default: %(default)s)")
    g.add_argument("--seed", type=int, default=0,
                   help="seed of Paddle, numpy and Python's random (default: %(default)s)")


# --- Evaluation / prediction / export groups: add_<name>_group functions go here -------------

def add_weights_group(parser):
    g = parser.add_argument_group("weights")
    g.add_argument("--load_weights_folder", default=None,
                   help="(required) weights folder (this project's, the original MLDA-Net's or PaddleMono's); its opt.json, "
                        "when present, gives the network size and depth range (else 192 x 640, 0.1-100)")
    g.add_argument("--batch_coupled_filter", action=argparse.BooleanOptionalAction, default=False,
                   help="normalise the guided-filter attention over the whole batch as the original and "
                        "PaddleMono do (needed to reproduce their published numbers, at --batch_size 16); "
                        "default: per sample, so a prediction does not depend on its batch")


def add_evaluation_group(parser):
    g = parser.add_argument_group("evaluation (test.py, spec section 8)")
    g.add_argument("--data_path", default="kitti_data", help="KITTI raw root (default: %(default)s, M2)")
    g.add_argument("--eval_split", default="eigen",
                   help="eigen | eigen_benchmark (a folder under splits/) or the path of a folder holding "
                        "test_files.txt (and gt_depths.npz, computed there when absent) (default: %(default)s)")
    g.add_argument("--png", action=argparse.BooleanOptionalAction, default=False,
                   help="test images are .png instead of M2's converted .jpg (default: %(default)s)")
    scale = g.add_mutually_exclusive_group()
    scale.add_argument("--eval_mono", action="store_true",
                       help="per-image median scaling (monocular weights; the default when neither is given)")
    scale.add_argument("--eval_stereo", action="store_true",
                       help="fixed scale 5.4 (weights trained with stereo), no median scaling")
    g.add_argument("--post_process", action="store_true",
                   help="Monodepth's post-processing: average with the mirrored image's prediction")
    g.add_argument("--batch_size", type=int, default=16, help="images per forward pass (default: %(default)s, M2)")
    g.add_argument("--save_pred_disps", action="store_true",
                   help="write the scaled disparities (N x H x W float32, M2's format) to "
                        "<eval_out_dir>/disps_<split>_split.npy")
    g.add_argument("--ext_disp_to_eval", default=None, metavar="FILE",
                   help="evaluate disparities saved by --save_pred_disps (or M2) instead of running a network")
    g.add_argument("--eval_out_dir", default=None,
                   help="where the JSON of the results and saved disparities go "
                        "(default: the weights folder, or the folder of --ext_disp_to_eval)")
    g.add_argument("--image_metrics", action="store_true",
                   help="also RMSE, PSNR and SSIM (skimage.metrics) of the depth maps scaled to 0-255 by the "
                        "ground truth's maximum; only for dense ground truth (refused on velodyne maps)")


def add_prediction_group(parser):
    g = parser.add_argument_group("prediction (predict.py)")
    g.add_argument("--color_path", required=True,
                   help="an image, or a folder of images (natural-sorted, not recursive)")
    g.add_argument("--output_dir", default=None,
                   help="where <stem>_disp.npy, <stem>_disp.jpeg and <stem>_depth.npy go "
                        "(default: a 'predictions' folder beside the image / inside the folder)")
    g.add_argument("--colormap", default="magma",
                   choices=["magma", "inferno", "plasma", "viridis", "cividis", "turbo", "jet", "bone", "hot", "gray"],
                   help="colour map of <stem>_disp.jpeg (default: %(default)s, M2)")
    g.add_argument("--pred_depth_scale_factor", type=float, default=5.4,
                   help="depth = factor x disp_to_depth depth; 5.4 gives metres for stereo-trained weights "
                        "(default: %(default)s)")
    g.add_argument("--save_png16", action="store_true",
                   help="also write <stem>_depth.png, KITTI's uint16 depth x 256")
    g.add_argument("--calib_path", default=None,
                   help="folder of calib_cam_to_cam.txt and calib_velo_to_cam.txt (KITTI <data_path>/<date>) "
                        "for --velo_filename")
    g.add_argument("--velo_filename", default=None,
                   help="velodyne scan (.bin) of the image: print the seven metrics against it, as test.py")
    g.add_argument("--eval_mono", action="store_true",
                   help="the velodyne check uses median scaling instead of --pred_depth_scale_factor")


def add_pose_evaluation_group(parser):
    g = parser.add_argument_group("pose evaluation (evaluate_pose.py, M2's odometry protocol)")
    g.add_argument("--data_path", default="kitti_odom",
                   help="KITTI odometry root: <data_path>/sequences/09/image_2/000000.png and "
                        "<data_path>/poses/09.txt (default: %(default)s)")
    g.add_argument("--eval_split", default="odom_9",
                   help="odom_9 | odom_10: reads splits/odom/test_files_09.txt (or _10), or the path of a split file "
                        "of one's own with lines '<sequence> <frame> l' (default: %(default)s)")
    g.add_argument("--png", action=argparse.BooleanOptionalAction, default=True,
                   help="frames are .png as KITTI ships them (a missing file falls back to .jpg) "
                        "(default: %(default)s)")
    g.add_argument("--batch_size", type=int, default=16, help="frame pairs per forward pass (default: %(default)s)")
    g.add_argument("--save_pred_poses", action="store_true",
                   help="write the predicted frame-to-frame poses (N x 4 x 4) to <weights>/poses_odom_<sequence>.npy")


def add_convert_group(parser):
    g = parser.add_argument_group("checkpoint conversion (convert_checkpoint.py)")
    g.add_argument("--output_folder", required=True,
                   help="where the weights are written in the original MLDA-Net / PaddleMono key layout "
                        "(with opt.json), loadable by the earlier Paddle code and by this project")
    g.add_argument("--models_to_convert", nargs="+", default=None,
                   help="networks to convert (default: every one of encoder depth pose_encoder pose present)")


def add_export_group(parser):
    g = parser.add_argument_group("export (export.py)")
    g.add_argument("--save_dir", required=True,
                   help="folder for the static models and deploy.json (created; files of an earlier export replaced)")
    g.add_argument("--height", type=int, default=None,
                   help="input height of the exported models, a multiple of 32 (default: the weights folder's "
                        "opt.json, else 192)")
    g.add_argument("--width", type=int, default=None,
                   help="input width, a multiple of 32 (default: the weights folder's opt.json, else 640)")
    g.add_argument("--combined", action="store_true",
                   help="one model image -> disparity (model.*) instead of model_encoder.* + model_depth.*")
    g.add_argument("--format", choices=["paddle", "onnx"], default="paddle",
                   help="paddle: Paddle Inference programs (.json + .pdiparams); onnx: those and .onnx "
                        "models converted by paddle2onnx (default: %(default)s)")


def add_inference_group(parser):
    g = parser.add_argument_group("inference (inference.py)")
    g.add_argument("--infer_files_dir", required=True,
                   help="folder written by export.py (models + deploy.json)")
    g.add_argument("--backend", choices=["paddle", "onnxruntime"], default="paddle",
                   help="Paddle Inference, or ONNX Runtime on a folder exported with --format onnx "
                        "(default: %(default)s)")
    g.add_argument("--device", choices=["cpu", "gpu"], default="cpu", help="(default: %(default)s)")
    g.add_argument("--cpu_threads", type=int, default=0,
                   help="CPU threads, 0 = every core (default: %(default)s)")
    g.add_argument("--onednn", action=argparse.BooleanOptionalAction, default=True,
                   help="oneDNN kernels on the CPU (Paddle backend) (default: %(default)s)")
    g.add_argument("--use_trt", action="store_true",
                   help="TensorRT subgraphs (Paddle backend on a GPU with a TensorRT-enabled Paddle)")
    g.add_argument("--trt_precision", choices=["fp32", "fp16"], default="fp32",
                   help="TensorRT precision (default: %(default)s)")

def add_gt_export_group(parser):
    g = parser.add_argument_group("ground-truth export (export_gt_depth.py)")
    g.add_argument("--data_path", required=True, help="KITTI raw root")
    g.add_argument("--split", default="eigen",
                   help="eigen | eigen_benchmark (folders under splits/) or the path of a folder holding "
                        "test_files.txt (default: %(default)s)")
    g.add_argument("--source", choices=["velodyne", "annotated"],
                   help="velodyne scans or KITTI's annotated depth pngs (default: annotated for "
                        "eigen_benchmark, velodyne otherwise)")
    g.add_argument("--output", help="output file (default: <split folder>/gt_depths.npz)")


def add_hint_export_group(parser):
    g = parser.add_argument_group("depth-hint precomputation (precompute_depth_hints.py, Depth Hints' fused SGM)")
    g.add_argument("--data_path", required=True, help="KITTI raw root")
    g.add_argument("--split", default="eigen_zhou",
                   help="folder under splits/ (or a path to one): hints for its train and val files "
                        "(default: %(default)s)")
    g.add_argument("--filenames", help="one split file instead of --split")
    g.add_argument("--save_path", help="output root (default: <data_path>/depth_hints)")
    g.add_argument("--height", type=int, default=320, help="working height (default: %(default)s, as DH)")
    g.add_argument("--width", type=int, default=1024, help="working width (default: %(default)s, as DH)")
    g.add_argument("--img_ext", default=".jpg", choices=[".jpg", ".png"],
                   help="image format (a frame missing in it is read in the other)")
    g.add_argument("--num_workers", type=int, default=max(1, (os.cpu_count() or 1)),
                   help="processes (default: every core)")
    g.add_argument("--overwrite", action="store_true", help="recompute hints that already exist")


def add_synthetic_group(parser):
    g = parser.add_argument_group("synthetic KITTI (python -m datasets.synthetic)")
    g.add_argument("--out", default=os.path.join("data", "synthetic_kitti"),
                   help="output folder (default: %(default)s)")
    g.add_argument("--seed", type=int, default=0, help="the same seed writes the same bytes (default: %(default)s)")
    g.add_argument("--drives", type=int, default=3, help="number of drives; the last is the test drive")
    g.add_argument("--frames", type=int, default=24, help="frames per drive (default: %(default)s)")
    g.add_argument("--width", type=int, default=621, help="native image width (default: %(default)s, KITTI 1242 / 2)")
    g.add_argument("--height", type=int, default=188, help="native image height (default: %(default)s, KITTI 375 / 2)")
    g.add_argument("--img_ext", default=".jpg", choices=[".jpg", ".png"])
    g.add_argument("--azimuth_step", type=float, default=0.4,
                   help="velodyne horizontal resolution in degrees (default: %(default)s)")
    g.add_argument("--overwrite", action="store_true", help="replace an existing folder")


def check_gt_export(opt, error):
    if not os.path.isdir(opt.data_path):
        error(f"--data_path {opt.data_path}: no such folder")


def check_hint_export(opt, error):
    if not os.path.isdir(opt.data_path):
        error(f"--data_path {opt.data_path}: no such folder")
    if opt.height < 8 or opt.width < 8:
        error("--height and --width must be at least 8")
    if opt.num_workers < 1:
        error(f"--num_workers {opt.num_workers}: must be at least 1")


# ---------------------------------------------------------------------------------------------
# Registry: group name -> adder, script -> groups, group name -> checks.
# ---------------------------------------------------------------------------------------------

GROUPS = {
    "paths": add_paths_group,
    "model": add_model_group,
    "training": add_training_group,
    "depth_hints": add_depth_hints_group,
    "optimisation": add_optimisation_group,
    "logging": add_logging_group,
    "system": add_system_group,
    "weights": add_weights_group,
    "evaluation": add_evaluation_group,
    "prediction": add_prediction_group,
    "pose_evaluation": add_pose_evaluation_group,
    "convert": add_convert_group,
    "export": add_export_group,
    "inference": add_inference_group,
    "gt_export": add_gt_export_group,
    "hint_export": add_hint_export_group,
    "synthetic": add_synthetic_group,
}

SCRIPT_GROUPS = {
    "train": ("paths", "model", "training", "depth_hints", "optimisation", "logging", "system"),
    "test": ("weights", "evaluation", "system"),
    "predict": ("weights", "prediction", "system"),
    "evaluate_pose": ("weights", "pose_evaluation", "system"),
    "convert_checkpoint": ("weights", "convert"),
    "export": ("weights", "export"),
    "inference": ("inference", "prediction"),
    "export_gt_depth": ("gt_export",),
    "precompute_depth_hints": ("hint_export",),
    "synthetic": ("synthetic",),
}


def build_parser(script="train", groups=None, description=None):
    """An OptionsParser holding `groups` (default: SCRIPT_GROUPS[script]) in that order."""
    groups = SCRIPT_GROUPS[script] if groups is None else groups
    parser = OptionsParser(prog=f"{script}.py", description=description)
    for name in groups:
        GROUPS[name](parser)
    return parser


# ---------------------------------------------------------------------------------------------
# Checks: each gets (opt, error) and calls error("one line") for a bad value. Only the options of
# the groups a script uses are present, so every check tests for its keys first.
# ---------------------------------------------------------------------------------------------

def check_model(opt, error):
    for name in ("height", "width"):
        v = opt[name]
        if v < 64 or v % 32:
            error(f"--{name} {v}: must be a multiple of 32 and at least 64 (e.g. 192 x 640)")
    if not opt.scales or len(set(opt.scales)) != len(opt.scales) or not set(opt.scales) <= {0, 1, 2, 3}:
        error(f"--scales {' '.join(map(str, opt.scales))}: must be distinct values from 0 1 2 3")
    if not 0 < opt.min_depth < opt.max_depth:
        error(f"--min_depth {opt.min_depth} / --max_depth {opt.max_depth}: need 0 < min_depth < max_depth")


def check_training(opt, error):
    ids = opt.frame_ids
    if not ids or ids[0] != 0:
        error(f"--frame_ids {' '.join(map(str, ids))}: must start with the target frame 0 (e.g. 0 -1 1)")
    if len(set(ids)) != len(ids):
        error(f"--frame_ids {' '.join(map(str, ids))}: frame ids must be distinct")
    if len(ids) == 1 and not opt.use_stereo:
        error("--frame_ids 0 with --no-use_stereo leaves no source frame: add -1 1 or --use_stereo")
    if opt.disparity_smoothness < 0:
        error(f"--disparity_smoothness {opt.disparity_smoothness}: must be >= 0")
    if opt.weights_init not in ("pretrained", "scratch") and not os.path.isfile(opt.weights_init):
        error(f"--weights_init {opt.weights_init}: not 'pretrained', 'scratch' or an existing .pdparams file")
    if opt.max_steps < 0:
        error(f"--max_steps {opt.max_steps}: must be >= 0")


def check_depth_hints(opt, error):
    if opt.use_depth_hints and not opt.get("use_stereo", False):
        error("--use_depth_hints needs stereo training: add --use_stereo or pass --no-use_depth_hints")


def check_optimisation(opt, error):
    for name in ("batch_size", "num_epochs", "scheduler_step_size", "max_bad_steps"):
        if opt[name] < 1:
            error(f"--{name} {opt[name]}: must be at least 1")
    if opt.learning_rate <= 0:
        error(f"--learning_rate {opt.learning_rate}: must be > 0")
    if not 0 < opt.lr_decay <= 1:
        error(f"--lr_decay {opt.lr_decay}: must be in (0, 1]")


def check_paths(opt, error):
    if opt.load_weights_folder and not os.path.isdir(opt.load_weights_folder):
        error(f"--load_weights_folder {opt.load_weights_folder}: no such folder")
    if opt.resume and not os.path.isdir(opt.resume):
        error(f"--resume {opt.resume}: no such folder (a run's checkpoint folder, e.g. logs/mlda/checkpoint)")
    if opt.resume and opt.load_weights_folder:
        error("--resume and --load_weights_folder exclude each other: --resume already restores the weights")
    bad = set(opt.models_to_load) - {"encoder", "depth", "pose_encoder", "pose"}
    if bad:
        error(f"--models_to_load {' '.join(sorted(bad))}: choose from encoder depth pose_encoder pose")


def check_logging(opt, error):
    for name in ("log_frequency", "save_frequency", "num_log_images"):
        if opt[name] < 1:
            error(f"--{name} {opt[name]}: must be at least 1")
    if opt.val_max_images < 0:
        error(f"--val_max_images {opt.val_max_images}: must be >= 0")


def check_system(opt, error):
    if opt.num_workers < 0 or opt.num_threads < 0:
        error("--num_workers and --num_threads must be >= 0")


def check_weights(opt, error):
    if opt.load_weights_folder is None:
        if not opt.get("ext_disp_to_eval"):
            error("--load_weights_folder is required (a folder with encoder.pdparams and depth.pdparams)")
    elif not os.path.isdir(opt.load_weights_folder):
        error(f"--load_weights_folder {opt.load_weights_folder}: no such folder")


def check_evaluation(opt, error):
    if opt.batch_size < 1:
        error(f"--batch_size {opt.batch_size}: must be at least 1")
    if opt.ext_disp_to_eval and not os.path.isfile(opt.ext_disp_to_eval):
        error(f"--ext_disp_to_eval {opt.ext_disp_to_eval}: no such file")


def check_prediction(opt, error):
    if not os.path.exists(opt.color_path):
        error(f"--color_path {opt.color_path}: no such file or folder")
    if opt.velo_filename and not opt.calib_path:
        error("--velo_filename needs --calib_path, the folder holding calib_cam_to_cam.txt and "
              "calib_velo_to_cam.txt (KITTI's <data_path>/<date>)")
    if opt.calib_path and not opt.velo_filename:
        error("--calib_path is only used with --velo_filename (the scan to compare with)")
    if opt.velo_filename and os.path.isdir(opt.color_path):
        error("--velo_filename compares one image with its scan: give --color_path an image, not a folder")
    if opt.pred_depth_scale_factor <= 0:
        error(f"--pred_depth_scale_factor {opt.pred_depth_scale_factor}: must be > 0")


def check_pose_evaluation(opt, error):
    if opt.batch_size < 1:
        error(f"--batch_size {opt.batch_size}: must be at least 1")


def check_export(opt, error):
    for name in ("height", "width"):
        v = opt[name]
        if v is not None and (v < 64 or v % 32):
            error(f"--{name} {v}: must be a multiple of 32 and at least 64 (e.g. 192 x 640)")


def check_inference(opt, error):
    if not os.path.isdir(opt.infer_files_dir):
        error(f"--infer_files_dir {opt.infer_files_dir}: no such folder (write one with export.py --save_dir)")
    if opt.cpu_threads < 0:
        error(f"--cpu_threads {opt.cpu_threads}: must be >= 0")
    if opt.use_trt and (opt.device != "gpu" or opt.backend != "paddle"):
        error("--use_trt needs --device gpu and --backend paddle")


CHECKS = {
    "gt_export": check_gt_export,
    "hint_export": check_hint_export,
    "weights": check_weights,
    "evaluation": check_evaluation,
    "prediction": check_prediction,
    "pose_evaluation": check_pose_evaluation,
    "paths": check_paths,
    "model": check_model,
    "training": check_training,
    "depth_hints": check_depth_hints,
    "optimisation": check_optimisation,
    "logging": check_logging,
    "system": check_system,
    "export": check_export,
    "inference": check_inference,
}


def parse(script="train", argv=None, groups=None):
    """Parse `argv` (default sys.argv[1:]) for `script`; apply --dataset presets; check; return a Munch.

    Bad values end the program with one line '<script>.py: error: ...' and exit status 2.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    groups = SCRIPT_GROUPS[script] if groups is None else groups
    parser = build_parser(script, groups)
    if "paths" in groups:
        known, _ = parser.parse_known_args(argv)
        preset = PRESETS.get(known.dataset)
        if preset:
            parser.set_defaults(**{k: v for k, v in preset.items() if k in vars(known)})
    opt = Munch(vars(parser.parse_args(argv)))
    for name in groups:
        if name in CHECKS:
            CHECKS[name](opt, parser.error)
    if "depth_hints" in groups and opt.depth_hint_path is None and "data_path" in opt:
        opt.depth_hint_path = os.path.join(opt.data_path, "depth_hints")
    return opt


def given_options(script="train", argv=None, groups=None):
    """The names of the options given explicitly in `argv` (not left at their defaults)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(script, SCRIPT_GROUPS[script] if groups is None else groups)
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def to_json_dict(opt):
    """The options as a plain, JSON-serialisable dict (what opt.json stores)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(opt).items()}
