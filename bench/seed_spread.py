"""Spread over seeds of the statistics that the suite's training-outcome tests assert (one JSON line a seed).

    python bench/seed_spread.py collapse --seeds 0 1 2 3 4
    MKL_DEBUG_CPU_TYPE=5 python bench/seed_spread.py collapse --seeds 0 1 2 3 4   # MKL's AVX2 kernels

A short training run is chaotic: another CPU's kernels round differently and after a few steps the run is
as far from this one as a run with another seed. So a threshold needs margin over seeds and kernels. The
kernels are picked by the environment: MKL_DEBUG_CPU_TYPE=5 (MKL's AVX2 path, what it runs on Intel AVX2
CPUs; on AMD it otherwise takes a generic path), MKL_CBWR=COMPATIBLE (another path). ONEDNN_MAX_CPU_ISA and
MKL_ENABLE_INSTRUCTIONS change no bit of Paddle's CPU results on an AMD EPYC (oneDNN is not used in eager
mode, MKL ignores the latter there). The numbers and thresholds are in the tests' comments.

collapse    tests/test_collapse.py: dead-pixel share per scale (new and old initialisation) and the smallest
            d (1 - d) of the new one, after every step up to --steps
metric      tests/test_metric_training.py: log scale error of fresh monocular weights and its change after a
            gradient step of length 0.01 with and without the sparse-depth term
overfit     tests/test_trainer.py: every 5 steps up to --steps, loss / first loss, abs_rel, the constant's
            abs_rel, z of the forward and the reversed pair
refine      tests/test_train_refine.py: refined (unscaled) and MLDA-Net (median-scaled) abs_rel, rmse, a1
            after --steps
best_epoch  tests/test_training_run.py: validation scores of two one-step epochs (Paddle's default init)
denoiser    tests/test_diffusion.py: first loss and last / first of the denoiser's 30 Adam steps
"""
import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DEFAULT_STEPS = {"collapse": 15, "overfit": 70, "refine": 40}


def synthetic_root(base, hints=False):
    """The tests' synthetic KITTI (tests/synthetic_fixture.py's settings) under base."""
    import synthetic
    from tests.synthetic_fixture import SETTINGS
    root = synthetic.generate(os.path.join(base, "synthetic_kitti"), progress=False, **SETTINGS)["data_path"]
    if hints:
        import precompute_depth_hints
        precompute_depth_hints.ensure(root, progress=False)
    return root


def collapse(seed, steps, base):
    import networks.model
    import options
    import trainer
    from tests import test_collapse as t
    from tests.support.stereo_pair import NoFiles, stereo_batch
    inputs, result = stereo_batch(t.H, t.W), {}
    original = networks.model.init_as_original
    for name in ("new", "old"):
        networks.model.init_as_original = original if name == "new" else (lambda net: net)
        argv = ["--data_path", base, "--log_dir", os.path.join(base, f"{name}{seed}"), "--frame_ids", "0",
                "--use_stereo", "--no-use_depth_hints", "--weights_init", "scratch", "--height", str(t.H),
                "--width", str(t.W), "--batch_size", "2", "--learning_rate", str(t.LR), "--num_workers", "0",
                "--seed", str(seed)]
        tr = trainer.Trainer(options.parse("train", argv), train_dataset=NoFiles(), val_dataset=None)
        rows = []
        for _ in range(steps + 1):     # the last forward: the weights after `steps` updates
            outputs, losses = tr.train_step(inputs)     # (None: a skipped step, which fails the run)
            disps = [outputs[("disp", s)].numpy() for s in range(4)]
            rows.append(dict(dead=[round(t.dead_share(d), 4) for d in disps],
                             min_d_1_d=float(min((d * (1 - d)).min() for d in disps)),
                             smooth=min(float(losses[f"smooth/{s}"]) for s in range(4))))
        tr.close()
        result[name] = rows
    networks.model.init_as_original = original
    return result


def metric(seed, steps, base):
    import options
    from tests import test_metric_training as t
    from trainer import Trainer
    root = synthetic_root(base)
    info = {"data_path": root}

    def argv(*extra):
        a = t._argv(root, os.path.join(base, f"metric{seed}"), *t.MONO, "--min_depth", "0.01", *extra)
        a[a.index("--seed") + 1] = str(seed)
        return a
    mono = Trainer(options.parse("train", argv()), t._dataset(info, [0, -1, 1]), None)
    mono.close()
    weights = os.path.join(base, f"metric{seed}", "mono_weights")
    mono.save_weights(weights)
    result = {}
    for sparse in ("0", "1"):
        opt = options.parse("train", argv("--model_name", f"sparse{sparse}", "--load_weights_folder", weights,
                                          "--sparse_depth_weight", sparse))
        tr = Trainer(opt, t._dataset(info, [0, -1, 1]), None)
        error, change = t._gradient_step(tr, next(iter(tr.loader)), 0.01)
        tr.close()
        result[f"sparse_weight_{sparse}"] = dict(log_scale_error=error, change=change)
    return result


def overfit(seed, steps, base):
    import datasets
    import options
    import trainer
    from tests import test_trainer as t
    root = synthetic_root(base, hints=True)
    argv = t.small_argv(root, os.path.join(base, f"overfit{seed}"), "--learning_rate", "3e-5", "--width", "96")
    argv[argv.index("--seed") + 1] = str(seed)
    ds = datasets.KITTIRAWDataset(root, [t.OVERFIT_LINE], 64, 96, [0, -1, 1, "s"], is_train=False,
                                  use_depth_hints=True, depth_gt_size=None)
    inputs = t.with_time_reversed_copy(t.batch_of(ds))
    tr = trainer.Trainer(options.parse("train", argv), ds, None)
    first, rows = t.depth_errors(tr, inputs), []
    for step in range(1, steps + 1):
        tr.train_step(inputs)
        if step % 5 == 0:
            (loss, abs_rel, constant), z = t.depth_errors(tr, inputs), t.pose_z(tr, inputs)
            rows.append(dict(step=step, loss_ratio=loss / first[0], abs_rel=abs_rel, constant=constant,
                             z_forward=z[0], z_swapped=z[1]))
    tr.close()
    return rows


def refine(seed, steps, base):
    import paddle

    import networks
    from networks.layers import disp_to_depth
    from tests import test_train_refine as t
    from tests.support.lsuv import tame_weights
    from tests.support.synthetic_runs import mean_errors, synthetic_test_frames
    root = synthetic_root(base)
    mlda = os.path.join(base, "refine_mlda")
    if not os.path.isfile(os.path.join(mlda, "opt.json")):      # the test's fixture: fixed, seed 0
        paddle.seed(0)
        net = networks.build_nets(use_pose=False)["depth"]
        tame_weights(net, paddle.rand([1, 3, t.H, t.W]))
        networks.save_weights_folder(mlda, {"depth": net}, {"height": t.H, "width": t.W, "num_layers": 18,
                                                            "scales": [0, 1, 2, 3], "min_depth": 0.1,
                                                            "max_depth": 100.0})
    images, gts = synthetic_test_frames(root, t.H, t.W)
    _, nets = networks.load_weights_folder(mlda, ("depth",))
    with paddle.no_grad():
        disp = disp_to_depth(nets["depth"].disparity(images), 0.1, 100.0)[0].numpy()[:, 0]
    argv = t.argv(root, mlda, os.path.join(base, f"refine{seed}"), "w1", "--max_steps", str(steps))
    argv[argv.index("--seed") + 1] = str(seed)
    folder = t.run(argv, t.train_dataset(root, repeat=10)).train()
    net = networks.load_weights_folder(folder, ("refine",))[1]["refine"]
    with paddle.no_grad():
        depth = net(images, net.noise_for(t.H, t.W)).numpy()[:, 0]
    pick = [0, 2, 4]    # abs_rel, rmse, a1
    return dict(refined=mean_errors(gts, 1.0 / depth, "none")[pick].tolist(),
                mlda=mean_errors(gts, disp, "median")[pick].tolist())


def best_epoch(seed, steps, base):
    import datasets
    import networks.model
    import synthetic
    import train
    import trainer
    from tests.test_training_run import run_argv
    root = synthetic_root(base, hints=True)
    split = os.path.join(base, f"split{seed}")
    os.makedirs(split, exist_ok=True)
    for name, count in (("train_files.txt", 2), ("val_files.txt", None)):
        lines = datasets.read_split(os.path.join(synthetic.split_dir(root), name))[:count]
        with open(os.path.join(split, name), "w") as f:
            f.write("\n".join(lines) + "\n")
    scores, original = [], trainer.Trainer.validate

    def recording_validate(self):
        score = original(self)
        scores.append(score[0])
        return score
    trainer.Trainer.validate = recording_validate
    networks.model.init_as_original, init = (lambda net: net), networks.model.init_as_original
    try:
        train.main(run_argv(root, split, os.path.join(base, f"best{seed}"), "--num_epochs", "2",
                            "--save_frequency", "100", "--seed", str(seed)))
    finally:
        trainer.Trainer.validate, networks.model.init_as_original = original, init
    return scores


def denoiser(seed, steps, base):
    import numpy as np
    import paddle
    from tests import test_diffusion as t
    paddle.seed(1 + seed)
    head = t.DiffusionHead(cond_channels=16)
    feats, disp = t.fake_features(2, 32, 64, seed=2 + seed)
    z0 = paddle.tanh(paddle.to_tensor(np.random.default_rng(3 + seed).standard_normal((2, 16, 16, 32)), "float32"))
    timesteps = paddle.to_tensor([100, 600], dtype="int64")
    noise = paddle.to_tensor(np.random.default_rng(4 + seed).standard_normal((2, 16, 16, 32)), "float32")
    opt = paddle.optimizer.Adam(1e-3, parameters=head.parameters())
    losses = []
    for _ in range(30):
        loss = head.ddim_loss(z0, head.neck(feats, disp), timesteps, noise)
        loss.backward()
        opt.step()
        opt.clear_grad()
        losses.append(float(loss))
    return dict(first=losses[0], last_over_first=losses[-1] / losses[0])


STATISTICS = {f.__name__: f for f in (collapse, metric, overfit, refine, best_epoch, denoiser)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("statistic", choices=sorted(STATISTICS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=None, help="collapse 15, overfit 70, refine 40")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (default: every core, as the tests)")
    args = parser.parse_args()
    from utils.system import setup_runtime
    setup_runtime("cpu", num_threads=args.threads)
    steps = args.steps or DEFAULT_STEPS.get(args.statistic, 0)
    with tempfile.TemporaryDirectory() as base:
        for seed in args.seeds:
            result = STATISTICS[args.statistic](seed, steps, base)
            print(json.dumps({"statistic": args.statistic, "seed": seed, "steps": steps,
                              "MKL_DEBUG_CPU_TYPE": os.environ.get("MKL_DEBUG_CPU_TYPE"),
                              "MKL_CBWR": os.environ.get("MKL_CBWR"), "result": result}), flush=True)


if __name__ == "__main__":
    main()
