"""Train the diffusion refinement head (networks/diffusion.py) on sparse ground-truth depth, on top
of a trained MLDA-Net (docs/DIFFUSION_REFINEMENT.md §5):

    python train_refine.py --load_weights_folder WEIGHTS --data_path kitti_data
    python train_refine.py --load_weights_folder WEIGHTS --dataset synthetic --cond_channels 64
    python train_refine.py --resume logs/refine/checkpoint          # continue an interrupted run

Each step: MLDA-Net (frozen by default) gives its features and disparity; the head runs its k DDIM
steps from fresh noise with autograd on (the last --grad_steps only, if set), decodes metric depth,
and is trained with
    L = L_pix(depth resized to the ground truth, gt on 1e-3 < gt < 80) + w_ddim L_ddim
L_pix: per-image L1 + L2 over the valid pixels (DiffusionDepth, without its clamp of the
prediction), or SILog (--pixel_loss sig). L_ddim ("self-diffusion"): the final latent is noised at
a random timestep and the denoiser predicts that noise, which trains the reverse process on the
model's own latents where the ground truth is too sparse to encode.

A run writes <log_dir>/<model_name>/: models/weights_<epoch>/ (MLDA-Net's files + refine.pdparams +
refine.json: a weights folder test.py, predict.py and export.py use as it is), models/best/ (the
lowest validation abs_rel of the refined depth, unscaled, on the split's val files), checkpoint/
and checkpoint_previous/ (also the optimiser, schedule, counters and random states), train.log.
The loop, its checkpoints (every --checkpoint_minutes / --checkpoint_steps, each epoch's end, on
Ctrl-C or SIGTERM) and --resume are train.py's (training.TrainingLoop).
"""
import utils  # noqa: F401  (first import: silences Paddle's import-time ccache warning)
import options
options.check_before_imports("train_refine", __name__)
import json
import os
import shutil
import sys

import numpy as np
import paddle
from tqdm import tqdm

import datasets
import networks
import training
from losses import sparse_depth_loss, to_gt_size
from networks.diffusion import DiffusionHead, RefinedDepthNet
from training.stop import loader_batches, worker_init
from utils.cameras.kitti_layout import NATIVE_SIZE
from utils.system import RuntimeSetupError, setup_runtime

MIN_GT, MAX_GT = 1e-3, 80.0  # ground truth used for training: 1e-3 < gt < 80 m
RESUME_OVERRIDABLE = ("num_epochs", "max_steps", "num_workers", "num_threads", "device", "log_frequency", "resume",
                      "max_bad_steps", "checkpoint_steps", "checkpoint_minutes", "val_max_images")
RUN_OPT_FILE = "train_refine.json"


def fail(message):
    raise SystemExit(f"train_refine.py: error: {message}")


def valid_mask(gt):
    """The ground-truth pixels that supervise: 1e-3 < gt < 80."""
    return (gt > MIN_GT) & (gt < MAX_GT)


def pixel_loss(pred, gt, valid, kind="l1l2"):
    """Loss of predicted depth `pred` against ground truth `gt` (B x 1 x H x W, same size) on the
    `valid` pixels only. l1l2 (DiffusionDepth's L1 + L2, per image, then the batch mean):
        sum(m |p - g|) / (sum(m) + 1e-8) + sum(m (p - g)^2) / (sum(m) + 1e-8)
    sig: losses.sparse_depth_loss's SILog (lambda 0.85). Invalid pixels (any value, NaN included)
    contribute nothing and get zero gradient (paddle.where, not a product with the mask)."""
    if kind == "sig":
        return sparse_depth_loss(pred, gt, valid, kind="silog", silog_lambda=0.85)
    diff = paddle.where(valid, pred - gt, paddle.zeros_like(pred))
    count = valid.astype(pred.dtype).sum(axis=[1, 2, 3]) + 1e-8
    l1 = diff.abs().sum(axis=[1, 2, 3]) / count
    l2 = (diff * diff).sum(axis=[1, 2, 3]) / count
    return (l1 + l2).mean()


def lr_factor(step, steps_per_epoch, warmup_steps, num_epochs, decay):
    """DiffusionDepth's schedule: linear warm-up over `warmup_steps`, then x decay after a third
    and x decay^2 after half of the epochs (its 1, 0.2, 0.04 at epochs 10 and 15 of 30)."""
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    epoch = step // max(steps_per_epoch, 1)
    return warm * decay ** ((epoch >= num_epochs / 3) + (epoch >= num_epochs / 2))


class RefineTrainer(training.TrainingLoop):
    script = "train_refine.py"
    checkpoint_files = ("optimizer.pdopt", "trainer_state.pkl", networks.REFINE_FILE + ".pdparams", RUN_OPT_FILE)

    def __init__(self, opt, train_dataset=None, val_dataset=None, stop=None):
        """Datasets given by the caller (tests) replace the split's (val may then be None); stop: as
        trainer.Trainer's."""
        self.opt = opt
        self.init_loop(stop)
        self.world_size, self.is_main, self.scaler = 1, True, None
        try:
            self.device = setup_runtime(opt.device, opt.num_threads)
        except RuntimeSetupError as e:
            fail(e)
        self.open_run()
        try:
            self.setup(train_dataset, val_dataset)
        except BaseException:
            self.close()
            raise

    def setup(self, train_dataset, val_dataset):
        opt = self.opt
        self.log = training.run_log(self.log_path, f"mlda.train_refine.{id(self)}")

        source = self.mlda_source = opt.resume or opt.load_weights_folder
        try:
            self.mlda_opt, nets = networks.load_weights_folder(source, ("depth",), opt.batch_coupled_filter)
        except networks.CheckpointError as e:
            fail(f"--load_weights_folder: {e}")
        opt.height = opt.height or self.mlda_opt.height
        opt.width = opt.width or self.mlda_opt.width
        # the weights folders written here run at the size the head was trained at
        self.mlda_opt.height, self.mlda_opt.width = opt.height, opt.width
        head = DiffusionHead(cond_channels=opt.cond_channels, depth_mapping=opt.depth_mapping,
                             paper_output_act=opt.paper_output_act, ddim_steps=opt.ddim_steps,
                             strength=opt.strength, noise_seed=opt.noise_seed)
        self.model = RefinedDepthNet(nets["depth"], head)
        self.nets = {"depth": nets["depth"]}

        if train_dataset is None:
            train_dataset, val_dataset = self.make_datasets()
        self.train_dataset, self.val_dataset = train_dataset, val_dataset
        self.sampler = training.ResumableBatchSampler(training.SeededDataset(train_dataset, opt.seed),
                                                      opt.batch_size, shuffle=True, seed=opt.seed)
        if len(self.sampler) == 0:
            fail(f"{len(train_dataset)} training samples make no batch of {opt.batch_size}: lower --batch_size")
        self.loader = paddle.io.DataLoader(self.sampler.dataset, batch_sampler=self.sampler,
                                           num_workers=opt.num_workers, worker_init_fn=worker_init)

        warmup = len(self.sampler) if opt.warmup_steps < 0 else opt.warmup_steps
        self.lr_scheduler = paddle.optimizer.lr.LambdaDecay(
            opt.learning_rate,
            lambda step: lr_factor(step, len(self.sampler), warmup, opt.num_epochs, opt.lr_decay))
        groups = [{"params": head.parameters()}]
        if not opt.freeze_mlda:  # fine-tuned at a tenth of the head's rate (DiffusionDepth's backbone split)
            groups.append({"params": nets["depth"].parameters(), "learning_rate": 0.1})
        self.params = [p for g in groups for p in g["params"]]
        self.optimizer = paddle.optimizer.Adam(learning_rate=self.lr_scheduler, parameters=groups)

        if opt.resume:
            self.load_checkpoint(opt.resume)
        self.log.info(f"refine head C={opt.cond_channels} at {opt.height}x{opt.width}, {opt.ddim_steps} DDIM steps, "
                      f"strength {opt.strength}, w_ddim {opt.w_ddim}, MLDA {'frozen' if opt.freeze_mlda else 'tuned'}; "
                      f"{len(train_dataset)} train / {len(val_dataset) if val_dataset is not None else 0} val "
                      f"samples; run folder {self.log_path}")

    def make_datasets(self):
        """The split's train and val datasets (val None without val files or ground truth)."""
        opt = self.opt
        if not os.path.isdir(opt.data_path):
            fail(f"--data_path {opt.data_path}: no such folder")
        try:
            train, val = datasets.train_val_datasets(
                opt.data_path, opt.split, opt.height, opt.width, [0], img_ext=".png" if opt.png else ".jpg",
                depth_gt_size=NATIVE_SIZE if opt.dataset == "kitti" else None, num_scales=1, dataset=opt.dataset,
                val_max_images=opt.val_max_images)
        except datasets.DataError as e:
            fail(e)
        if not train.load_depth:
            fail(f"--data_path {opt.data_path}: the training frames have no ground-truth depth (KITTI velodyne "
                 f"scans, or depth/ of the folder layout); the head is trained on it")
        return train, val if val is not None and val.load_depth else None

    # ------------------------------------------------------------------ the loop's hooks
    def train(self):
        """The loop (training.TrainingLoop.train); returns the last weights folder written."""
        super().train()
        return self.last_weights

    def set_train_mode(self):
        self.model.head.train()
        self.model.depth_net.train(not self.opt.freeze_mlda)

    def log_progress(self, inputs, losses, speed, bar):
        bar.set_postfix({k: f"{v:.4f}" for k, v in losses.items()})
        if self.step % self.opt.log_frequency == 0 or self.step == 1:
            self.log.info(f"epoch {self.epoch} step {self.step} lr {self.optimizer.get_lr():.2e} "
                          + " ".join(f"{k} {v:.4f}" for k, v in losses.items()))

    def compute_losses(self, inputs):
        """{"loss", "pix", "ddim"} of one batch (tensors)."""
        opt = self.opt
        datasets.batch_to_float(inputs)
        image, gt = inputs[("color_aug", 0, 0)], inputs["depth_gt"]
        b, _, h, w = image.shape
        c = self.model.head.config["latent_channels"]
        noise = paddle.randn([b, c, h // 2, w // 2])  # fresh start noise in training
        out = self.model.refine(image, noise, opt.ddim_steps, opt.strength, opt.grad_steps, opt.freeze_mlda)
        gt = paddle.to_tensor(gt) if not isinstance(gt, paddle.Tensor) else gt
        pix = pixel_loss(to_gt_size(out["depth"], gt), gt, valid_mask(gt), opt.pixel_loss)
        losses = {"loss": pix, "pix": pix}
        if opt.w_ddim > 0:
            z0 = out["latent"].detach() if opt.detach_ddim_target else out["latent"]
            t = paddle.randint(0, self.model.head.config["num_train_timesteps"], [b], dtype="int64")
            losses["ddim"] = self.model.head.ddim_loss(z0, out["cond"], t, paddle.randn(z0.shape))
            losses["loss"] = pix + opt.w_ddim * losses["ddim"]
        return losses

    def train_step(self, inputs):
        """Forward, backward, Adam; a non-finite loss or gradient skips the update (a run of
        --max_bad_steps of them stops with a message)."""
        losses = self.compute_losses(inputs)
        losses["loss"].backward()
        grads = [p.grad for p in self.params if p.grad is not None]
        finite = bool(paddle.isfinite(losses["loss"]).item()) and all(bool(paddle.isfinite(g).all()) for g in grads)
        if not finite:
            self.optimizer.clear_grad()
            self.bad_steps += 1
            self.log.info(f"step {self.step}: non-finite loss/gradient, update skipped")
            if self.bad_steps >= self.opt.max_bad_steps:
                fail(f"{self.bad_steps} consecutive non-finite losses: stopped; try a lower --learning_rate "
                     f"(1e-4) or --grad_steps 1")
            return None
        self.optimizer.step()
        self.optimizer.clear_grad()
        self.lr_scheduler.step()
        self.bad_steps = 0
        self.step += 1
        return {k: float(v) for k, v in losses.items()}

    # ------------------------------------------------------------------ validation
    def validate(self):
        """(mean abs_rel, "abs_rel") of the refined depth, unscaled (it is metric), from the head's
        fixed start noise, against the val files' ground truth; None without them."""
        if self.val_dataset is None or len(self.val_dataset) == 0:
            return None
        opt = self.opt
        self.model.eval()
        loader = paddle.io.DataLoader(self.val_dataset, batch_size=opt.batch_size, shuffle=False,
                                      num_workers=opt.num_workers, worker_init_fn=worker_init)
        noise = self.model.noise_for(opt.height, opt.width)
        abs_rels = []
        try:
            with paddle.no_grad(), loader_batches(loader) as batches:
                for inputs in tqdm(batches, total=len(loader), desc="validation", leave=False):
                    self.check_stop()
                    image = datasets.batch_to_float(inputs)[("color", 0, 0)]
                    abs_rels += self.abs_rels(inputs["depth_gt"].numpy(), 1.0 / self.model(image, noise).numpy(),
                                              mode="none")
        finally:
            self.set_train_mode()
        if not abs_rels:
            return None
        score = float(np.mean(abs_rels))
        self.log.info(f"epoch {self.epoch} step {self.step}: val/abs_rel {score:.4f}")
        return score, "abs_rel"

    # ------------------------------------------------------------------ weights
    def write_weights(self, folder):
        """MLDA-Net's depth files with its opt.json, and the head's refine.pdparams + refine.json."""
        linked = self.opt.freeze_mlda and self.link_frozen_mlda(folder)
        networks.save_weights_folder(folder, {} if linked else self.nets, options.to_json_dict(self.mlda_opt))
        networks.save_refine_head(folder, self.model.head)

    def link_frozen_mlda(self, folder):
        """A frozen MLDA-Net's files as hard links to those it was loaded from (140 MB per folder
        otherwise; every writer here replaces files by renaming, so a link never changes), or copies
        across file systems; False when that folder no longer has them."""
        names = list(networks.weight_files(self.nets))
        if not all(os.path.isfile(os.path.join(self.mlda_source, f"{n}.pdparams")) for n in names):
            return False
        for name in names:
            src, dst = (os.path.join(d, f"{name}.pdparams") for d in (self.mlda_source, folder))
            try:
                os.link(src, dst)
            except OSError:  # another file system, or no hard links
                shutil.copy2(src, dst)
        return True

    def write_run_options(self, folder):
        with open(os.path.join(folder, RUN_OPT_FILE), "w") as f:
            json.dump(options.to_json_dict(self.opt), f, indent=2, sort_keys=True)

    def weight_layers(self):
        """Weights file -> layer of everything the optimiser may hold (names of optimizer.pdopt)."""
        return dict(networks.weight_files(self.nets), **{networks.REFINE_FILE: self.model.head})

    def restore_weights(self, folder):
        self.model.head.set_state_dict(networks.load_refine_head(folder).state_dict())


def resume_options(opt, argv):
    """The resumed run's options (train.py's rule: its train_refine.json, and the RESUME_OVERRIDABLE
    options given on this command line); --resume becomes the intact checkpoint."""
    return training.resumed_options("train_refine.py", opt, options.given_options("train_refine", argv),
                                    RESUME_OVERRIDABLE, RUN_OPT_FILE)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    opt = options.parse("train_refine", argv)
    if opt.resume:
        opt = resume_options(opt, argv)
    elif opt.dataset == "synthetic":
        import synthetic
        synthetic.ensure(opt.data_path)
    try:
        with training.StopSignals() as stop:   # after Paddle's import, which puts its own handler on SIGTERM
            folder = RefineTrainer(opt, stop=stop).train()
    except KeyboardInterrupt:   # a second Ctrl-C during the set-up
        raise SystemExit(130)
    if folder:
        print(f"weights with the diffusion head: {folder}")


if __name__ == "__main__":
    main(sys.argv[1:])
