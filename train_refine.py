"""Train the diffusion refinement head (networks/diffusion.py) on sparse ground-truth depth, on top
of a trained MLDA-Net (DIFFUSION_REFINEMENT.md section 5):

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
refine.json: a weights folder test.py, predict.py and export.py use as it is), checkpoint/ (also
the optimiser, schedule, counters and random states; every epoch and on Ctrl-C), train.log.
"""
import utils  # noqa: F401  (first import: silences Paddle's import-time ccache warning)
import json
import logging
import os
import random
import shutil
import sys

import numpy as np
import paddle
from tqdm import tqdm

import datasets
import networks
import options
import training
from losses import sparse_depth_loss, to_gt_size
from networks.diffusion import DiffusionHead, RefinedDepthNet
from utils.cameras.kitti_layout import NATIVE_SIZE
from utils.io.fileio import atomic_folder
from utils.system import RuntimeSetupError, setup_runtime

MIN_GT, MAX_GT = 1e-3, 80.0  # ground truth used for training: 1e-3 < gt < 80 m
RESUME_OVERRIDABLE = ("num_epochs", "max_steps", "num_workers", "num_threads", "device", "log_frequency", "resume",
                      "max_bad_steps")
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


class RefineTrainer:
    def __init__(self, opt, train_dataset=None):
        """`train_dataset` given by the caller (tests) replaces the split's."""
        if opt.resume:
            opt = self.resumed_options(opt)
        self.opt = opt
        try:
            self.device = setup_runtime(opt.device, opt.num_threads)
        except RuntimeSetupError as e:
            fail(e)
        paddle.seed(opt.seed)
        np.random.seed(opt.seed)
        random.seed(opt.seed)
        self.log_path = os.path.join(opt.log_dir, opt.model_name)
        self.lock = training.RunLock(self.log_path)
        try:
            self.lock.acquire()
        except training.RunFolderBusy as e:
            fail(e)
        try:
            self.setup(train_dataset)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def resumed_options(opt):
        path = os.path.join(opt.resume, RUN_OPT_FILE)
        if not os.path.isfile(path):
            fail(f"--resume {opt.resume}: no {RUN_OPT_FILE}; pass the run's checkpoint folder "
                 f"(<log_dir>/<model_name>/checkpoint)")
        with open(path) as f:
            saved = json.load(f)
        saved.update({k: opt[k] for k in RESUME_OVERRIDABLE if k in opt})
        return type(opt)(saved)

    def setup(self, train_dataset):
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
            train_dataset = self.make_dataset()
        self.train_dataset = train_dataset
        self.sampler = training.ResumableBatchSampler(training.SeededDataset(train_dataset, opt.seed),
                                                      opt.batch_size, shuffle=True, seed=opt.seed)
        if len(self.sampler) == 0:
            fail(f"{len(train_dataset)} training samples make no batch of {opt.batch_size}: lower --batch_size")
        self.loader = paddle.io.DataLoader(self.sampler.dataset, batch_sampler=self.sampler,
                                           num_workers=opt.num_workers)

        warmup = len(self.sampler) if opt.warmup_steps < 0 else opt.warmup_steps
        self.lr_scheduler = paddle.optimizer.lr.LambdaDecay(
            opt.learning_rate,
            lambda step: lr_factor(step, len(self.sampler), warmup, opt.num_epochs, opt.lr_decay))
        groups = [{"params": head.parameters()}]
        if not opt.freeze_mlda:  # fine-tuned at a tenth of the head's rate (DiffusionDepth's backbone split)
            groups.append({"params": nets["depth"].parameters(), "learning_rate": 0.1})
        self.params = [p for g in groups for p in g["params"]]
        self.optimizer = paddle.optimizer.Adam(learning_rate=self.lr_scheduler, parameters=groups)

        self.epoch, self.batch_in_epoch, self.step, self.bad_steps = 0, 0, 0, 0
        if opt.resume:
            self.load_checkpoint(opt.resume)
        self.log.info(f"refine head C={opt.cond_channels} at {opt.height}x{opt.width}, {opt.ddim_steps} DDIM steps, "
                      f"strength {opt.strength}, w_ddim {opt.w_ddim}, MLDA {'frozen' if opt.freeze_mlda else 'tuned'}; "
                      f"{len(train_dataset)} samples; run folder {self.log_path}")

    def make_dataset(self):
        opt = self.opt
        if not os.path.isdir(opt.data_path):
            fail(f"--data_path {opt.data_path}: no such folder")
        try:
            train, _ = datasets.train_val_datasets(
                opt.data_path, opt.split, opt.height, opt.width, [0], img_ext=".png" if opt.png else ".jpg",
                depth_gt_size=NATIVE_SIZE if opt.dataset == "kitti" else None, num_scales=1, dataset=opt.dataset)
        except datasets.DataError as e:
            fail(e)
        if not train.load_depth:
            fail(f"--data_path {opt.data_path}: the training frames have no ground-truth depth (KITTI velodyne "
                 f"scans, or depth/ of the folder layout); the head is trained on it")
        return train

    def close(self):
        for handler in list(getattr(self, "log", logging.getLogger("unused")).handlers):
            handler.close()
            self.log.removeHandler(handler)
        self.lock.release()

    # ------------------------------------------------------------------ the loop
    def train(self):
        """Epochs until num_epochs (or max_steps); Ctrl-C writes a resumable checkpoint first.
        Returns the last weights folder written."""
        opt = self.opt
        folder = None
        try:
            while self.epoch < opt.num_epochs and not self.steps_done():
                finished = self.run_epoch()
                label = self.epoch if finished else f"{self.epoch}_step{self.step}"
                folder = self.save_weights(os.path.join(self.log_path, "models", f"weights_{label}"))
                if finished:
                    self.epoch += 1
                    self.batch_in_epoch = 0
                self.save_checkpoint()
        except KeyboardInterrupt:
            ckpt = self.save_checkpoint()
            print(f"\ninterrupted: resumable checkpoint in {ckpt}; continue with: "
                  f"python train_refine.py --resume {ckpt}")
            raise SystemExit(130)
        finally:
            self.close()
        return folder

    def steps_done(self):
        return bool(self.opt.max_steps) and self.step >= self.opt.max_steps

    def run_epoch(self):
        self.model.head.train()
        self.model.depth_net.train(not self.opt.freeze_mlda)
        self.sampler.set_epoch(self.epoch, self.batch_in_epoch)
        bar = tqdm(self.loader, total=len(self.sampler), initial=self.batch_in_epoch,
                   desc=f"epoch {self.epoch} (of 0-{self.opt.num_epochs - 1})", dynamic_ncols=True)
        for inputs in bar:
            losses = self.train_step(inputs)
            self.batch_in_epoch += 1
            if losses is not None:
                bar.set_postfix({k: f"{v:.4f}" for k, v in losses.items()})
                if self.step % self.opt.log_frequency == 0 or self.step == 1:
                    self.log.info(f"epoch {self.epoch} step {self.step} lr {self.optimizer.get_lr():.2e} "
                                  + " ".join(f"{k} {v:.4f}" for k, v in losses.items()))
            if self.steps_done():
                bar.close()
                return self.batch_in_epoch == len(self.sampler)
        bar.close()
        return True

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

    # ------------------------------------------------------------------ weights and checkpoints
    def write_weights(self, folder):
        """MLDA-Net's depth files with its opt.json, and the head's refine.pdparams + refine.json.
        A frozen MLDA-Net's files are hard links to those it was loaded from (140 MB per folder
        otherwise; every writer here replaces files by renaming, so a link never changes)."""
        if self.opt.freeze_mlda:
            networks.save_weights_folder(folder, {}, options.to_json_dict(self.mlda_opt))
            for name in networks.weight_files(self.nets):
                src, dst = (os.path.join(d, f"{name}.pdparams") for d in (self.mlda_source, folder))
                try:
                    os.link(src, dst)
                except OSError:  # another file system, or no hard links
                    shutil.copy2(src, dst)
        else:
            networks.save_weights_folder(folder, self.nets, options.to_json_dict(self.mlda_opt))
        networks.save_refine_head(folder, self.model.head)

    def save_weights(self, folder):
        with atomic_folder(folder) as tmp:
            self.write_weights(tmp)
        self.log.info(f"weights: {folder}")
        return folder

    def weight_layers(self):
        """Weights file -> layer of everything the optimiser may hold (names of optimizer.pdopt)."""
        return dict(networks.weight_files(self.nets), **{networks.REFINE_FILE: self.model.head})

    def save_checkpoint(self):
        folder = os.path.join(self.log_path, "checkpoint")
        state = training.trainer_state(self.epoch, self.batch_in_epoch, self.step, None, self.lr_scheduler)
        with atomic_folder(folder) as tmp:
            self.write_weights(tmp)
            training.write_state(tmp, self.optimizer, self.weight_layers(), state)
            with open(os.path.join(tmp, RUN_OPT_FILE), "w") as f:
                json.dump(options.to_json_dict(self.opt), f, indent=2, sort_keys=True)
        return folder

    def load_checkpoint(self, folder):
        try:
            training.missing_file(folder, ("optimizer.pdopt", "trainer_state.pkl", "refine.pdparams"))
            self.model.head.set_state_dict(networks.load_refine_head(folder).state_dict())
        except (training.ResumeError, networks.CheckpointError) as e:
            fail(e)
        state = training.restore_state(folder, self.optimizer, self.weight_layers(), self.lr_scheduler)
        self.epoch, self.batch_in_epoch, self.step = state["epoch"], state["batch_in_epoch"], state["step"]
        self.log.info(f"resumed from {folder}: epoch {self.epoch}, batch {self.batch_in_epoch}, step {self.step}")


def main(argv=None):
    opt = options.parse("train_refine", argv)
    if opt.dataset == "synthetic" and not opt.resume:
        import synthetic
        synthetic.ensure(opt.data_path)
    folder = RefineTrainer(opt).train()
    if folder:
        print(f"weights with the diffusion head: {folder}")


if __name__ == "__main__":
    main(sys.argv[1:])
