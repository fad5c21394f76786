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
some of its options). Where a script needs another default, help text, `required` or choices for a
shared option, SCRIPT_DEFAULTS[script][name] gives those keywords (over the group's definition).
Checks: one function per concern in CHECKS, run on every parse; each looks only at options present.
Adding an option: put it in a group (or a new group in GROUPS), list it in SCRIPT_GROUPS, add its
check to CHECKS. Defaults state their source in the help text (M2 = Monodepth2, DH = Depth Hints,
orig = the original MLDA-Net repository, PM = PaddleMono).
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
COLORMAPS = ["magma", "inferno", "plasma", "viridis", "cividis", "turbo", "jet", "bone", "hot", "gray"]


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
                        help="kitti: KITTI raw at --data_path; synthetic: the project's generated KITTI-layout "
                             "scene (created under --data_path if absent) with the small preset "
                             f"{PRESETS['synthetic']} (flags given still win); folder: one's own sequences "
                             "and camera.json at --data_path (README, utils/folder_layout.py; splits in "
                             f"<data_path>/splits, made when absent), preset {PRESETS['folder']}"),
        "data_path": dict(default="kitti_data",
                          help="KITTI raw root: <data_path>/<date>/<date>_drive_<nnnn>_sync/... (default as M2)"),
        "split": dict(default="eigen_zhou",
                      help="folder under splits/ with train_files.txt and val_files.txt; eigen_zhou is M2's and "
                           "DH's (orig: eigen_full); 'synthetic' = <data_path>/splits (default: %(default)s)"),
        "eval_split": dict(default="eigen",
                           help="eigen | eigen_benchmark (a folder under splits/) or the path of a folder holding "
                                "test_files.txt (and gt_depths.npz, computed there when absent) "
                                "(default: %(default)s)"),
        "png": dict(action=BOOL, default=False,
                    help="images are .png instead of M2's converted .jpg (a missing file of the chosen type "
                         "falls back to the other extension) (default: %(default)s)"),
        "img_ext": dict(default=".jpg", choices=[".jpg", ".png"],
                        help="image format (a frame missing in it is read in the other)"),
        "overwrite": dict(action="store_true", help="recompute hints that already exist"),
    }),
    "run": ("run folder", {
        "log_dir": dict(default="logs", help="runs are written to <log_dir>/<model_name>/ (default: %(default)s)"),
        "model_name": dict(default="mlda", help="name of the run folder under --log_dir (default: %(default)s)"),
        "models_to_load": dict(nargs="+", default=["encoder", "depth", "pose_encoder", "pose"],
                               help="which networks --load_weights_folder provides (default: all four)"),
        "resume": dict(default=None, metavar="FOLDER",
                       help="continue an interrupted run exactly from a checkpoint folder "
                            "(<log_dir>/<model_name>/checkpoint, written every epoch and on Ctrl-C)"),
    }),
    "weights": ("weights", {
        "load_weights_folder": dict(
            default=None,
            help="(required) weights folder (this project's, the original MLDA-Net's or PaddleMono's); its opt.json, "
                 "when present, gives the network size and depth range (else 192 x 640, 0.1-100)"),
        "batch_coupled_filter": dict(
            action=BOOL, default=False,
            help="normalise the guided-filter attention over the whole batch as the original and "
                 "PaddleMono do (needed to reproduce their published numbers, at --batch_size 16); "
                 "default: per sample, so a prediction does not depend on its batch"),
    }),
    "model": ("model", {
        "num_layers": dict(type=int, default=18, choices=[18, 34, 50, 101, 152],
                           help="ResNet depth of the backbones; published MLDA-Net weights are ResNet-18 "
                                "(default: %(default)s, M2/orig)"),
        "height": dict(type=int, default=192,
                       help="input height, a multiple of 32, >= 64 (default: %(default)s, M2/orig)"),
        "width": dict(type=int, default=640,
                      help="input width, a multiple of 32, >= 64 (default: %(default)s, M2/orig)"),
        "scales": dict(type=int, nargs="+", default=[0, 1, 2, 3],
                       help="decoder output scales used in the loss, subset of 0-3 (default: 0 1 2 3, M2/orig)"),
        "min_depth": dict(type=float, default=0.1,
                          help="minimum depth of disp_to_depth (default: %(default)s, M2/orig)"),
        "max_depth": dict(type=float, default=100.0,
                          help="maximum depth of disp_to_depth (default: %(default)s, M2/orig)"),
    }),
    "training": ("training", {
        "frame_ids": dict(nargs="+", type=int, default=[0, -1, 1],
                          help="frames to load, the target 0 first (default: 0 -1 1, M2/orig)"),
        "resize_on_device": dict(action="store_true",
                                 help="the loader workers only decode the frames; their Lanczos resizes (PIL's, to the "
                                      "bit) and colour jitter run on the training device: for GPU machines with few "
                                      "CPU cores (~2x the workers' samples/s, bench/RESULTS.md); slow on a CPU"),
        "skip_missing": dict(action="store_true",
                             help="drop training lines whose frames, neighbours or hints are missing (reported once "
                                  "with a count) instead of stopping at the first missing file"),
        "use_stereo": dict(action=BOOL, default=True,
                           help="use the stereo partner 's' as a source frame (default: %(default)s, mono+stereo as "
                                "orig and DH)"),
        "disparity_smoothness": dict(type=float, default=1e-3,
                                     help="edge-aware smoothness weight lambda (default: %(default)s, M2/DH and orig's "
                                          "test script; orig's training used 0)"),
        "weights_init": dict(default="pretrained",
                             help="backbone initialisation: 'pretrained' (ImageNet ResNet via paddle.vision, "
                                  "downloaded once), 'scratch', or PATH of a paddle.vision ResNet .pdparams "
                                  "(default: %(default)s, M2)"),
        "max_steps": dict(type=int, default=0,
                          help="stop after this many optimiser steps in all, 0 = no limit (default: %(default)s)"),
        "qat": dict(action="store_true",
                    help="quantisation-aware fine-tuning of --load_weights_folder: fake int8 on every convolution of "
                         "the depth network (training/qat.py), so that export.py --precision int8 of the result "
                         "keeps its accuracy; the weights saved are plain float weights"),
    }),
    "metric": ("metric depth: sparse depth and velocity supervision (issue 11; README \"Depth in metres\")", {
        "sparse_depth_weight": dict(type=float, default=0.0,
                                    help="weight of the loss on the pixels with ground-truth depth (KITTI: projected "
                                         "velodyne; --dataset folder: <sequence>/depth/) at scale 0, which trains "
                                         "depth in metres, 0 = off (default: %(default)s)"),
        "sparse_depth_loss": dict(choices=["silog", "l1"], default="silog",
                                  help="silog: mean(d^2) - lambda mean(d)^2, d = log pred - log gt (DiffusionDepth); "
                                       "l1: mean |pred - gt| in metres (default: %(default)s)"),
        "silog_lambda": dict(type=float, default=0.85,
                             help="lambda of silog, in [0, 1); 1 would leave the scale free (default: %(default)s, "
                                  "DiffusionDepth)"),
        "lidar_beams": dict(type=int, choices=[64, 32, 16, 8, 4], default=64,
                            help="train on every (64 / N)-th laser ring of KITTI's 64-beam velodyne only, as with a "
                                 "cheaper sensor; validation keeps all 64 (default: %(default)s)"),
        "velocity_weight": dict(type=float, default=0.0,
                                help="weight of | |t_pose| - distance travelled | per temporal source frame, the "
                                     "distance from KITTI's oxts (speed x time), which trains depth in metres "
                                     "without a depth sensor (PackNet-SfM), 0 = off (default: %(default)s)"),
    }),
    "depth_hints": ("depth hints", {
        "use_depth_hints": dict(action=BOOL, default=True,
                                help="add the Depth Hints loss (needs --use_stereo) (default: %(default)s, DH/orig)"),
        "depth_hint_path": dict(default=None,
                                help="precomputed hints <depth_hint_path>/<date>/<drive>/image_0x/<frame>.npy "
                                     "(default: <data_path>/depth_hints, as DH; compute with "
                                     "precompute_depth_hints.py)"),
    }),
    "optimisation": ("optimisation", {
        "batch_size": dict(type=int, default=12,
                           help="samples per step (per process with paddle.distributed.launch) "
                                "(default: %(default)s, M2/DH; orig 2, PM 8)"),
        "learning_rate": dict(type=float, default=1e-4,
                              help="Adam learning rate (default: %(default)s, M2/DH/orig/PM)"),
        "num_epochs": dict(type=int, default=20, help="epochs (default: %(default)s, M2/DH/PM; orig 10)"),
        "scheduler_step_size": dict(type=int, default=15,
                                    help="multiply the learning rate by --lr_decay every this many epochs "
                                         "(default: %(default)s, M2/DH; orig 2, PM 10)"),
        "lr_decay": dict(type=float, default=0.1, help="step-schedule factor (default: %(default)s, M2/DH/orig/PM)"),
        "amp": dict(action=BOOL, default=False,
                    help="float16 mixed precision on a GPU (ignored with a notice on the CPU) (default: %(default)s)"),
        "max_bad_steps": dict(type=int, default=10,
                              help="stop after this many consecutive non-finite losses (each skips its step) "
                                   "(default: %(default)s)"),
    }),
    "logging": ("logging", {
        "log_frequency": dict(type=int, default=250,
                              help="steps between VisualDL scalar/image logs (default: %(default)s, M2)"),
        "save_frequency": dict(type=int, default=1,
                               help="epochs between weights folders weights_<epoch> (default: %(default)s, M2)"),
        "num_log_images": dict(type=int, default=2, help="images per VisualDL log (default: %(default)s)"),
        "val_max_images": dict(type=int, default=0,
                               help="validate on at most this many val_files lines each epoch, 0 = all "
                                    "(default: %(default)s)"),
    }),
    "system": ("system", {
        "device": dict(choices=["auto", "cpu", "gpu"], default="auto",
                       help="auto = the GPU when Paddle has one, else the CPU (default: %(default)s)"),
        "num_workers": dict(type=int, default=12, help="DataLoader worker processes (default: %(default)s, M2)"),
        "num_threads": dict(type=int, default=0,
                            help="CPU threads of Paddle's kernels, 0 = every core (default: %(default)s)"),
        "seed": dict(type=int, default=0, help="seed of Paddle, numpy and Python's random (default: %(default)s)"),
    }),
    "scaling": ("depth scaling", {
        # --eval_mono, --eval_stereo, --eval_metric and --camera_height exclude each other where a script has
        # them all (EXCLUSIVE: test.py)
        "eval_mono": dict(action="store_true",
                          help="per-image median scaling (monocular weights; the default when no scaling flag is given, "
                               "unless the weights' opt.json records \"metric\": true)"),
        "eval_stereo": dict(action="store_true",
                            help="fixed scale 5.4 (weights trained with stereo), no median scaling; on the folder "
                                 "layout, where stereo trains with the real baseline, no scaling (as --eval_metric)"),
        "eval_metric": dict(action="store_true",
                            help="no scaling: the predicted depth is taken as metres (weights trained with a real "
                                 "stereo baseline or metric depth; the default for weights whose opt.json records "
                                 "\"metric\": true)"),
        "camera_height": dict(type=float, default=None, metavar="METRES",
                              help="metres per image from the ground plane: the road fitted in the lower part of "
                                   "each depth map (utils/ground_plane.py) is taken to lie this far below the camera "
                                   "(KITTI: 1.65); an approximation for monocular weights (README 'Depth in "
                                   "metres'). test.py: a scaling mode of its own; predict.py / inference.py: "
                                   "refused for metric weights and with --pred_depth_scale_factor"),
    }),
    "evaluation": ("evaluation (test.py, spec section 8)", {
        "post_process": dict(action="store_true",
                             help="Monodepth's post-processing: average with the mirrored image's prediction"),
        "save_pred_disps": dict(action="store_true",
                                help="write the scaled disparities (N x H x W float32, M2's format) to "
                                     "<eval_out_dir>/disps_<split>_split.npy"),
        "ext_disp_to_eval": dict(default=None, metavar="FILE",
                                 help="evaluate disparities saved by --save_pred_disps (or M2) instead of running "
                                      "a network"),
        "eval_out_dir": dict(default=None,
                             help="where the JSON of the results and saved disparities go "
                                  "(default: the weights folder, or the folder of --ext_disp_to_eval)"),
        "image_metrics": dict(action="store_true",
                              help="also RMSE, PSNR and SSIM (skimage.metrics) of the depth maps scaled to 0-255 by "
                                   "the ground truth's maximum; only for dense ground truth (refused on velodyne "
                                   "maps)"),
    }),
    "prediction": ("prediction (predict.py)", {
        "color_path": dict(required=True, help="an image, a folder of images (natural-sorted, not recursive) or a "
                                               "video (any file OpenCV reads: .mp4 .avi .mov .mkv ...; per-frame "
                                               "files in <output_dir>/<stem>/ and <stem>_depth.mp4 beside them)"),
        "output_dir": dict(default=None,
                           help="where <stem>_disp.npy, <stem>_disp.jpeg and <stem>_depth.npy go "
                                "(default: 'predictions' for predict.py, 'predictions_inference' for inference.py, "
                                "beside the image / inside the folder)"),
        "colormap": dict(default="magma", choices=COLORMAPS,
                         help="colour map of <stem>_disp.jpeg (default: %(default)s, M2)"),
        "pred_depth_scale_factor": dict(type=float, default=None,
                                        help="depth = factor x disp_to_depth depth (default: from the weights: 5.4, "
                                             "metres, for stereo-trained weights; 1, relative depth, for "
                                             "monocular-only ones)"),
        "save_png16": dict(action="store_true", help="also write <stem>_depth.png, KITTI's uint16 depth x 256"),
        "save_ply": dict(action="store_true",
                         help="also write <stem>_points.ply, the depth as a coloured point cloud (binary PLY; metres "
                              "where the depth is metric) with --camera, else the training camera scaled to the image"),
        "camera": dict(default=None,
                       help="camera.json of the photos for --save_ply: fx, fy, cx, cy in pixels of images of its "
                            "width x height (scaled to resized copies of the same aspect ratio)"),
        "video_layout": dict(choices=["auto", "side", "stacked"], default="auto",
                             help="depth video of a video input: frame and colour-mapped disparity side by side or "
                                  "stacked (auto: stacked when the frame is at least twice as wide as high)"),
        "calib_path": dict(default=None,
                           help="folder of calib_cam_to_cam.txt and calib_velo_to_cam.txt (KITTI <data_path>/<date>) "
                                "for --velo_filename"),
        "velo_filename": dict(default=None,
                              help="velodyne scan (.bin) of the image: print the seven metrics against it, as test.py"),
    }),
    "pose_evaluation": ("pose evaluation (evaluate_pose.py, M2's odometry protocol)", {
        "save_pred_poses": dict(action="store_true",
                                help="write the predicted frame-to-frame poses (N x 4 x 4) to "
                                     "<weights>/poses_odom_<sequence>.npy"),
    }),
    "convert": ("checkpoint conversion (convert_checkpoint.py)", {
        "output_folder": dict(required=True,
                              help="where the weights are written in the original MLDA-Net / PaddleMono key layout "
                                   "(with opt.json), loadable by the earlier Paddle code and by this project"),
        "models_to_convert": dict(nargs="+", default=None,
                                  help="networks to convert (default: every one of encoder depth pose_encoder pose "
                                       "present)"),
    }),
    "export": ("export (export.py)", {
        "save_dir": dict(required=True,
                         help="folder for the static models and deploy.json (created; files of an earlier export "
                              "replaced)"),
        "combined": dict(action="store_true",
                         help="one model image -> disparity (model.*) instead of model_encoder.* + model_depth.*"),
        "format": dict(choices=["paddle", "onnx"], default="paddle",
                       help="paddle: Paddle Inference programs (.json + .pdiparams); onnx: those and .onnx "
                            "models converted by paddle2onnx (default: %(default)s)"),
        "precision": dict(choices=["fp32", "int8", "bf16"], default="fp32",
                          help="int8: ONNX Runtime model quantised by NNCF with accuracy control on --calib_images "
                               "(writes .onnx only); bf16: Paddle Inference with oneDNN bfloat16 (CPUs with AVX-512 "
                               "BF16 or AMX). Either is refused unless its evaluation metrics on --gate_split stay "
                               "within --max_abs_rel_change and --max_delta1_change of fp32 (default: %(default)s)"),
        "gate_split": dict(default=os.path.join("data", "synthetic_kitti"),
                           help="dataset whose test split gates int8/bf16: a KITTI-layout root with "
                                "splits/test_files.txt (python -m synthetic writes the synthetic KITTI there), or "
                                "the root of one's own sequences with depth maps (folder layout) "
                                "(default: %(default)s)"),
        "max_abs_rel_change": dict(type=float, default=0.01,
                                   help="refuse int8/bf16 when abs_rel on --gate_split moves by more than this "
                                        "fraction of fp32's (default: %(default)s, 1 %%)"),
        "max_delta1_change": dict(type=float, default=0.5,
                                  help="refuse int8/bf16 when delta < 1.25 (a1, in %%) on --gate_split moves by more "
                                       "than this many points (default: %(default)s)"),
        "calib_images": dict(default=os.path.join("data", "synthetic_kitti"),
                             help="folder of photos (searched recursively) to calibrate int8 on; --gate_split's test "
                                  "frames are left out (default: %(default)s, the synthetic KITTI)"),
        "calib_count": dict(type=int, default=16,
                            help="photos used for calibration, spread over the folder (default: %(default)s)"),
    }),
    "inference": ("inference (inference.py)", {
        "infer_files_dir": dict(required=True, help="folder written by export.py (models + deploy.json)"),
        "backend": dict(choices=["paddle", "onnxruntime"], default="paddle",
                        help="Paddle Inference, or ONNX Runtime on a folder exported with --format onnx "
                             "(default: %(default)s)"),
        "cpu_threads": dict(type=int, default=0, help="CPU threads, 0 = every core (default: %(default)s)"),
        "onednn": dict(action=BOOL, default=True,
                       help="oneDNN kernels on the CPU (Paddle backend) (default: %(default)s)"),
        "use_trt": dict(action="store_true",
                        help="TensorRT subgraphs (Paddle backend on a GPU with a TensorRT-enabled Paddle)"),
        "trt_precision": dict(choices=["fp32", "fp16"], default="fp32",
                              help="TensorRT precision (default: %(default)s)"),
    }),
    "app": ("web page (app.py)", {
        "host": dict(default="127.0.0.1",
                     help="address the page listens on; 0.0.0.0 serves every network interface (default: %(default)s, "
                          "this machine only)"),
        "port": dict(type=int, default=7860, help="port of the page (default: %(default)s, Gradio's)"),
        "share": dict(action=BOOL, default=False,
                      help="also ask Gradio for a temporary public link (needs internet) (default: %(default)s)"),
        "max_image_pixels": dict(type=int, default=20_000_000,
                                 help="refuse photos and video frames of more pixels than this (width x height) "
                                      "(default: %(default)s, 20 MP)"),
        "max_video_frames": dict(type=int, default=300,
                                 help="refuse videos of more frames than this: each frame's files are written at "
                                      "its full size (default: %(default)s)"),
        "max_upload_mb": dict(type=int, default=200,
                              help="largest file the page accepts, in megabytes (default: %(default)s)"),
    }),
    "gt_export": ("ground-truth export (export_gt_depth.py)", {
        "source": dict(choices=["velodyne", "annotated"],
                       help="velodyne scans or KITTI's annotated depth pngs (default: annotated for "
                            "eigen_benchmark, velodyne otherwise)"),
        "output": dict(help="output file (default: <split folder>/gt_depths.npz)"),
    }),
    "hint_export": ("depth-hint precomputation (precompute_depth_hints.py, Depth Hints' fused SGM)", {
        "filenames": dict(help="one split file instead of --split"),
        "save_path": dict(help="output root (default: <data_path>/depth_hints)"),
    }),
    "synthetic": ("synthetic KITTI (python -m synthetic)", {
        "out": dict(default=os.path.join("data", "synthetic_kitti"), help="output folder (default: %(default)s)"),
        "drives": dict(type=int, default=3, help="number of drives; the last is the test drive"),
        "frames": dict(type=int, default=24, help="frames per drive (default: %(default)s)"),
        "layout": dict(choices=["kitti", "folder"], default="kitti",
                       help="kitti: KITTI raw's layout and camera; folder: the --dataset folder layout with a "
                            "non-KITTI camera (4:3, 320 x 240 unless --width/--height, baseline 0.12 m) "
                            "(default: %(default)s)"),
        "azimuth_step": dict(type=float, default=0.4,
                             help="velodyne horizontal resolution in degrees (default: %(default)s)"),
    }),
    "refine": ("diffusion refinement head (train_refine.py; DIFFUSION_REFINEMENT.md section 5)", {
        "cond_channels": dict(type=int, default=256,
                              help="width C of the condition and the denoiser (default: %(default)s, as "
                                   "DiffusionDepth; 64 costs about 3.4x less per step)"),
        "depth_mapping": dict(choices=["mlda", "paper"], default="mlda",
                              help="decoder output s -> depth: mlda = MLDA's disp_to_depth (0.1-100 m), paper = "
                                   "1/s - 1 (default: %(default)s)"),
        "paper_output_act": dict(action=BOOL, default=False,
                                 help="end the denoiser with GroupNorm + ReLU as DiffusionDepth's code (predicted "
                                      "noise >= 0) (default: %(default)s)"),
        "ddim_steps": dict(type=int, default=None,
                           help="DDIM steps N of the 1000-step schedule (default: 20 for training, else the head's "
                                "refine.json)"),
        "strength": dict(type=float, default=None,
                         help="start from MLDA's depth noised to the last max(1, int(N x strength)) of the N steps; "
                              "1 = pure noise as DiffusionDepth (default: 0.5 for training, else the head's)"),
        "noise_seed": dict(type=int, default=None,
                           help="seed of the fixed start noise (numpy default_rng), the same for every image "
                                "(default: 0 for training, else the head's)"),
        "w_ddim": dict(type=float, default=1.0,
                       help="weight of the self-diffusion (noise-prediction) loss, 0 = off (default: %(default)s)"),
        "grad_steps": dict(type=int, default=0,
                           help="keep gradients only through the last K denoiser calls (memory), 0 = all "
                                "(default: %(default)s)"),
        "freeze_mlda": dict(action=BOOL, default=True,
                            help="keep MLDA-Net fixed (eval mode, no gradients); --no-freeze_mlda fine-tunes it at "
                                 "0.1 x the head's learning rate (default: %(default)s)"),
        "detach_ddim_target": dict(action=BOOL, default=False,
                                   help="stop the self-diffusion loss's gradient into the latent it noises "
                                        "(DiffusionDepth does not) (default: %(default)s)"),
        "pixel_loss": dict(choices=["l1l2", "sig"], default="l1l2",
                           help="l1l2: per-image L1 + L2 on the valid ground truth as DiffusionDepth; sig: SILog "
                                "(losses.sparse_depth_loss, lambda 0.85) (default: %(default)s)"),
        "warmup_steps": dict(type=int, default=-1,
                             help="linear learning-rate warm-up steps, -1 = one epoch (default: %(default)s, "
                                  "DiffusionDepth)"),
        "refine": dict(action=BOOL, default=True,
                       help="use the weights folder's diffusion head (refine.pdparams) when it has one "
                            "(default: %(default)s)"),
    }),
}

# Options that exclude each other where a parser has both.
EXCLUSIVE = [("eval_mono", "eval_stereo", "eval_metric", "camera_height")]

# Per script: the groups it uses, in --help order; (group, names) takes only some of a group's options.
SCRIPT_GROUPS = {
    "train": (("data", ("dataset", "data_path", "split", "png")), "run", "weights", "model", "training",
              "depth_hints", "metric", "optimisation", "logging", "system"),
    "test": ("weights", ("data", ("dataset", "data_path", "eval_split", "png")), "scaling", "evaluation",
             ("optimisation", ("batch_size",)), "system",
             ("refine", ("refine", "ddim_steps", "strength", "noise_seed"))),
    "predict": ("weights", "prediction", ("scaling", ("eval_mono", "camera_height")), "system",
                ("refine", ("refine", "ddim_steps", "strength", "noise_seed"))),
    "evaluate_pose": ("weights", ("data", ("data_path", "eval_split", "png")), ("optimisation", ("batch_size",)),
                      "pose_evaluation", "system"),
    "convert_checkpoint": ("weights", "convert"),
    "export": ("weights", "export", ("model", ("height", "width")), ("refine", ("refine", "ddim_steps", "strength"))),
    "inference": ("inference", ("system", ("device",)), "prediction", ("scaling", ("eval_mono", "camera_height"))),
    "app": (("weights", ("load_weights_folder",)), "inference",
            ("prediction", ("colormap", "pred_depth_scale_factor", "camera")), ("system", ("device",)), "app"),
    "export_gt_depth": (("data", ("data_path", "split")), "gt_export"),
    "precompute_depth_hints": (("data", ("dataset", "data_path", "split", "img_ext", "overwrite")), "hint_export",
                               ("model", ("height", "width")), ("system", ("num_workers",))),
    "synthetic": ("synthetic", ("data", ("img_ext", "overwrite")), ("model", ("width", "height")),
                  ("system", ("seed",))),
    "train_refine": (("data", ("dataset", "data_path", "split", "png")), ("run", ("log_dir", "model_name", "resume")),
                     "weights", ("model", ("height", "width")),
                     ("refine", ("cond_channels", "depth_mapping", "paper_output_act", "ddim_steps", "strength",
                                 "noise_seed", "w_ddim", "grad_steps", "freeze_mlda", "detach_ddim_target",
                                 "pixel_loss", "warmup_steps")),
                     ("training", ("max_steps",)),
                     ("optimisation", ("batch_size", "learning_rate", "num_epochs", "lr_decay", "max_bad_steps")),
                     ("logging", ("log_frequency",)), "system"),
}

_KITTI_ROOT = dict(required=True, default=None, help="KITTI raw root")
# test.py and precompute_depth_hints.py read either layout; which one follows from --data_path unless given
_LAYOUT = dict(choices=["kitti", "folder"], default=None,
               help="kitti: KITTI raw; folder: one's own sequences and camera.json (README, utils/folder_layout.py) "
                    "(default: folder when <data_path>/camera.json exists, else kitti)")
_VELODYNE_MONO = dict(help="the velodyne check uses median scaling instead of --pred_depth_scale_factor")

# Per script: the add_argument keywords that differ from the group's for that script (default, help,
# required, choices); the rest of the definition (flag, type, action) stays the group's.
SCRIPT_DEFAULTS = {
    "train_refine": {
        "load_weights_folder": dict(help="the MLDA-Net weights folder the head refines (required unless --resume); "
                                         "its opt.json gives the input size"),
        "height": dict(default=None, help="input height, a multiple of 32 (default: the weights folder's)"),
        "width": dict(default=None, help="input width, a multiple of 32 (default: the weights folder's)"),
        "model_name": dict(default="refine", help="name of the run folder under --log_dir (default: %(default)s)"),
        "ddim_steps": dict(default=20, help="DDIM steps N of the training loop (default: %(default)s, DiffusionDepth)"),
        "strength": dict(default=0.5, help="start at the last max(1, int(N x strength)) steps from MLDA's noised "
                                           "depth; 1 = pure noise (default: %(default)s)"),
        "noise_seed": dict(default=0, help="seed of the fixed start noise used at inference, saved in refine.json "
                                           "(training draws fresh noise) (default: %(default)s)"),
        "batch_size": dict(default=4, help="samples per step (default: %(default)s)"),
        "learning_rate": dict(default=1e-3, help="Adam learning rate of the head (default: %(default)s, "
                                                 "DiffusionDepth)"),
        "num_epochs": dict(default=30, help="epochs (default: %(default)s, DiffusionDepth)"),
        "lr_decay": dict(default=0.2, help="the learning rate is multiplied by this after 1/3 and again after 1/2 of "
                                           "the epochs (default: %(default)s, DiffusionDepth's 1, 0.2, 0.04)"),
    },
    "train": {
        "load_weights_folder": dict(help="fine-tune from this weights folder (this project's, the original MLDA-Net's "
                                         "or PaddleMono's: encoder/depth/pose_encoder/pose.pdparams)"),
        "batch_coupled_filter": dict(help="normalise the decoder's guided-filter attention over the whole batch as the "
                                          "original does (couples the samples of a batch); default: per sample "
                                          "(spec section 3)"),
    },
    "test": {
        "dataset": _LAYOUT,
        "data_path": dict(help="KITTI raw root, or the ROOT of one's own sequences (ROOT/camera.json, ROOT/<sequence>/"
                               "depth/: evaluated on ROOT/splits/test_files.txt, made when absent) "
                               "(default: %(default)s, M2)"),
        "png": dict(help="test images are .png instead of M2's converted .jpg (default: %(default)s)"),
        "batch_size": dict(default=16, help="images per forward pass (default: %(default)s, M2)"),
        "ddim_steps": dict(nargs="+", help="with a diffusion head in the weights folder: its refined, metric depth is "
                                           "also evaluated for each of these DDIM step counts (default: the head's)"),
    },
    "predict": {"eval_mono": _VELODYNE_MONO},
    "evaluate_pose": {
        "data_path": dict(default="kitti_odom",
                          help="KITTI odometry root: <data_path>/sequences/09/image_2/000000.png and "
                               "<data_path>/poses/09.txt (default: %(default)s)"),
        "eval_split": dict(default="odom_9",
                           help="odom_9 | odom_10: reads splits/odom/test_files_09.txt (or _10), or the path of a "
                                "split file of one's own with lines '<sequence> <frame> l' (default: %(default)s)"),
        "png": dict(default=True,
                    help="frames are .png as KITTI ships them (a missing file falls back to .jpg) "
                         "(default: %(default)s)"),
        "batch_size": dict(default=16, help="frame pairs per forward pass (default: %(default)s)"),
    },
    "export": {
        "height": dict(default=None,
                       help="input height of the exported models, a multiple of 32 (default: the weights folder's "
                            "opt.json, else 192)"),
        "width": dict(default=None,
                      help="input width, a multiple of 32 (default: the weights folder's opt.json, else 640)"),
        "ddim_steps": dict(nargs="+", help="with a diffusion head in the weights folder: one unrolled program per "
                                           "step count, beside the step programs (default: the head's)"),
        "strength": dict(help="strength of the unrolled programs (default: the head's)"),
    },
    "inference": {
        "device": dict(choices=["cpu", "gpu"], default="cpu", help="(default: %(default)s)"),
        "eval_mono": _VELODYNE_MONO,
    },
    "app": {
        "load_weights_folder": dict(help="weights folder to serve (predict.py's Predictor); or --infer_files_dir"),
        "infer_files_dir": dict(required=False, default=None,
                                help="folder written by export.py to serve instead (inference.py's DepthPredictor)"),
        "colormap": dict(help="colour map the page starts with (default: %(default)s, M2)"),
        "camera": dict(help="camera.json of the photos for the point cloud (default: the training camera, scaled)"),
        "device": dict(choices=["cpu", "gpu"], default="cpu", help="(default: %(default)s)"),
    },
    "export_gt_depth": {
        "data_path": _KITTI_ROOT,
        "split": dict(default="eigen",
                      help="eigen | eigen_benchmark (folders under splits/) or the path of a folder holding "
                           "test_files.txt (default: %(default)s)"),
    },
    "precompute_depth_hints": {
        "dataset": _LAYOUT,
        "data_path": dict(required=True, default=None,
                          help="KITTI raw root, or the ROOT of one's own stereo sequences (ROOT/camera.json with "
                               "\"baseline\": hints in metres under ROOT/depth_hints/<sequence>/<left|right>/)"),
        "split": dict(help="folder under splits/ (or a path to one): hints for its train and val files "
                           "(default: %(default)s; folder layout: ROOT/splits, made when absent)"),
        "height": dict(default=320, help="working height (default: %(default)s, as DH)"),
        "width": dict(default=1024, help="working width (default: %(default)s, as DH)"),
        "num_workers": dict(default=max(1, (os.cpu_count() or 1)), help="processes (default: every core)"),
    },
    "synthetic": {
        "seed": dict(help="the same seed writes the same bytes (default: %(default)s)"),
        "width": dict(default=621, help="native image width (default: %(default)s, KITTI 1242 / 2)"),
        "height": dict(default=188, help="native image height (default: %(default)s, KITTI 375 / 2)"),
        "img_ext": dict(help=None),
        "overwrite": dict(help="replace an existing folder"),
    },
}

# Scripts whose --height / --width are the network's input size (the rule of network_size_error).
NETWORK_SIZE_SCRIPTS = ("train", "export", "train_refine")


def _selected(specs):
    """[(group, [names])] of group specs: 'group' (all its options) or ('group', names)."""
    out = []
    for spec in specs:
        group, names = (spec, None) if isinstance(spec, str) else spec
        out.append((group, list(GROUPS[group][1]) if names is None else list(names)))
    return out


def build_parser(script="train", groups=None, description=None):
    """An OptionsParser holding the options of `groups` (default: SCRIPT_GROUPS[script]) in that order,
    with SCRIPT_DEFAULTS[script] applied."""
    selected = _selected(SCRIPT_GROUPS[script] if groups is None else groups)
    overrides = SCRIPT_DEFAULTS.get(script, {})
    names = {name for _, group_names in selected for name in group_names}
    exclusive = {}
    parser = OptionsParser(prog=f"{script}.py", description=description)
    for group, group_names in selected:
        title, table = GROUPS[group]
        group_section = parser.add_argument_group(title)
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
# Checks: each gets (opt, error, script) and calls error("one line") for a bad value. A script has
# only the options of its groups, so every check tests for its keys first.
# ---------------------------------------------------------------------------------------------

def network_size_error(name, value):
    """The one-line complaint about --<name> `value` as a network input size (the rule:
    utils.image_io.network_size_problem), or None when it is fine."""
    from utils.image_io import network_size_problem
    problem = network_size_problem(value)
    return f"--{name} {value}: {problem}" if problem else None


def check_size(opt, error, script):
    for name in ("height", "width"):
        if opt.get(name) is None:
            continue
        if script in NETWORK_SIZE_SCRIPTS:
            message = network_size_error(name, opt[name])
            if message:
                error(message)
        elif script == "precompute_depth_hints" and opt[name] < 8:
            error("--height and --width must be at least 8")


def check_model(opt, error, script):
    if "scales" in opt and (not opt.scales or len(set(opt.scales)) != len(opt.scales)
                            or not set(opt.scales) <= {0, 1, 2, 3}):
        error(f"--scales {' '.join(map(str, opt.scales))}: must be distinct values from 0 1 2 3")
    if "min_depth" in opt and not 0 < opt.min_depth < opt.max_depth:
        error(f"--min_depth {opt.min_depth} / --max_depth {opt.max_depth}: need 0 < min_depth < max_depth")


def check_data_path(opt, error, script):
    """Scripts that read the data at once (not train, which says more about a missing dataset)."""
    if script in ("export_gt_depth", "precompute_depth_hints") and not os.path.isdir(opt.data_path):
        error(f"--data_path {opt.data_path}: no such folder")


def check_weights(opt, error, script):
    folder = opt.get("load_weights_folder")
    if "load_weights_folder" not in opt:
        return
    if folder is None:
        if script not in ("train", "train_refine", "app") and not opt.get("ext_disp_to_eval"):
            error("--load_weights_folder is required (a folder with encoder.pdparams and depth.pdparams)")
    elif not os.path.isdir(folder):
        error(f"--load_weights_folder {folder}: no such folder")


def check_run(opt, error, script):
    if "resume" not in opt:
        return
    if opt.resume and not os.path.isdir(opt.resume):
        error(f"--resume {opt.resume}: no such folder (a run's checkpoint folder, e.g. logs/mlda/checkpoint)")
    if opt.resume and opt.get("load_weights_folder"):
        error("--resume and --load_weights_folder exclude each other: --resume already restores the weights")
    bad = set(opt.get("models_to_load", ())) - {"encoder", "depth", "pose_encoder", "pose"}
    if bad:
        error(f"--models_to_load {' '.join(sorted(bad))}: choose from encoder depth pose_encoder pose")


def check_training(opt, error, script):
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
    if opt.max_steps < 0:
        error(f"--max_steps {opt.max_steps}: must be >= 0")
    if opt.get("qat") and not (opt.load_weights_folder or opt.resume):
        error("--qat fine-tunes trained weights: give them with --load_weights_folder "
              "(e.g. logs/quickstart/models/best)")


def check_depth_hints(opt, error, script):
    if opt.get("use_depth_hints") and not opt.get("use_stereo", False):
        error("--use_depth_hints needs stereo training: add --use_stereo or pass --no-use_depth_hints")


def check_metric(opt, error, script):
    if "sparse_depth_weight" not in opt:
        return
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


def check_at_least_one(opt, error, script):
    """Counts that must be positive, whichever script has them."""
    for name in ("batch_size", "num_epochs", "scheduler_step_size", "max_bad_steps",
                 "log_frequency", "save_frequency", "num_log_images"):
        if name in opt and opt[name] < 1:
            error(f"--{name} {opt[name]}: must be at least 1")


def check_optimisation(opt, error, script):
    if "learning_rate" not in opt:
        return
    if opt.learning_rate <= 0:
        error(f"--learning_rate {opt.learning_rate}: must be > 0")
    if not 0 < opt.lr_decay <= 1:
        error(f"--lr_decay {opt.lr_decay}: must be in (0, 1]")


def check_logging(opt, error, script):
    if opt.get("val_max_images", 0) < 0:
        error(f"--val_max_images {opt.val_max_images}: must be >= 0")


def check_system(opt, error, script):
    if "num_workers" in opt and script == "precompute_depth_hints":   # processes of its own pool
        if opt.num_workers < 1:
            error(f"--num_workers {opt.num_workers}: must be at least 1")
    elif "num_threads" in opt and (opt.num_workers < 0 or opt.num_threads < 0):
        error("--num_workers and --num_threads must be >= 0")


def check_evaluation(opt, error, script):
    if opt.get("ext_disp_to_eval") and not os.path.isfile(opt.ext_disp_to_eval):
        error(f"--ext_disp_to_eval {opt.ext_disp_to_eval}: no such file")


def _video_extensions():
    from utils.video import VIDEO_EXTENSIONS
    return VIDEO_EXTENSIONS


def check_prediction(opt, error, script):
    if "color_path" not in opt:
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
    if opt.camera and not (opt.save_ply or opt.camera_height):
        error("--camera is only used with --save_ply or --camera_height (the camera of the point clouds and of the "
              "ground plane)")
    if opt.camera and not os.path.isfile(opt.camera):
        error(f"--camera {opt.camera}: no such file (a camera.json with fx, fy, cx, cy, width, height)")
    if opt.pred_depth_scale_factor is not None and opt.pred_depth_scale_factor <= 0:
        error(f"--pred_depth_scale_factor {opt.pred_depth_scale_factor}: must be > 0")
    if opt.output_dir and os.path.exists(opt.output_dir) and not os.path.isdir(opt.output_dir):
        error(f"--output_dir {opt.output_dir}: is a file, not a folder; give a folder (created if missing)")


def check_inference(opt, error, script):
    if "infer_files_dir" not in opt:
        return
    if opt.infer_files_dir is not None and not os.path.isdir(opt.infer_files_dir):   # None: app.py with weights
        error(f"--infer_files_dir {opt.infer_files_dir}: no such folder (write one with export.py --save_dir)")
    if opt.cpu_threads < 0:
        error(f"--cpu_threads {opt.cpu_threads}: must be >= 0")
    if opt.use_trt and (opt.device != "gpu" or opt.backend != "paddle"):
        error("--use_trt needs --device gpu and --backend paddle")


def check_export(opt, error, script):
    if "precision" not in opt:
        return
    if opt.calib_count < 1:
        error(f"--calib_count {opt.calib_count}: must be >= 1")
    if opt.precision != "fp32" and not os.path.isdir(opt.gate_split):
        error(f"--gate_split {opt.gate_split}: no such folder (the synthetic KITTI: python -m synthetic writes it "
              f"there; or give the root of your own sequences with depth maps)")
    if not opt.max_abs_rel_change > 0:
        error(f"--max_abs_rel_change {opt.max_abs_rel_change}: must be > 0 (a fraction: 0.01 is 1 %)")
    if not opt.max_delta1_change > 0:
        error(f"--max_delta1_change {opt.max_delta1_change}: must be > 0 (points of a1 in %)")


def check_refine(opt, error, script):
    if opt.get("ddim_steps") is not None:
        for n in (opt.ddim_steps if isinstance(opt.ddim_steps, list) else [opt.ddim_steps]):
            if not 1 <= n <= 1000:
                error(f"--ddim_steps {n}: must be in 1..1000 (the schedule has 1000 training steps)")
    if opt.get("strength") is not None and not 0 < opt.strength <= 1:
        error(f"--strength {opt.strength}: must be in (0, 1]")
    if "cond_channels" in opt and (opt.cond_channels < 4 or opt.cond_channels % 4):
        error(f"--cond_channels {opt.cond_channels}: must be a positive multiple of 4 (GroupNorm of 4 groups)")
    for name in ("w_ddim", "grad_steps", "max_steps"):
        if script == "train_refine" and opt.get(name, 0) < 0:
            error(f"--{name} {opt[name]}: must be >= 0")
    if script == "train_refine" and not opt.load_weights_folder and not opt.resume:
        error("--load_weights_folder is required: the MLDA-Net weights folder the head refines")


def check_camera_height(opt, error, script):
    if opt.get("camera_height") is None:
        return
    if not opt.camera_height > 0:
        error(f"--camera_height {opt.camera_height}: must be > 0 (the camera's height above the road in metres, "
              "KITTI: 1.65)")
    if opt.get("pred_depth_scale_factor") is not None:
        error("--camera_height and --pred_depth_scale_factor exclude each other: the ground plane gives each image "
              "its own factor; drop one of them")


def check_app(opt, error, script):
    if "max_image_pixels" not in opt:
        return
    if (opt.load_weights_folder is None) == (opt.infer_files_dir is None):
        error("give one of --load_weights_folder (a weights folder) and --infer_files_dir (a folder of export.py)")
    if not 0 < opt.port < 65536:
        error(f"--port {opt.port}: must be in 1..65535")
    for name in ("max_image_pixels", "max_video_frames", "max_upload_mb"):
        if opt[name] < 1:
            error(f"--{name} {opt[name]}: must be at least 1")
    if opt.pred_depth_scale_factor is not None and opt.pred_depth_scale_factor <= 0:
        error(f"--pred_depth_scale_factor {opt.pred_depth_scale_factor}: must be > 0")
    if opt.camera and not os.path.isfile(opt.camera):
        error(f"--camera {opt.camera}: no such file (a camera.json with fx, fy, cx, cy, width, height)")


CHECKS = (check_data_path, check_weights, check_run, check_size, check_model, check_training, check_depth_hints,
          check_metric,
          check_at_least_one, check_optimisation, check_logging, check_system, check_evaluation, check_prediction,
          check_inference, check_export, check_refine, check_camera_height,
          check_app)


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
    for check in CHECKS:
        check(opt, parser.error, script)
    if "depth_hint_path" in opt and opt.depth_hint_path is None and "data_path" in opt:
        opt.depth_hint_path = os.path.join(opt.data_path, "depth_hints")
    return opt


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
