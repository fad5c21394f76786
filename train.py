"""Train MLDA-Net (monocular, stereo or mono+stereo, with or without depth hints).

    python train.py --dataset synthetic                       # generated KITTI-layout scene, small preset
    python train.py --data_path kitti_data --model_name mlda  # KITTI raw, eigen_zhou, M2/DH defaults
    python -m paddle.distributed.launch --gpus 0,1 train.py --data_path kitti_data   # data parallel
    python train.py --resume logs/mlda/checkpoint             # continue an interrupted run

All options: python train.py --help (defined in options.py).
"""
import utils  # noqa: F401  (first import: silences Paddle's import-time ccache warning)
import os
import sys

import options


def resume_options(opt, argv):
    """The options of the run being resumed (its checkpoint's opt.json), with only the runtime
    options (RESUME_OVERRIDABLE) taken from this command line, and only those given on it.
    --resume becomes the checkpoint to load: the given one, or the one before it when the given
    one is damaged (said in one line); none intact: one line, exit 2, nothing written."""
    import training
    from trainer import RESUME_OVERRIDABLE
    return training.resumed_options("train.py", opt, options.given_options("train", argv), RESUME_OVERRIDABLE,
                                    "opt.json")


def prepare_synthetic(opt):
    """Generate the synthetic KITTI under --data_path and its depth hints, unless already there."""
    import synthetic
    synthetic.ensure(opt.data_path)
    if opt.use_depth_hints:  # the project's fused-SGM pipeline, at the dataset's native size
        import precompute_depth_hints
        precompute_depth_hints.ensure(opt.data_path, opt.depth_hint_path,
                                      num_workers=max(1, min(opt.num_workers, os.cpu_count() or 1)))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    opt = options.parse("train", argv)
    if opt.resume:
        opt = resume_options(opt, argv)
    if opt.dataset == "synthetic":
        prepare_synthetic(opt)
    import training
    from trainer import Trainer  # after option checks, so that --help and errors are quick
    try:
        with training.StopSignals() as stop:   # after Paddle's import, which puts its own handler on SIGTERM
            best = Trainer(opt, stop=stop).train()
    except KeyboardInterrupt:   # a second Ctrl-C during the set-up
        raise SystemExit(130)
    if best is not None:
        print(f"best {best[1]} {best[0]:.4f} (epoch {best[2]}): "
              f"{os.path.join(opt.log_dir, opt.model_name, 'models', 'best')}")


if __name__ == "__main__":
    main()
