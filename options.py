"""Every command-line option of the project, each defined once, and each check written once.

Each script builds its parser from the option groups it needs:

    opt = options.parse("train")               # sys.argv, the options of SCRIPT_GROUPS["train"]
    opt = options.parse("train", ["--height", "96", "--width", "320"])
    parser = options.build_parser(groups=("model",))

`parse` returns a Munch (attribute access, JSON-serialisable), the same type that
`networks.read_opt(folder)` returns for a weights folder's `opt.json`, so a later command can read
the options of the run that wrote the weights instead of repeating them.

Layout: GROUPS holds every option once, by topic (the sections of --help): name -> add_argument
keywords. SCRIPT_GROUPS lists, per script, the groups it uses (a whole group, or (group, names) for
some of its options, or (group, names, section) to show them in another --help section). Where a script
needs another default, help text, `required` or choices for a shared option, SCRIPT_DEFAULTS[script][name] gives those keywords (over the group's definition).
Checks: GROUP_CHECKS[group] checks the options of one group (run for every script that has some of
them; it looks only at the options present), SCRIPT_CHECKS[script] the rules of one script (which
options it requires). Help texts are one line; docs/options.md says more of each option and where each
default comes from (Monodepth2, Depth Hints, the original MLDA-Net, PaddleMono).
Adding an option: put it in a group (or a new group in GROUPS), list it in SCRIPT_GROUPS, check it in
its group's check, and describe it in docs/options.md.
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
    # One's own sequences: depth hints are opt-in (they need right/ images and a baseline): run
    # precompute_depth_hints.py --data_path ROOT first, then train with --use_depth_hints.
    "folder": dict(use_depth_hints=False),
}

BOOL = argparse.BooleanOptionalAction
# calibrate.py's one --help section: its own options and those it borrows (--out, --format, --overwrite)
CALIBRATE_SECTION = "calibration (calibrate.py)"
RAY = "Ray: serve.py and predict.py --engine ray (pip install -r requirements-serve.txt)"   # its --help section
COLORMAPS = ["magma", "inferno", "plasma", "viridis", "cividis", "turbo", "jet", "bone", "hot", "gray"]


class HelpFormatter(argparse.HelpFormatter):
    """--help with the default of every option that has one, after its one-line help (unless the help
    already says what the default is)."""

    def _get_help_string(self, action):
        text = action.help or ""
        flag = action.nargs == 0 and not isinstance(action, argparse.BooleanOptionalAction)   # store_true: off
        if "default" in text or action.default in (None, argparse.SUPPRESS) or flag:
            return text
        return text + " (default: %(default)s)"


class OptionsParser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line: '<prog>: error: <what is wrong>' (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


# ---------------------------------------------------------------------------------------------
# Every option, once: group -> (title, {name: add_argument keywords}). The flag is --<name>.
# ---------------------------------------------------------------------------------------------

GROUPS = {
    "data": ("data", {
        "dataset": dict(choices=["kitti", "synthetic", "folder"], default="kitti",
                        help="kitti: KITTI raw; synthetic: generated KITTI, small preset; folder: your own camera"),
        "data_path": dict(default="kitti_data", help="KITTI raw root (<data_path>/<date>/<drive>/...)"),
        "split": dict(default="eigen_zhou", help="folder under splits/ with train/val_files.txt, or 'synthetic'"),
        "eval_split": dict(default="eigen", help="eigen | eigen_benchmark, or a folder holding test_files.txt"),
        "png": dict(action=BOOL, default=False,
                    help="images are .png instead of .jpg (a missing file falls back to the other)"),
        "img_ext": dict(default=".jpg", choices=[".jpg", ".png"],
                        help="image format (a frame missing in it is read in the other)"),
        "overwrite": dict(action="store_true", help="recompute hints that already exist"),
    }),
    "run": ("run folder", {
        "log_dir": dict(default="logs", help="runs are written to <log_dir>/<model_name>/"),
        "model_name": dict(default="mlda", help="name of the run folder under --log_dir"),
        "models_to_load": dict(nargs="+", default=["encoder", "depth", "pose_encoder", "pose"],
                               help="networks --load_weights_folder provides (default: all four)"),
        "resume": dict(default=None, metavar="FOLDER",
                       help="continue an interrupted run exactly from its checkpoint folder <run>/checkpoint"),
        "checkpoint_steps": dict(type=int, default=0, metavar="N",
                                 help="also write the checkpoint every N steps inside an epoch, 0 = off"),
        "checkpoint_minutes": dict(type=float, default=15.0, metavar="M",
                                   help="also write the checkpoint every M minutes inside an epoch, 0 = off"),
    }),
    "weights": ("weights", {
        "load_weights_folder": dict(
            default=None,
            help="weights folder (this project's, the original's or PaddleMono's)"),
        "batch_coupled_filter": dict(
            action=BOOL, default=False,
            help="guided-filter attention normalised over the batch, as the original"),
    }),
    "model": ("model", {
        "num_layers": dict(type=int, default=18, choices=[18, 34, 50, 101, 152],
                           help="ResNet depth of the backbones"),
        "height": dict(type=int, default=192, help="input height, a multiple of 32, >= 64"),
        "width": dict(type=int, default=640, help="input width, a multiple of 32, >= 64"),
        "scales": dict(type=int, nargs="+", default=[0, 1, 2, 3],
                       help="decoder output scales used in the loss, a subset of 0 1 2 3 (default: all)"),
        "min_depth": dict(type=float, default=0.1, help="minimum depth of disp_to_depth"),
        "max_depth": dict(type=float, default=100.0, help="maximum depth of disp_to_depth"),
    }),
    "training": ("training", {
        "frame_ids": dict(nargs="+", type=int, default=[0, -1, 1],
                          help="frames to load, the target 0 first (default: 0 -1 1)"),
        "resize_on_device": dict(action="store_true",
                                 help="workers only decode; resizes and jitter run on the device (GPU training)"),
        "skip_missing": dict(action="store_true",
                             help="drop training lines whose files are missing instead of stopping"),
        "use_stereo": dict(action=BOOL, default=True, help="use the stereo partner 's' as a source frame"),
        "disparity_smoothness": dict(type=float, default=1e-3, help="edge-aware smoothness weight"),
        "weights_init": dict(default="pretrained",
                             help="backbones: 'pretrained' (ImageNet), 'scratch' or a ResNet .pdparams"),
        "max_steps": dict(type=int, default=0, help="stop after this many optimiser steps, 0 = no limit"),
        "qat": dict(action="store_true", help="fine-tune --load_weights_folder with fake int8 on every convolution"),
    }),
    "metric": ("metric depth: sparse depth and velocity supervision (docs/metric_depth.md)", {
        "sparse_depth_weight": dict(type=float, default=0.0,
                                    help="weight of the loss on ground-truth depth pixels (metres), 0 = off"),
        "sparse_depth_loss": dict(choices=["silog", "l1"], default="silog",
                                  help="silog (scale-invariant log) or l1 (metres)"),
        "silog_lambda": dict(type=float, default=0.85, help="lambda of silog, in [0, 1)"),
        "lidar_beams": dict(type=int, choices=[64, 32, 16, 8, 4], default=64,
                            help="train on every (64 / N)-th velodyne ring only (a cheaper sensor)"),
        "velocity_weight": dict(type=float, default=0.0,
                                help="weight of |pose translation| against the oxts distance, 0 = off"),
    }),
    "depth_hints": ("depth hints", {
        "use_depth_hints": dict(action=BOOL, default=True, help="add the Depth Hints loss (needs --use_stereo)"),
        "depth_hint_path": dict(default=None, help="precomputed hints (default: <data_path>/depth_hints)"),
    }),
    "optimisation": ("optimisation", {
        "batch_size": dict(type=int, default=12,
                           help="samples per step (per process with paddle.distributed.launch)"),
        "learning_rate": dict(type=float, default=1e-4, help="Adam learning rate"),
        "num_epochs": dict(type=int, default=20, help="epochs"),
        "scheduler_step_size": dict(type=int, default=15,
                                    help="multiply the learning rate by --lr_decay every this many epochs"),
        "lr_decay": dict(type=float, default=0.1, help="step-schedule factor"),
        "amp": dict(action=BOOL, default=False, help="float16 mixed precision on a GPU (ignored on the CPU)"),
        "max_bad_steps": dict(type=int, default=10, help="stop after this many non-finite losses in a row"),
    }),
    "logging": ("logging", {
        "log_frequency": dict(type=int, default=250, help="steps between VisualDL logs"),
        "save_frequency": dict(type=int, default=1, help="epochs between weights folders weights_<epoch>"),
        "num_log_images": dict(type=int, default=2, help="images per VisualDL log"),
        "val_max_images": dict(type=int, default=0, help="validate on at most this many val lines, 0 = all"),
    }),
    "system": ("system", {
        "device": dict(choices=["auto", "cpu", "gpu"], default="auto",
                       help="auto = the GPU when Paddle has one, else the CPU"),
        "num_workers": dict(type=int, default=12, help="DataLoader worker processes"),
        "num_threads": dict(type=int, default=0, help="CPU threads of Paddle's kernels, 0 = every core"),
        "seed": dict(type=int, default=0, help="seed of Paddle, numpy and Python's random"),
    }),
    "scaling": ("depth scaling", {
        # --eval_mono, --eval_stereo, --eval_metric and --camera_height exclude each other where a script has
        # them all (EXCLUSIVE: test.py)
        "eval_mono": dict(action="store_true",
                          help="median scaling per image (the default, unless opt.json says metric)"),
        "eval_stereo": dict(action="store_true",
                            help="fixed factor 5.4 (KITTI stereo weights; the folder layout: no scaling)"),
        "eval_metric": dict(action="store_true",
                            help="no scaling: depth taken as metres (the default for metric weights)"),
        "camera_height": dict(type=float, default=None, metavar="METRES",
                              help="metres per image from the road plane, the camera this high (KITTI: 1.65)"),
    }),
    "evaluation": ("evaluation (test.py, docs/MLDA_NET.md §8)", {
        "post_process": dict(action="store_true",
                             help="Monodepth's post-processing: average with the mirrored image's prediction"),
        "save_pred_disps": dict(action="store_true",
                                help="write the scaled disparities to <eval_out_dir>/disps_<split>_split.npy"),
        "ext_disp_to_eval": dict(default=None, metavar="FILE",
                                 help="evaluate saved disparities (--save_pred_disps) instead of a network"),
        "eval_out_dir": dict(default=None, help="folder of the results (default: the weights folder)"),
        "image_metrics": dict(action="store_true",
                              help="also RMSE, PSNR and SSIM of the depth maps (dense ground truth only)"),
    }),
    "prediction": ("prediction (predict.py)", {
        "color_path": dict(required=True, help="an image, a folder of images or a video"),
        "output_dir": dict(default=None, help="folder of the output files (default: outputs/<command>/<input name>/)"),
        "colormap": dict(default="magma", choices=COLORMAPS, help="colour map of <stem>_disp.jpeg"),
        "pred_depth_scale_factor": dict(type=float, default=None,
                                        help="depth = factor x disp_to_depth depth (default: from the weights)"),
        "save_png16": dict(action="store_true", help="also write <stem>_depth.png, KITTI's uint16 depth x 256"),
        "save_ply": dict(action="store_true",
                         help="also write <stem>_points.ply, the depth as a coloured point cloud"),
        "camera": dict(default=None,
                       help="camera.json of the photos (default: each photo's EXIF, else the training camera)"),
        "focal_rescale": dict(action=BOOL, default=True,
                              help="metric depth x fx_photo / fx_train for a photo of another focal length"),
        "video_layout": dict(choices=["auto", "side", "stacked"], default="auto",
                             help="a video's depth video: frame and depth side by side or stacked"),
        "temporal": dict(action=BOOL, default=True,
                         help="videos: one colour scale, frame scales aligned, blended along the camera motion"),
        "save_raw": dict(action="store_true", help="videos: also each frame's unaligned depth, <frame>_depth_raw.npy"),
        "calib_path": dict(default=None, help="folder of KITTI's calibration files, for --velo_filename"),
        "velo_filename": dict(default=None, help="velodyne scan (.bin) of the image: print the metrics against it"),
    }),
    "compiled": ("compiled network (predict.py, app.py, serve.py)", {
        "eager": dict(action="store_true",
                      help="run the network in Paddle's dynamic graph instead of the compiled program"),
    }),
    "pose_evaluation": ("pose evaluation (evaluate_pose.py, M2's odometry protocol)", {
        "save_pred_poses": dict(action="store_true",
                                help="write the predicted poses to <weights>/poses_odom_<sequence>.npy"),
    }),
    "convert": ("checkpoint conversion (convert_checkpoint.py)", {
        "output_folder": dict(required=True, help="where the weights are written in the original's key layout"),
        "models_to_convert": dict(nargs="+", default=None, help="networks to convert (default: every one present)"),
    }),
    "export": ("export (export.py)", {
        "save_dir": dict(required=True, help="folder for the static models and deploy.json (replaced)"),
        "combined": dict(action="store_true", help="one model image -> disparity instead of encoder + depth models"),
        "format": dict(choices=["paddle", "onnx"], default="paddle",
                       help="paddle: Paddle Inference programs; onnx: those and .onnx models"),
        "precision": dict(choices=["fp32", "int8", "bf16"], default="fp32",
                          help="int8 (ONNX Runtime) or bf16 (oneDNN), gated on --gate_split's metrics"),
        "gate_split": dict(default=os.path.join("data", "synthetic_kitti"),
                           help="dataset whose test split gates int8/bf16 (KITTI layout or your own sequences)"),
        "max_abs_rel_change": dict(type=float, default=0.01,
                                   help="refuse int8/bf16 when abs_rel moves by more than this fraction of fp32's"),
        "max_delta1_change": dict(type=float, default=0.5,
                                  help="refuse int8/bf16 when a1 (delta < 1.25, %%) moves by more than this many points"),
        "calib_images": dict(default=os.path.join("data", "synthetic_kitti"),
                             help="folder of photos to calibrate int8 on (the gate split's frames left out)"),
        "calib_count": dict(type=int, default=16, help="photos used for calibration"),
    }),
    "inference": ("inference (inference.py)", {
        "infer_files_dir": dict(required=True, help="folder written by export.py (models + deploy.json)"),
        "backend": dict(choices=["paddle", "onnxruntime"], default="paddle",
                        help="Paddle Inference or ONNX Runtime (needs export.py --format onnx)"),
        "cpu_threads": dict(type=int, default=0, help="CPU threads, 0 = every core"),
        "onednn": dict(action=BOOL, default=True, help="oneDNN kernels on the CPU (Paddle backend)"),
        "use_trt": dict(action="store_true", help="TensorRT subgraphs (Paddle backend on a GPU)"),
        "trt_precision": dict(choices=["fp32", "fp16"], default="fp32", help="TensorRT precision"),
    }),
    "app": ("web page (app.py)", {
        "host": dict(default="127.0.0.1", help="address the page listens on; 0.0.0.0 serves every interface"),
        "port": dict(type=int, default=7860, help="port of the page"),
        "share": dict(action=BOOL, default=False, help="also ask Gradio for a temporary public link"),
        "max_image_pixels": dict(type=int, default=20_000_000,
                                 help="refuse photos and frames of more pixels than this"),
        "max_video_frames": dict(type=int, default=300, help="refuse videos of more frames than this"),
        "max_upload_mb": dict(type=int, default=200, help="largest file the page accepts, in megabytes"),
    }),
    "ray": (RAY, {
        "engine": dict(choices=["local", "ray"], default="local",
                       help="local: this process; ray: a Ray Data actor pool writing the same files"),
        "address": dict(default=None, help="Ray cluster to join, e.g. auto (default: $RAY_ADDRESS, else a local Ray)"),
        "worker_cpus": dict(type=float, default=None,
                            help="CPUs (and Paddle threads) per replica or actor (default: cores / their number)"),
        "num_actors": dict(type=int, default=1, help="actors of --engine ray, each holding the networks once"),
        "replicas": dict(type=int, default=1, help="replicas of the service, each holding the networks once"),
        "max_replicas": dict(type=int, default=None, help="autoscale up to this many replicas (default: no autoscaling)"),
        "max_batch_size": dict(type=int, default=4, help="requests a replica runs through the network at once"),
        "batch_wait_ms": dict(type=float, default=5.0, help="how long a replica waits to fill a batch, milliseconds"),
        "max_ongoing_requests": dict(type=int, default=None,
                                     help="requests a replica holds at once (default: 2 x --max_batch_size)"),
        "max_queued_requests": dict(type=int, default=64, help="requests queued beyond those; more are answered 503"),
    }),
    "gt_export": ("ground-truth export (export_gt_depth.py)", {
        "source": dict(choices=["velodyne", "annotated"],
                       help="velodyne scans or annotated depth (default: annotated for eigen_benchmark)"),
        "output": dict(help="output file (default: <split folder>/gt_depths.npz)"),
    }),
    "hint_export": ("depth-hint precomputation (precompute_depth_hints.py, Depth Hints' fused SGM)", {
        "filenames": dict(help="one split file instead of --split"),
        "save_path": dict(help="output root (default: <data_path>/depth_hints)"),
    }),
    "synthetic": ("synthetic KITTI (python -m synthetic)", {
        "out": dict(default=os.path.join("data", "synthetic_kitti"), help="output folder"),
        "drives": dict(type=int, default=3, help="number of drives; the last is the test drive"),
        "frames": dict(type=int, default=24, help="frames per drive"),
        "layout": dict(choices=["kitti", "folder"], default="kitti",
                       help="kitti: KITTI raw's layout and camera; folder: the folder layout"),
        "azimuth_step": dict(type=float, default=0.4, help="velodyne horizontal resolution in degrees"),
    }),
    "refine": ("diffusion refinement head (train_refine.py; docs/DIFFUSION_REFINEMENT.md §5)", {
        "cond_channels": dict(type=int, default=256, help="width of the condition and the denoiser"),
        "depth_mapping": dict(choices=["mlda", "paper"], default="mlda",
                              help="decoder output -> depth: mlda (disp_to_depth) or paper (1/s - 1)"),
        "paper_output_act": dict(action=BOOL, default=False,
                                 help="end the denoiser with GroupNorm + ReLU as DiffusionDepth's code"),
        "ddim_steps": dict(type=int, default=None, help="DDIM steps of the 1000-step schedule (default: the head's)"),
        "strength": dict(type=float, default=None,
                         help="start from MLDA's depth noised to this share of the steps (default: the head's)"),
        "noise_seed": dict(type=int, default=None, help="seed of the fixed start noise (default: the head's)"),
        "w_ddim": dict(type=float, default=1.0, help="weight of the self-diffusion loss, 0 = off"),
        "grad_steps": dict(type=int, default=0,
                           help="keep gradients through the last K denoiser calls only, 0 = all"),
        "freeze_mlda": dict(action=BOOL, default=True,
                            help="keep MLDA-Net fixed; --no-freeze_mlda fine-tunes it at 0.1 x the lr"),
        "detach_ddim_target": dict(action=BOOL, default=False,
                                   help="stop the self-diffusion loss's gradient into its target"),
        "pixel_loss": dict(choices=["l1l2", "sig"], default="l1l2", help="l1l2: per-image L1 + L2; sig: SILog"),
        "warmup_steps": dict(type=int, default=-1, help="linear learning-rate warm-up steps, -1 = one epoch"),
        "refine": dict(action=BOOL, default=True, help="use the weights folder's diffusion head when it has one"),
    }),
    "calibration": (CALIBRATE_SECTION, {
        "images": dict(default=None, metavar="DIR",
                       help="calibrate from the chessboard photos in DIR (the left camera's with --right)"),
        "right": dict(default=None, metavar="DIR|FILE",
                      help="the right camera: chessboard photos, frames (--rectify) or a file (--import)"),
        "board": dict(default="9x6", metavar="COLSxROWS",
                      help="inner corners of the chessboard, columns x rows (9x6: 10 x 7 squares)"),
        "square": dict(type=float, default=None, metavar="METRES",
                       help="side of one board square in metres (stereo: the baseline's unit)"),
        "rectify": dict(action="store_true",
                        help="write undistorted, rectified frames of --left (and --right) into --out"),
        "calibration": dict(default=None, metavar="CAMERA_JSON",
                            help="camera.json of calibrate.py --images or --import, for --rectify"),
        "left": dict(default=None, metavar="DIR", help="the left camera's frames for --rectify"),
        "import": dict(default=None, dest="import_file", metavar="FILE",
                       help="camera.json from a KITTI, ROS, OpenCV or COLMAP calibration file"),
        "camera_id": dict(type=int, default=None, metavar="N",
                          help="--import: which camera of the file (KITTI 0-3, COLMAP id, OpenCV 1 or 2)"),
        "image_size": dict(default=None, metavar="WxH",
                           help="--import: the image size, for files that do not store it"),
        "rectify_alpha": dict(type=float, default=0.0, metavar="ALPHA",
                              help="stereo rectification: 0 keeps only pixels both cameras saw, 1 every pixel"),
    }),
}

# Options that exclude each other where a parser has both.
EXCLUSIVE = [("eval_mono", "eval_stereo", "eval_metric", "camera_height")]

# Per script: the groups it uses, in --help order; (group, names) takes only some of a group's options.
SCRIPT_GROUPS = {
    "train": (("data", ("dataset", "data_path", "split", "png")), "run", "weights", "model", "training",
              "depth_hints", "metric", "optimisation", "logging", "system"),
    "test": ("weights", ("data", ("dataset", "data_path", "eval_split", "png")), "scaling", "evaluation",
             ("optimisation", ("batch_size",)), ("system", ("device", "num_workers", "num_threads")),
             ("refine", ("refine", "ddim_steps", "strength", "noise_seed"))),
    "predict": ("weights", "prediction", ("scaling", ("eval_mono", "camera_height")), "compiled",
                ("system", ("device", "num_threads")), ("refine", ("refine", "ddim_steps", "strength", "noise_seed")),
                ("ray", ("engine", "address", "num_actors", "worker_cpus")), ("optimisation", ("batch_size",), RAY)),
    "evaluate_pose": (("weights", ("load_weights_folder",)), ("data", ("data_path", "eval_split", "png")),
                      ("optimisation", ("batch_size",)), "pose_evaluation",
                      ("system", ("device", "num_workers", "num_threads"))),
    "convert_checkpoint": (("weights", ("load_weights_folder",)), "convert"),
    "export": ("weights", "export", ("model", ("height", "width")), ("refine", ("refine", "ddim_steps", "strength"))),
    "inference": ("inference", ("system", ("device",)), "prediction", ("scaling", ("eval_mono", "camera_height"))),
    # borrowed options join calibrate's own section (a third element: the --help section they are shown in)
    "calibrate": ("calibration", ("synthetic", ("out",), CALIBRATE_SECTION),
                  ("export", ("format",), CALIBRATE_SECTION), ("data", ("overwrite",), CALIBRATE_SECTION)),
    "app": (("weights", ("load_weights_folder",)), "inference",
            ("prediction", ("colormap", "pred_depth_scale_factor", "camera", "focal_rescale")), ("system", ("device",)),
            "compiled", "app"),
    "serve": (("weights", ("load_weights_folder",)),
              ("inference", ("infer_files_dir", "backend", "onednn", "use_trt", "trt_precision")),
              ("prediction", ("pred_depth_scale_factor", "focal_rescale")), "compiled", ("system", ("device",)),
              ("app", ("host", "port", "max_upload_mb", "max_image_pixels")),
              ("ray", ("address", "replicas", "max_replicas", "worker_cpus", "max_batch_size", "batch_wait_ms",
                       "max_ongoing_requests", "max_queued_requests"))),
    "export_gt_depth": (("data", ("data_path", "split")), "gt_export"),
    "precompute_depth_hints": (("data", ("dataset", "data_path", "split", "img_ext", "overwrite")), "hint_export",
                               ("model", ("height", "width")), ("system", ("num_workers",))),
    "synthetic": ("synthetic", ("data", ("img_ext", "overwrite")), ("model", ("width", "height")),
                  ("system", ("seed",))),
    "train_refine": (("data", ("dataset", "data_path", "split", "png")),
                     ("run", ("log_dir", "model_name", "resume", "checkpoint_steps", "checkpoint_minutes")),
                     "weights", ("model", ("height", "width")),
                     ("refine", ("cond_channels", "depth_mapping", "paper_output_act", "ddim_steps", "strength",
                                 "noise_seed", "w_ddim", "grad_steps", "freeze_mlda", "detach_ddim_target",
                                 "pixel_loss", "warmup_steps")),
                     ("training", ("max_steps",)),
                     ("optimisation", ("batch_size", "learning_rate", "num_epochs", "lr_decay", "max_bad_steps")),
                     ("logging", ("log_frequency", "val_max_images")), "system"),
}

_KITTI_ROOT = dict(required=True, default=None, help="KITTI raw root")
# test.py and precompute_depth_hints.py read either layout; which one follows from --data_path unless given
_LAYOUT = dict(choices=["kitti", "folder"], default=None,
               help="kitti or folder (default: folder when <data_path>/camera.json exists)")
_VELODYNE_MONO = dict(help="the velodyne check uses median scaling")

# Per script: the add_argument keywords that differ from the group's for that script (default, help,
# required, choices); the rest of the definition (flag, type, action) stays the group's.
SCRIPT_DEFAULTS = {
    "train_refine": {
        "load_weights_folder": dict(help="the MLDA-Net weights folder the head refines"),
        "height": dict(default=None, help="input height, a multiple of 32 (default: the weights folder's)"),
        "width": dict(default=None, help="input width, a multiple of 32 (default: the weights folder's)"),
        "model_name": dict(default="refine", help="name of the run folder under --log_dir"),
        "ddim_steps": dict(default=20, help="DDIM steps of the training loop"),
        "strength": dict(default=0.5, help="start from MLDA's depth noised to this share of the steps"),
        "noise_seed": dict(default=0, help="seed of the start noise used at inference (refine.json)"),
        "batch_size": dict(default=4, help="samples per step"),
        "learning_rate": dict(default=1e-3, help="Adam learning rate of the head"),
        "num_epochs": dict(default=30, help="epochs"),
        "lr_decay": dict(default=0.2, help="learning-rate factor after 1/3 and again after 1/2 of the epochs"),
    },
    "train": {
        "load_weights_folder": dict(help="fine-tune from this weights folder"),
        "batch_coupled_filter": dict(help="guided-filter attention normalised over the batch, as the original"),
    },
    "test": {
        "dataset": _LAYOUT,
        "data_path": dict(help="KITTI raw root, or the ROOT of your own sequences"),
        "png": dict(help="test images are .png instead of .jpg"),
        "batch_size": dict(default=16, help="images per forward pass"),
        "ddim_steps": dict(nargs="+",
                           help="the diffusion head's depth for each of these step counts (default: the head's)"),
    },
    "predict": {"eval_mono": _VELODYNE_MONO, "batch_size": dict(default=4, help="images per network call of --engine ray")},
    "serve": {
        "load_weights_folder": dict(help="weights folder to serve (or --infer_files_dir)"),
        "infer_files_dir": dict(required=False, default=None, help="folder written by export.py to serve instead"),
        "device": dict(choices=["cpu", "gpu"], default="cpu", help="cpu, or gpu (one GPU per replica)"),
        "host": dict(help="address the service listens on; 0.0.0.0 serves every interface"),
        "focal_rescale": dict(help="metric depth x fx_photo / fx_train from each upload's EXIF focal length"),
        "port": dict(default=8000, help="port of the service"),
        "max_upload_mb": dict(default=50, help="refuse request bodies larger than this, in megabytes (413)"),
        "max_image_pixels": dict(help="refuse images of more pixels than this before decoding them (413)"),
    },
    "evaluate_pose": {
        "data_path": dict(default="kitti_odom", help="KITTI odometry root (sequences/, poses/)"),
        "eval_split": dict(default="odom_9", help="odom_9 | odom_10, or a split file of your own"),
        "png": dict(default=True, help="frames are .png as KITTI ships them"),
        "batch_size": dict(default=16, help="frame pairs per forward pass"),
    },
    "export": {
        "height": dict(default=None, help="input height, a multiple of 32 (default: the weights folder's)"),
        "width": dict(default=None, help="input width, a multiple of 32 (default: the weights folder's)"),
        "ddim_steps": dict(nargs="+", help="one unrolled program per step count (default: the head's)"),
        "strength": dict(help="strength of the unrolled programs (default: the head's)"),
    },
    "inference": {
        "device": dict(choices=["cpu", "gpu"], default="cpu", help="cpu or gpu"),
        "eval_mono": _VELODYNE_MONO,
    },
    "app": {
        "load_weights_folder": dict(help="weights folder to serve (or --infer_files_dir)"),
        "infer_files_dir": dict(required=False, default=None, help="folder written by export.py to serve instead"),
        "colormap": dict(help="colour map the page starts with"),
        "device": dict(choices=["cpu", "gpu"], default="cpu", help="cpu or gpu"),
    },
    "calibrate": {
        "format": dict(choices=["auto", "kitti", "ros", "opencv", "colmap"], default="auto",
                       help="format of --import; auto: from the file's name and content"),
        "overwrite": dict(help="--rectify: replace the sequence's existing left/ and right/ frames"),
        "out": dict(required=True, default=None,
                    help="ROOT/camera.json to write, or the sequence folder ROOT/<sequence> for --rectify"),
    },
    "export_gt_depth": {
        "data_path": _KITTI_ROOT,
        "split": dict(default="eigen", help="eigen | eigen_benchmark, or a folder holding test_files.txt"),
    },
    "precompute_depth_hints": {
        "dataset": _LAYOUT,
        "data_path": dict(required=True, default=None,
                          help="KITTI raw root, or the ROOT of your own stereo sequences"),
        "split": dict(help="hints for this split's train and val files"),
        "height": dict(default=320, help="working height"),
        "width": dict(default=1024, help="working width"),
        "num_workers": dict(default=max(1, (os.cpu_count() or 1)), help="processes (default: every core)"),
    },
    "synthetic": {
        "seed": dict(help="the same seed writes the same bytes"),
        "width": dict(default=621, help="image width"),
        "height": dict(default=188, help="image height"),
        "img_ext": dict(help=None),
        "overwrite": dict(help="replace an existing folder"),
    },
}

def _selected(specs):
    """[(group, [names])] of group specs: 'group' (all its options) or ('group', names[, --help section])."""
    out = []
    for spec in specs:
        group, names = (spec, None) if isinstance(spec, str) else spec[:2]
        out.append((group, list(GROUPS[group][1]) if names is None else list(names)))
    return out


def _titles(specs):
    """The --help section of each group spec: the group's title, or the spec's third element."""
    return [GROUPS[spec][0] if isinstance(spec, str) else spec[2] if len(spec) > 2 else GROUPS[spec[0]][0]
            for spec in specs]


def build_parser(script="train", groups=None, description=None):
    """An OptionsParser holding the options of `groups` (default: SCRIPT_GROUPS[script]) in that order,
    with SCRIPT_DEFAULTS[script] applied."""
    specs = SCRIPT_GROUPS[script] if groups is None else groups
    selected = _selected(specs)
    overrides = SCRIPT_DEFAULTS.get(script, {})
    names = {name for _, group_names in selected for name in group_names}
    exclusive, sections = {}, {}
    parser = OptionsParser(prog=f"{script}.py", description=description, formatter_class=HelpFormatter)
    for (group, group_names), title in zip(selected, _titles(specs)):
        table = GROUPS[group][1]
        if title not in sections:
            sections[title] = parser.add_argument_group(title)
        group_section = sections[title]
        for name in group_names:
            section = group_section
            pair = next((p for p in EXCLUSIVE if name in p and set(p) <= names), None)
            if pair:   # both options of an exclusive pair: one mutually exclusive group
                if pair not in exclusive:
                    exclusive[pair] = section.add_mutually_exclusive_group()
                section = exclusive[pair]
            keywords = {**table[name], **overrides.get(name, {})}
            section.add_argument(f"--{name}", **keywords)
    return parser


# ---------------------------------------------------------------------------------------------
# Checks: each gets (opt, error) and calls error("one line") for a bad value. GROUP_CHECKS holds one
# check per option group, run for every script that has options of that group (each looks only at the
# options present); SCRIPT_CHECKS holds the rules of one script (which options it requires, what its
# sizes mean).
# ---------------------------------------------------------------------------------------------

def network_size_error(name, value):
    """The one-line complaint about --<name> `value` as a network input size (the rule:
    utils.io.image_io.network_size_problem), or None when it is fine."""
    from utils.io.image_io import network_size_problem
    problem = network_size_problem(value)
    return f"--{name} {value}: {problem}" if problem else None


def _at_least(opt, error, names, low, text):
    for name in names:
        if name in opt and opt[name] is not None and opt[name] < low:
            error(f"--{name} {opt[name]}: must be {text}")


def check_run(opt, error):
    # <run>/checkpoint is briefly absent while a new one is renamed in; <run>/checkpoint_previous then holds one
    resume = opt.get("resume")
    if resume and not (os.path.isdir(resume) or os.path.isdir(os.path.normpath(resume) + "_previous")):
        error(f"--resume {resume}: no such folder (a run's checkpoint folder, e.g. logs/mlda/checkpoint)")
    if resume and opt.get("load_weights_folder"):
        error("--resume and --load_weights_folder exclude each other: --resume already restores the weights")
    _at_least(opt, error, ("checkpoint_steps", "checkpoint_minutes"), 0, ">= 0 (0 = off)")
    bad = set(opt.get("models_to_load", ())) - {"encoder", "depth", "pose_encoder", "pose"}
    if bad:
        error(f"--models_to_load {' '.join(sorted(bad))}: choose from encoder depth pose_encoder pose")


def check_weights(opt, error):
    folder = opt.get("load_weights_folder")
    if folder is not None and not os.path.isdir(folder):
        error(f"--load_weights_folder {folder}: no such folder")


def check_model(opt, error):
    if "scales" in opt and (not opt.scales or len(set(opt.scales)) != len(opt.scales)
                            or not set(opt.scales) <= {0, 1, 2, 3}):
        error(f"--scales {' '.join(map(str, opt.scales))}: must be distinct values from 0 1 2 3")
    if "min_depth" in opt and not 0 < opt.min_depth < opt.max_depth:
        error(f"--min_depth {opt.min_depth} / --max_depth {opt.max_depth}: need 0 < min_depth < max_depth")


def check_training(opt, error):
    _at_least(opt, error, ("max_steps",), 0, ">= 0")
    if "frame_ids" not in opt:
        return
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


def check_depth_hints(opt, error):
    if opt.get("use_depth_hints") and not opt.get("use_stereo", False):
        error("--use_depth_hints needs stereo training: add --use_stereo or pass --no-use_depth_hints")


def check_metric(opt, error):
    for name in ("sparse_depth_weight", "velocity_weight"):
        if opt[name] < 0:
            error(f"--{name} {opt[name]}: must be >= 0 (0 = off)")
    if not 0 <= opt.silog_lambda < 1:
        error(f"--silog_lambda {opt.silog_lambda}: must be in [0, 1) (1 leaves the scale unsupervised)")
    if opt.lidar_beams != 64 and not opt.sparse_depth_weight:
        error(f"--lidar_beams {opt.lidar_beams} thins the sparse depth supervision: add --sparse_depth_weight W")
    if opt.lidar_beams != 64 and opt.get("dataset") == "folder":
        error(f"--lidar_beams {opt.lidar_beams} thins KITTI's velodyne scans; --dataset folder has depth maps")
    if opt.velocity_weight and opt.get("dataset") == "folder":
        error("--velocity_weight needs KITTI's oxts GPS/IMU records (--dataset kitti or synthetic)")
    if opt.velocity_weight and len(opt.frame_ids) < 2:
        error("--velocity_weight needs temporal source frames (--frame_ids 0 -1 1)")


def check_optimisation(opt, error):
    _at_least(opt, error, ("batch_size", "num_epochs", "scheduler_step_size", "max_bad_steps"), 1, "at least 1")
    if "learning_rate" in opt and opt.learning_rate <= 0:
        error(f"--learning_rate {opt.learning_rate}: must be > 0")
    if "lr_decay" in opt and not 0 < opt.lr_decay <= 1:
        error(f"--lr_decay {opt.lr_decay}: must be in (0, 1]")


def check_logging(opt, error):
    _at_least(opt, error, ("log_frequency", "save_frequency", "num_log_images"), 1, "at least 1")
    if opt.get("val_max_images", 0) < 0:
        error(f"--val_max_images {opt.val_max_images}: must be >= 0")


def check_system(opt, error):
    if opt.get("num_workers", 0) < 0 or opt.get("num_threads", 0) < 0:
        error("--num_workers and --num_threads must be >= 0")


def check_scaling(opt, error):
    if opt.get("camera_height") is None:
        return
    if not opt.camera_height > 0:
        error(f"--camera_height {opt.camera_height}: must be > 0 (the camera's height above the road in metres, "
              "KITTI: 1.65)")
    if opt.get("pred_depth_scale_factor") is not None:
        error("--camera_height and --pred_depth_scale_factor exclude each other: the ground plane gives each image "
              "its own factor; drop one of them")


def check_evaluation(opt, error):
    if opt.get("ext_disp_to_eval") and not os.path.isfile(opt.ext_disp_to_eval):
        error(f"--ext_disp_to_eval {opt.ext_disp_to_eval}: no such file")


def _video_extensions():
    from utils.io.video import VIDEO_EXTENSIONS
    return VIDEO_EXTENSIONS


def check_prediction(opt, error):
    if opt.get("pred_depth_scale_factor") is not None and opt.pred_depth_scale_factor <= 0:
        error(f"--pred_depth_scale_factor {opt.pred_depth_scale_factor}: must be > 0")
    if opt.get("camera") and not os.path.isfile(opt.camera):
        error(f"--camera {opt.camera}: no such file (a camera.json with fx, fy, cx, cy, width, height)")
    if "color_path" not in opt:   # app.py: the page's uploads are checked there
        return
    if not os.path.exists(opt.color_path):
        error(f"--color_path {opt.color_path}: no such file or folder")
    if opt.velo_filename and not opt.calib_path:
        error("--velo_filename needs --calib_path, the folder holding calib_cam_to_cam.txt and "
              "calib_velo_to_cam.txt (KITTI's <data_path>/<date>)")
    if opt.calib_path and not opt.velo_filename:
        error("--calib_path is only used with --velo_filename (the scan to compare with)")
    if opt.velo_filename and os.path.isdir(opt.color_path):
        error("--velo_filename compares one image with its scan: give --color_path an image, not a folder")
    if opt.velo_filename and os.path.splitext(opt.color_path)[1].lower() in _video_extensions():
        error("--velo_filename compares one image with its scan: give --color_path an image, not a video")
    if opt.camera and not (opt.save_ply or opt.camera_height or opt.focal_rescale):
        error("--camera is only used with --save_ply, --camera_height or the focal rescaling of metric depth (the "
              "camera of the point clouds, of the ground plane and of the photos)")
    if opt.output_dir and os.path.exists(opt.output_dir) and not os.path.isdir(opt.output_dir):
        error(f"--output_dir {opt.output_dir}: is a file, not a folder; give a folder (created if missing)")


def check_inference(opt, error):
    if opt.infer_files_dir is not None and not os.path.isdir(opt.infer_files_dir):   # None: app.py with weights
        error(f"--infer_files_dir {opt.infer_files_dir}: no such folder (write one with export.py --save_dir)")
    if opt.get("cpu_threads", 0) < 0:   # serve.py: --worker_cpus
        error(f"--cpu_threads {opt.cpu_threads}: must be >= 0")
    if opt.use_trt and (opt.device != "gpu" or opt.backend != "paddle"):
        error("--use_trt needs --device gpu and --backend paddle")


def check_export(opt, error):
    _at_least(opt, error, ("calib_count",), 1, ">= 1")
    for name, unit in (("max_abs_rel_change", "a fraction: 0.01 is 1 %"), ("max_delta1_change", "points of a1 in %")):
        if name in opt and not opt[name] > 0:   # calibrate.py borrows only --format
            error(f"--{name} {opt[name]}: must be > 0 ({unit})")
    if opt.get("precision", "fp32") != "fp32" and not os.path.isdir(opt.gate_split):
        error(f"--gate_split {opt.gate_split}: no such folder (python -m synthetic writes the synthetic KITTI there; "
              "or give the root of your own sequences with depth maps)")


def check_app(opt, error):
    if (opt.load_weights_folder is None) == (opt.infer_files_dir is None):
        error("give one of --load_weights_folder (a weights folder) and --infer_files_dir (a folder of export.py)")
    if opt.eager and opt.infer_files_dir:
        error("--eager runs a weights folder's network in Paddle's dynamic graph; --infer_files_dir is an exported "
              "model, which has no eager form: drop --eager or give --load_weights_folder")
    if not 0 < opt.port < 65536:
        error(f"--port {opt.port}: must be in 1..65535")
    _at_least(opt, error, ("max_image_pixels", "max_video_frames", "max_upload_mb"), 1, "at least 1")


def check_refine(opt, error):
    if opt.get("ddim_steps") is not None:
        for n in (opt.ddim_steps if isinstance(opt.ddim_steps, list) else [opt.ddim_steps]):
            if not 1 <= n <= 1000:
                error(f"--ddim_steps {n}: must be in 1..1000 (the schedule has 1000 training steps)")
    if opt.get("strength") is not None and not 0 < opt.strength <= 1:
        error(f"--strength {opt.strength}: must be in (0, 1]")
    if "cond_channels" in opt and (opt.cond_channels < 4 or opt.cond_channels % 4):
        error(f"--cond_channels {opt.cond_channels}: must be a positive multiple of 4 (GroupNorm of 4 groups)")
    _at_least(opt, error, ("w_ddim", "grad_steps"), 0, ">= 0")


def check_calibration(opt, error):
    from utils.cameras.record import parse_pair

    modes = [flag for flag, on in (("--images", opt.images), ("--rectify", opt.rectify), ("--import", opt.import_file))
             if on]
    if len(modes) != 1:
        error(("give one of" if not modes else f"{' and '.join(modes)} exclude each other; give one of") +
              " --images DIR (calibrate from chessboard photos), --import FILE (a calibration you have) and --rectify "
              "(rectified frames from a calibration)")
    owners = (("--left", opt.left, "--rectify"), ("--calibration", opt.calibration, "--rectify"),
              ("--camera_id", opt.camera_id is not None, "--import"), ("--image_size", opt.image_size, "--import"))
    wrong = [(flag, mode) for flag, on, mode in owners if on and mode not in modes]
    if wrong:
        error(f"{wrong[0][0]} belongs to {wrong[0][1]}")
    folders = [("--images", opt.images), ("--left", opt.left)] + ([] if opt.import_file else [("--right", opt.right)])
    for flag, path in folders:
        if path and not os.path.isdir(path):
            error(f"{flag} {path}: no such folder")
    for flag, path in (("--import", opt.import_file), ("--calibration", opt.calibration),
                       ("--right", opt.right if opt.import_file else None)):
        if path and not os.path.isfile(path):
            error(f"{flag} {path}: no such file")
    board = parse_pair(opt.board)
    if board is None or min(board) < 2:
        error(f"--board {opt.board}: give the inner corners as COLSxROWS, e.g. 9x6 for a board of 10 x 7 squares")
    if opt.square is not None and not opt.square > 0:
        error(f"--square {opt.square}: must be > 0 (metres)")
    if opt.images and opt.right and opt.square is None:
        error("stereo calibration needs --square (the board square's side in metres): the baseline is measured in it")
    if opt.rectify and not (opt.calibration and opt.left):
        error("--rectify needs --calibration CAMERA_JSON and --left DIR (and --right DIR for a stereo pair)")
    if opt.image_size and parse_pair(opt.image_size) is None:
        error(f"--image_size {opt.image_size}: give WIDTHxHEIGHT in pixels, e.g. 1280x720")
    if not 0 <= opt.rectify_alpha <= 1:
        error(f"--rectify_alpha {opt.rectify_alpha}: must be in [0, 1]")


def check_ray(opt, error):
    _at_least(opt, error, ("num_actors", "replicas", "max_batch_size"), 1, "at least 1")
    if opt.get("worker_cpus") is not None and not opt.worker_cpus > 0:
        error(f"--worker_cpus {opt.worker_cpus}: must be > 0")
    if opt.get("max_replicas") is not None and opt.max_replicas < opt.replicas:
        error(f"--max_replicas {opt.max_replicas}: must be at least --replicas {opt.replicas}")
    if opt.get("batch_wait_ms", 0) < 0:
        error(f"--batch_wait_ms {opt.batch_wait_ms}: must be >= 0")
    if "max_ongoing_requests" in opt and opt.max_ongoing_requests is None:
        opt.max_ongoing_requests = 2 * opt.max_batch_size
    if "max_ongoing_requests" in opt and opt.max_ongoing_requests < opt.max_batch_size:
        error(f"--max_ongoing_requests {opt.max_ongoing_requests}: must be at least --max_batch_size "
              f"{opt.max_batch_size} (a batch is made of the requests a replica holds)")
    if opt.get("max_queued_requests", 1) < 1:
        error(f"--max_queued_requests {opt.max_queued_requests}: must be at least 1 (the queue is bounded; "
              "requests beyond it are answered 503)")


GROUP_CHECKS = {"run": check_run, "weights": check_weights, "model": check_model, "training": check_training,
                "depth_hints": check_depth_hints, "metric": check_metric, "optimisation": check_optimisation,
                "logging": check_logging, "system": check_system, "scaling": check_scaling,
                "evaluation": check_evaluation, "prediction": check_prediction, "inference": check_inference,
                "export": check_export, "app": check_app, "refine": check_refine,
                "calibration": check_calibration, "ray": check_ray}


def network_size(opt, error):
    """--height / --width are the network's input size (None: the weights folder's)."""
    for name in ("height", "width"):
        message = network_size_error(name, opt[name]) if opt[name] is not None else None
        if message:
            error(message)


def weights_required(opt, error):
    if opt.load_weights_folder is None and not opt.get("ext_disp_to_eval"):
        error("--load_weights_folder is required (a folder with encoder.pdparams and depth.pdparams)")


def data_path_exists(opt, error):
    if not os.path.isdir(opt.data_path):
        error(f"--data_path {opt.data_path}: no such folder")


def hint_export_sizes(opt, error):
    """precompute_depth_hints.py: a working size of its own (any size of 8 or more) and a process pool."""
    if opt.height < 8 or opt.width < 8:
        error("--height and --width must be at least 8")
    if opt.num_workers < 1:
        error(f"--num_workers {opt.num_workers}: must be at least 1")


def calibration_out(opt, error):
    """calibrate.py --out: a camera.json to write (--images, --import), a sequence folder (--rectify)."""
    if not opt.rectify and os.path.isdir(opt.out):
        error(f"--out {opt.out}: is a folder; name the file, e.g. {os.path.join(opt.out, 'camera.json')}")


def qat_weights_required(opt, error):
    if opt.qat and not opt.load_weights_folder and not opt.resume:
        error("--qat fine-tunes trained weights: give them with --load_weights_folder (e.g. logs/quickstart/models/best)")


def refine_weights_required(opt, error):
    if not opt.load_weights_folder and not opt.resume:
        error("--load_weights_folder is required: the MLDA-Net weights folder the head refines")


RAY_MISSING = "needs Ray: pip install -r requirements-serve.txt (ray[serve,data])"


def ray_engine(opt, error):
    """predict.py: the Ray options only with --engine ray, which needs Ray and writes the per-photo files only."""
    if opt.engine == "local":
        given = [n for n in ("address", "worker_cpus") if opt[n] is not None] + (["num_actors"] * (opt.num_actors != 1))
        if given:
            error(f"--{given[0]} is an option of --engine ray")
        return
    ray_installed(opt, error, "--engine ray")
    unsupported = [n for n in ("velo_filename", "camera_height") if opt.get(n)]
    if unsupported:
        error(f"--{unsupported[0]} works with --engine local only (--engine ray writes the per-photo files)")
    if opt.batch_coupled_filter:
        error("--batch_coupled_filter makes a photo's depth depend on its batch: use --engine local")
    if os.path.splitext(opt.color_path)[1].lower() in _video_extensions():
        error("--engine ray predicts photos; give a video to --engine local")


def ray_installed(opt, error, what="serve.py"):
    import importlib.util
    if importlib.util.find_spec("ray") is None:
        error(f"{what} {RAY_MISSING}")


SCRIPT_CHECKS = {
    "train": (network_size, qat_weights_required),
    "export": (network_size, weights_required),
    "train_refine": (network_size, refine_weights_required),
    "test": (weights_required,),             # unless --ext_disp_to_eval
    "predict": (weights_required, ray_engine),
    "evaluate_pose": (weights_required,),
    "convert_checkpoint": (weights_required,),
    "export_gt_depth": (data_path_exists,),
    "precompute_depth_hints": (data_path_exists, hint_export_sizes),
    "calibrate": (calibration_out,),
    "serve": (ray_installed,),
}


def parse(script="train", argv=None, groups=None):
    """Parse `argv` (default sys.argv[1:]) for `script`; apply --dataset presets; check; return a Munch.

    Bad values end the program with one line '<script>.py: error: ...' and exit status 2.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(script, groups)
    known, _ = parser.parse_known_args(argv)
    preset = PRESETS.get(getattr(known, "dataset", None))
    if preset:
        parser.set_defaults(**{k: v for k, v in preset.items() if k in vars(known)})
    opt = Munch(vars(parser.parse_args(argv)))
    for group, _ in _selected(SCRIPT_GROUPS[script] if groups is None else groups):
        if group in GROUP_CHECKS:
            GROUP_CHECKS[group](opt, parser.error)
    for check in SCRIPT_CHECKS.get(script, ()):
        check(opt, parser.error)
    if "depth_hint_path" in opt and opt.depth_hint_path is None and "data_path" in opt:
        from utils.cameras.kitti_layout import default_hint_root
        opt.depth_hint_path = default_hint_root(opt.data_path)
    return opt


def check_before_imports(script, module_name):
    """Call at the top of a script, before its Paddle imports, with its __name__: run as a program, its command
    line is parsed and checked at once, so --help and mistakes answer in a second instead of after Paddle's
    import (several seconds). main() parses again later; parsing has no side effects."""
    if module_name == "__main__":
        parse(script)


def given_options(script="train", argv=None, groups=None):
    """The names of the options given explicitly in `argv` (not left at their defaults)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(script, groups)
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def to_json_dict(opt):
    """The options as a plain, JSON-serialisable dict (what opt.json stores)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(opt).items()}
