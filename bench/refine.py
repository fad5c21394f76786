"""The diffusion refinement head: what it costs and what it gives, on the synthetic KITTI.

    python bench/refine.py [--load_weights_folder MLDA] [--data_path data/bench_kitti] [--train_steps 200]
                           [--cond_channels 64] [--threads N] [--skip_accuracy] [--skip_cost]

Cost, at --cost_height x --cost_width (192 x 640) and batch 1, for C = 256 (the paper's width) and
64: the head's parameters, MACs (convolutions; bench/flops.py) of the once-per-image part (neck and
latent encoder E), of one denoiser step and of the decoder, and the eager CPU latency of each next
to MLDA-Net's own forward pass (disparity).

Accuracy: the head (C = --cond_channels) trained by train_refine.py's RefineTrainer for
--train_steps on the split's train lines (with and without the self-diffusion loss, the same
budget), then on its test lines: MLDA-Net median-scaled, and the refined depth unscaled for
1, 5, 10 and 20 DDIM steps at strengths 0.5 and 1. Without --load_weights_folder MLDA-Net is
random with tamed activations (tests/support/lsuv.py): then the head has only the image features
to work from, and the numbers say what the head learns from sparse depth, not what it adds to a
trained MLDA-Net. With --sparse_finetune (default) MLDA-Net is first fine-tuned for the same
--train_steps with the sparse-depth loss (train.py --sparse_depth_weight 1), scored unscaled, and
the head is trained on top of that: the rows are cumulative, MLDA-Net, + sparse depth, + head.
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import utils  # noqa: E402,F401
import numpy as np  # noqa: E402
import paddle  # noqa: E402

import datasets  # noqa: E402
import networks  # noqa: E402
import options  # noqa: E402
import synthetic  # noqa: E402
import train_refine  # noqa: E402
from bench.flops import count_flops, median_time  # noqa: E402
from networks.diffusion import DiffusionHead, RefinedDepthNet  # noqa: E402
from networks.layers import disp_to_depth  # noqa: E402
from tests.support.synthetic_runs import mean_errors, synthetic_test_frames  # noqa: E402
from utils.system import set_cpu_threads  # noqa: E402



def cost(height, width, channels, repeats):
    paddle.seed(0)
    net = RefinedDepthNet(networks.DepthNet(), DiffusionHead(cond_channels=channels)).eval()
    head = net.head
    image = paddle.rand([1, 3, height, width])
    noise = net.noise_for(height, width)
    with paddle.no_grad():
        features, disp = net.mlda(image)
        t0 = paddle.to_tensor([450], dtype="int64")
        cond, z = head.prepare(features, disp, noise, t0)
        t1 = paddle.to_tensor([400], dtype="int64")
        once = count_flops(lambda: head.prepare(features, disp, noise, t0), [head]) / 2
        step = count_flops(lambda: head.step(z, t1, t0, cond), [head]) / 2
        dec = count_flops(lambda: head.decode(z), [head]) / 2
        t_mlda = median_time(lambda: net.mlda(image), repeats)
        t_prep = median_time(lambda: head.prepare(features, disp, noise, t0), repeats)
        t_step = median_time(lambda: head.step(z, t1, t0, cond), repeats)
        t_dec = median_time(lambda: head.decode(z), repeats)
    params = sum(int(np.prod(p.shape)) for p in head.parameters())
    print(f"| {channels} | {params / 1e6:.2f} M | {once / 1e9:.2f} | {step / 1e9:.2f} | {dec / 1e9:.2f} | "
          f"{t_mlda:.3f} | {t_prep:.3f} | {t_step:.3f} | {t_dec:.3f} |")


def table_errors(gts, disps, mode):
    e = mean_errors(gts, disps, mode)
    return f"{e[0]:.3f} | {e[2]:.3f} | {e[4]:.3f}"


def mlda_disparity(folder, images):
    """Scale-0 sigmoid disparity of the folder's MLDA-Net, as depth-unit disparity (disp_to_depth 0.1-100)."""
    _, nets = networks.load_weights_folder(folder, ("depth",))
    with paddle.no_grad():
        return disp_to_depth(nets["depth"].disparity(images), 0.1, 100.0)[0].numpy()[:, 0]


def sparse_finetune(args, mlda_folder, height, width, log_dir):
    """MLDA-Net fine-tuned from `mlda_folder` with the sparse LiDAR loss (README "Depth in metres")
    (train.py --sparse_depth_weight 1: self-supervised mono + SILog on the velodyne depth) for
    --train_steps steps of batch 2; returns its weights folder (metric: opt.json says so)."""
    from trainer import Trainer
    from tests.support.synthetic_runs import train_steps
    argv = ["--dataset", "synthetic", "--data_path", args.data_path, "--load_weights_folder", mlda_folder,
            "--models_to_load", "encoder", "depth", "--weights_init", "scratch", "--log_dir", log_dir,
            "--model_name", "sparse", "--height", str(height), "--width", str(width), "--batch_size", "2",
            "--num_workers", "0", "--frame_ids", "0", "-1", "1", "--no-use_stereo", "--no-use_depth_hints",
            "--sparse_depth_weight", "1", "--num_epochs", "100000", "--scheduler_step_size", "100000",
            "--log_frequency", "100000", "--val_max_images", "1", "--seed", "0"]
    tr = train_steps(Trainer(options.parse("train", argv)), args.train_steps)
    folder = os.path.join(log_dir, "sparse", "models", "weights_final")
    tr.save_weights(folder)
    return folder


def accuracy(args, mlda_folder, height, width):
    root = args.data_path
    images, gts = synthetic_test_frames(root, height, width)
    print(f"| MLDA-Net, median scaling | - | - | {table_errors(gts, mlda_disparity(mlda_folder, images), 'median')} |")
    log_dir = tempfile.mkdtemp(prefix="bench_refine_")
    if args.sparse_finetune:
        mlda_folder = sparse_finetune(args, mlda_folder, height, width, log_dir)
        disp = mlda_disparity(mlda_folder, images)
        print(f"| + sparse-depth fine-tuning, unscaled | - | - | {table_errors(gts, disp, 'none')} |")
        print(f"| + sparse-depth fine-tuning, median scaling | - | - | {table_errors(gts, disp, 'median')} |",
              flush=True)
    lines = datasets.read_split(os.path.join(synthetic.split_dir(root), "train_files.txt"))
    repeat = max(1, args.train_steps * 2 // len(lines))   # one epoch holds the whole budget (batch 2)
    train = datasets.KITTIRAWDataset(root, lines * repeat, height, width, [0], num_scales=1, is_train=True,
                                     load_depth=True, depth_gt_size=None)
    for w in ("1", "0"):
        argv = ["--dataset", "synthetic", "--data_path", root, "--load_weights_folder", mlda_folder,
                "--log_dir", log_dir, "--model_name", f"w{w}", "--height", str(height), "--width", str(width),
                "--batch_size", "2", "--num_workers", "0", "--num_epochs", "100", "--cond_channels",
                str(args.cond_channels), "--ddim_steps", "20", "--strength", "0.5", "--warmup_steps", "0",
                "--max_steps", str(args.train_steps), "--w_ddim", w, "--grad_steps", str(args.grad_steps)]
        folder = train_refine.RefineTrainer(options.parse("train_refine", argv), train_dataset=train).train()
        net = networks.load_weights_folder(folder, ("refine",))[1]["refine"]
        for strength in (0.5, 1.0):
            for n in (1, 5, 10, 20):
                with paddle.no_grad():
                    depth = net(images, net.noise_for(height, width), n, strength).numpy()[:, 0]
                print(f"| head, w_ddim {w}, unscaled | {n} | {strength} | {table_errors(gts, 1.0 / depth, 'none')} |",
                      flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--load_weights_folder", default=None, help="MLDA-Net weights (default: tamed random weights)")
    p.add_argument("--data_path", default=os.path.join("data", "bench_kitti"))
    p.add_argument("--height", type=int, default=64)
    p.add_argument("--width", type=int, default=192)
    p.add_argument("--train_steps", type=int, default=200)
    p.add_argument("--grad_steps", type=int, default=2)
    p.add_argument("--cond_channels", type=int, default=64)
    p.add_argument("--cost_height", type=int, default=192)
    p.add_argument("--cost_width", type=int, default=640)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip_accuracy", action="store_true")
    p.add_argument("--skip_cost", action="store_true")
    p.add_argument("--sparse_finetune", action=argparse.BooleanOptionalAction, default=True,
                   help="fine-tune MLDA-Net with the sparse-depth loss first (same steps) and put the head on it")
    args = p.parse_args()
    paddle.set_device("cpu")
    threads = set_cpu_threads(args.threads)
    if not args.skip_cost:
        print(f"cost at {args.cost_height} x {args.cost_width}, batch 1, {threads} threads (GMAC; seconds)")
        print("| C | head params | neck + E GMAC | GMAC / step | decoder GMAC | MLDA-Net s | neck + E s | s / step | "
              "decoder s |")
        for c in (256, 64):
            cost(args.cost_height, args.cost_width, c, args.repeats)
    if args.skip_accuracy:
        return
    synthetic.ensure(args.data_path)
    mlda = args.load_weights_folder
    if mlda is None:
        from tests.support.lsuv import tame_weights
        paddle.seed(0)
        net = networks.build_nets(use_pose=False)["depth"]
        tame_weights(net, paddle.rand([1, 3, args.height, args.width]))
        mlda = tempfile.mkdtemp(prefix="bench_refine_mlda_")
        networks.save_weights_folder(mlda, {"depth": net}, {"height": args.height, "width": args.width})
    print(f"\naccuracy on {args.data_path}'s test lines at {args.height} x {args.width}: head C = "
          f"{args.cond_channels} trained {args.train_steps} steps (batch 2, 20 DDIM steps at strength 0.5, "
          f"gradients through the last {args.grad_steps})")
    print("| depth | DDIM steps | strength | abs_rel | rmse | a1 |")
    accuracy(args, mlda, args.height, args.width)


if __name__ == "__main__":
    main()
