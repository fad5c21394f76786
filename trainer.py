"""Self-supervised training of MLDA-Net (Monodepth2 + Depth Hints framework, spec sections 5-6).

    trainer = Trainer(opt)        # opt: options.parse("train", ...)
    trainer.train()

Reads top to bottom: set-up (device, processes, models, optimiser, data), the training loop,
one step (forward, loss, backward, optimiser), validation, logging, checkpoints.

Layout of a run, <log_dir>/<model_name>/:
    models/weights_<epoch>/   a weights folder per epoch (encoder/depth/pose_encoder/pose.pdparams + opt.json)
    models/best/              the weights folder of the best validation score so far (+ best.json)
    checkpoint/               everything --resume needs (weights, optimiser, schedule, counters, RNG)
    train.log, vdl/           plain log and VisualDL logs (`visualdl --logdir <log_dir>/<model_name>/vdl`)
Folders are written next to their final place and renamed into it, so a crash never leaves a
half-written folder where a good one was.
"""
import json
import logging
import os
import pickle
import random
import shutil
import time
import warnings

import numpy as np
import paddle
import paddle.distributed as dist
from tqdm import tqdm

import datasets
import networks
from losses import compute_losses, generate_images_pred
from networks.layers import disp_to_depth, transformation_from_parameters
from options import to_json_dict
from utils import image_io
from utils.metrics import evaluate_depth
from utils.system import set_cpu_threads

# Options a resumed run may change; everything else comes from the checkpoint's opt.json.
RESUME_OVERRIDABLE = ("num_epochs", "max_steps", "num_workers", "num_threads", "device", "log_frequency",
                      "save_frequency", "num_log_images", "val_max_images", "max_bad_steps", "resume")


class SeededDataset(paddle.io.Dataset):
    """Wraps a dataset so that sample `key = epoch * len + index` draws its augmentation from a seed
    fixed by (seed, epoch, index): the same sample gets the same flips and jitter whatever the number
    of workers or processes, and a resumed run sees exactly the data the interrupted one would have."""

    def __init__(self, dataset, seed):
        self.dataset, self.seed = dataset, seed

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        epoch, index = divmod(int(key), len(self.dataset))
        s = (self.seed * 1000003 + epoch) * 1000003 + index
        random.seed(s)
        np.random.seed(s % 2 ** 32)
        return self.dataset[index]


class ResumableBatchSampler(paddle.io.DistributedBatchSampler):
    """DistributedBatchSampler whose epoch order is a permutation seeded by (seed, epoch), that can
    start in the middle of an epoch, and that yields SeededDataset keys. Each process takes every
    nranks-th index of the padded permutation, so the ranks see disjoint samples."""

    def __init__(self, dataset, batch_size, shuffle, seed):
        super().__init__(dataset, batch_size, shuffle=shuffle, drop_last=True)
        self.seed, self.start_batch = seed, 0

    def set_epoch(self, epoch, start_batch=0):
        self.epoch, self.start_batch = epoch, start_batch

    def __iter__(self):
        n = len(self.dataset)
        order = (np.random.RandomState(self.seed + self.epoch).permutation(n) if self.shuffle
                 else np.arange(n))
        order = np.resize(order, self.total_size)  # pad by repeating, so every rank gets as many
        mine = order[self.local_rank::self.nranks] + self.epoch * n
        for b in range(self.start_batch, len(self)):
            yield mine[b * self.batch_size:(b + 1) * self.batch_size].tolist()

    def __len__(self):
        return self.num_samples // self.batch_size


class Trainer:
    def __init__(self, opt, train_dataset=None, val_dataset=None):
        self.opt = opt
        self.setup_runtime()
        self.log_path = os.path.join(opt.log_dir, opt.model_name)
        self.is_main = self.rank == 0
        self.setup_logging()

        # Frames: 0 is the target; -1/+1 temporal sources (need the pose network), "s" the stereo partner.
        self.frame_ids = list(opt.frame_ids) + (["s"] if opt.use_stereo else [])
        self.use_pose = len(opt.frame_ids) > 1
        self.models = networks.build_models(num_layers=opt.num_layers, scales=opt.scales,
                                            use_pose=self.use_pose,
                                            batch_coupled_filter=opt.batch_coupled_filter)
        self.init_weights()
        self.train_models = dict(self.models)
        if self.world_size > 1:
            self.train_models = {k: paddle.DataParallel(m) for k, m in self.models.items()}

        # Adam with a step schedule: lr x lr_decay every scheduler_step_size epochs (stepped per epoch).
        self.lr_scheduler = paddle.optimizer.lr.StepDecay(opt.learning_rate, step_size=opt.scheduler_step_size,
                                                          gamma=opt.lr_decay)
        params = [p for m in self.models.values() for p in m.parameters()]
        # One fused update for all tensors: 4x faster than per-parameter Adam here (66M parameters).
        self.optimizer = paddle.optimizer.Adam(learning_rate=self.lr_scheduler, parameters=params,
                                               use_multi_tensor=True)
        self.scaler = paddle.amp.GradScaler(init_loss_scaling=2.0 ** 15) if self.amp else None

        # Datasets given by the caller (tests, benchmarks) replace the split's; val may then be None.
        if train_dataset is None:
            train_dataset, val_dataset = self.make_dataset("train"), self.make_dataset("val")
        self.train_dataset, self.val_dataset = train_dataset, val_dataset
        self.sampler = ResumableBatchSampler(SeededDataset(self.train_dataset, opt.seed), opt.batch_size,
                                             shuffle=True, seed=opt.seed)
        if len(self.sampler) == 0:
            raise SystemExit(f"train.py: error: {len(self.train_dataset)} training samples make no batch of "
                             f"{opt.batch_size} per process: lower --batch_size")
        self.train_loader = paddle.io.DataLoader(self.sampler.dataset, batch_sampler=self.sampler,
                                                 num_workers=opt.num_workers)

        self.epoch, self.batch_in_epoch, self.step = 0, 0, 0
        self.best = None  # (value, metric name, epoch)
        self.last_score = None  # (value, metric name) of the latest validation
        self.bad_steps = 0
        if opt.resume:
            self.load_checkpoint(opt.resume)
        self.writer = self.make_writer()
        self.log.info(f"training {self.frame_ids} at {opt.height}x{opt.width}, batch {opt.batch_size} x "
                      f"{self.world_size} process(es) on {self.device}; {len(self.train_dataset)} train / "
                      f"{len(self.val_dataset) if self.val_dataset is not None else 0} val samples; "
                      f"run folder {self.log_path}")

    # ------------------------------------------------------------------ set-up
    def setup_runtime(self):
        opt = self.opt
        self.world_size = dist.get_world_size()
        if self.world_size > 1:
            dist.init_parallel_env()
        self.rank = dist.get_rank()
        has_gpu = paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
        if opt.device == "gpu" and not has_gpu:
            raise SystemExit("train.py: error: --device gpu but this Paddle build sees no GPU: use --device cpu "
                             "or install paddlepaddle-gpu")
        use_gpu = has_gpu and opt.device != "cpu"
        self.device = f"gpu:{dist.ParallelEnv().device_id}" if use_gpu else "cpu"
        paddle.set_device(self.device)
        if not use_gpu:  # the cores are shared by the processes of a distributed run
            set_cpu_threads(opt.num_threads or max(1, (os.cpu_count() or 1) // self.world_size))
        self.amp = bool(opt.amp and use_gpu)
        if opt.amp and not use_gpu and self.rank == 0:
            print("note: --amp needs a GPU; training in float32 on the CPU")
        # Every process starts from the same seed, so the replicas start identical.
        paddle.seed(opt.seed)
        np.random.seed(opt.seed)
        random.seed(opt.seed)

    def setup_logging(self):
        self.log = logging.getLogger(f"mlda.train.{id(self)}")
        self.log.setLevel(logging.INFO)
        self.log.propagate = False
        if self.is_main:
            os.makedirs(self.log_path, exist_ok=True)
            handler = logging.FileHandler(os.path.join(self.log_path, "train.log"))
            handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
            self.log.addHandler(handler)
        else:
            self.log.addHandler(logging.NullHandler())

    def make_writer(self):
        if not self.is_main:
            return None
        from visualdl import LogWriter
        return LogWriter(logdir=os.path.join(self.log_path, "vdl"))

    def init_weights(self):
        """Backbones from ImageNet (--weights_init pretrained|PATH) or random; then, for fine-tuning,
        whole networks from --load_weights_folder (any folder networks.load_models reads)."""
        opt = self.opt
        if opt.weights_init != "scratch" and not opt.resume and not opt.load_weights_folder:
            state = self.imagenet_state() if opt.weights_init == "pretrained" else paddle.load(opt.weights_init)
            for name in ("encoder", "pose_encoder"):
                if name in self.models:
                    self.models[name].load_backbone_state(state)
        if opt.load_weights_folder:
            names = [n for n in opt.models_to_load if n in self.models]
            for name in names:
                try:
                    networks.load_state(self.models[name], name,
                                        os.path.join(opt.load_weights_folder, f"{name}.pdparams"))
                except networks.CheckpointError as e:
                    raise SystemExit(f"train.py: error: --load_weights_folder: {e}")
            self.log.info(f"fine-tuning from {opt.load_weights_folder}: {', '.join(names)}")

    def imagenet_state(self):
        from paddle.vision.models import resnet
        n = self.opt.num_layers
        try:
            return getattr(resnet, f"resnet{n}")(pretrained=True).state_dict()
        except Exception as e:  # offline, proxy, checksum ...
            url = resnet.model_urls[f"resnet{n}"][0]
            raise SystemExit(f"train.py: error: could not get ImageNet ResNet-{n} weights ({type(e).__name__}): download "
                             f"{url} by hand and pass --weights_init /path/to/{os.path.basename(url)}, "
                             f"or train from random weights with --weights_init scratch")

    def make_dataset(self, kind):
        """The split's train or val files as a KITTIRAWDataset (val: no augmentation, capped at
        --val_max_images; None when the split has no val files)."""
        opt = self.opt
        split_file = os.path.join(split_folder(opt), f"{kind}_files.txt")
        if kind == "val" and not os.path.isfile(split_file):
            return None
        if not os.path.isdir(opt.data_path):
            raise SystemExit(f"train.py: error: --data_path {opt.data_path}: no such folder (KITTI raw, see README; "
                             f"or try --dataset synthetic)")
        try:
            filenames = datasets.read_split(split_file)
            if kind == "val" and opt.val_max_images:
                filenames = filenames[:opt.val_max_images]
            return datasets.KITTIRAWDataset(
                opt.data_path, filenames, opt.height, opt.width, self.frame_ids, num_scales=4,
                is_train=(kind == "train"), img_ext=".png" if opt.png else ".jpg",
                use_depth_hints=opt.use_depth_hints, depth_hint_path=opt.depth_hint_path,
                skip_missing=opt.get("skip_missing", False) and kind == "train",
                # KITTI's image sizes differ slightly per date: M2's fixed size lets val batches stack
                depth_gt_size=None if opt.dataset == "synthetic" else (375, 1242))
        except datasets.DataError as e:
            hint = " (compute hints with precompute_depth_hints.py)" if opt.use_depth_hints else ""
            raise SystemExit(f"train.py: error: {e}{hint}")

    # ------------------------------------------------------------------ the loop
    def train(self):
        """Epochs until num_epochs (or max_steps); Ctrl-C writes a resumable checkpoint first."""
        opt = self.opt
        try:
            while self.epoch < opt.num_epochs and not self.steps_done():
                finished = self.run_epoch()
                self.end_of_epoch(finished)
        except KeyboardInterrupt:
            if self.is_main:
                folder = self.save_checkpoint()
                msg = f"interrupted: resumable checkpoint in {folder}; continue with: python train.py --resume {folder}"
                self.log.info(msg)
                print("\n" + msg)
            raise SystemExit(130)
        finally:
            if self.writer is not None:
                self.writer.close()
        return self.best

    def steps_done(self):
        return bool(self.opt.max_steps) and self.step >= self.opt.max_steps

    def run_epoch(self):
        """One pass over this process's share of the training set; returns True if it completed."""
        opt = self.opt
        for m in self.models.values():
            m.train()
        self.sampler.set_epoch(self.epoch, self.batch_in_epoch)
        bar = tqdm(self.train_loader, total=len(self.sampler), initial=self.batch_in_epoch,
                   desc=f"epoch {self.epoch + 1}/{opt.num_epochs}", disable=not self.is_main,
                   dynamic_ncols=True)
        t_last = time.time()
        for inputs in bar:
            outputs, losses = self.train_step(inputs)
            self.batch_in_epoch += 1
            now = time.time()
            speed = opt.batch_size * self.world_size / max(now - t_last, 1e-9)
            t_last = now
            if losses is not None:
                bar.set_postfix(loss=f"{float(losses['loss']):.4f}", samples_per_s=f"{speed:.2f}")
                if self.step % opt.log_frequency == 0 or self.step == 1:
                    self.log_step(inputs, outputs, losses, speed)
            if self.steps_done():
                bar.close()
                return self.batch_in_epoch == len(self.sampler)
        bar.close()
        return True

    def end_of_epoch(self, finished):
        """Validate, save the epoch's weights (and best), step the schedule, write the checkpoint."""
        self.average_batchnorm_statistics()
        score = self.last_score = self.validate()
        epoch_label = self.epoch + 1 if finished else f"{self.epoch + 1}_step{self.step}"
        if self.is_main:
            if finished and (self.epoch + 1) % self.opt.save_frequency == 0 or not finished:
                self.save_weights(os.path.join(self.log_path, "models", f"weights_{self.epoch}"
                                               if finished else f"weights_{self.epoch}_step{self.step}"))
            if score is not None and (self.best is None or score[0] < self.best[0]):
                self.best = (score[0], score[1], epoch_label)
                self.save_weights(os.path.join(self.log_path, "models", "best"),
                                  extra={"best.json": json.dumps({"epoch": epoch_label, "step": self.step,
                                                                  score[1]: score[0]})})
                self.log.info(f"new best {score[1]} {score[0]:.4f} at epoch {epoch_label}")
        if finished:
            self.epoch += 1
            self.batch_in_epoch = 0
            self.lr_scheduler.step()
        if self.is_main:
            self.save_checkpoint()

    # ------------------------------------------------------------------ one step
    def train_step(self, inputs):
        """Forward, backward and Adam on one batch. A non-finite loss or gradient skips the update
        (the decision is shared by all processes, so the replicas stay identical); a run of
        max_bad_steps of them stops training with a message, leaving the last good weights."""
        with paddle.amp.auto_cast(enable=self.amp):
            outputs, losses = self.process_batch(inputs)
        loss = losses["loss"]
        self.backward(loss)
        if self.all_finite(loss):
            self.update_weights()
            self.bad_steps = 0
            self.step += 1
            return outputs, losses
        self.optimizer.clear_grad()
        self.bad_steps += 1
        warnings.warn(f"non-finite loss or gradient at step {self.step}: update skipped "
                      f"({self.bad_steps}/{self.opt.max_bad_steps} in a row)")
        self.log.info(f"step {self.step}: non-finite loss/gradient, update skipped")
        if self.bad_steps >= self.opt.max_bad_steps:
            raise SystemExit(f"train.py: error: {self.bad_steps} consecutive non-finite losses: training stopped, the "
                             f"last good weights are in {os.path.join(self.log_path, 'checkpoint')} "
                             f"if one was written; try a lower --learning_rate or --no-amp")
        return None, None

    def backward(self, loss):
        """Gradients of the loss (scaled under --amp)."""
        (self.scaler.scale(loss) if self.amp else loss).backward()

    def update_weights(self):
        """One Adam step (through the loss scaler under --amp), then clear the gradients."""
        if self.amp:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.clear_grad()

    def all_finite(self, loss):
        """True when the loss and every gradient are finite, agreed over all processes."""
        if self.amp:  # GradScaler already skips steps with inf/nan gradients; only the loss is checked
            flags = [paddle.isfinite(loss).astype("float32")]
        else:
            grads = [p.grad for p in self.optimizer._parameter_list if p.grad is not None]
            total = paddle.add_n([g.astype("float32").sum() for g in grads]) if grads else paddle.zeros([1])
            flags = [paddle.isfinite(loss).astype("float32"), paddle.isfinite(total).astype("float32")]
        ok = paddle.stack([f.reshape([1]) for f in flags]).min()
        if self.world_size > 1:
            dist.all_reduce(ok, op=dist.ReduceOp.MIN)
        return bool(ok.item() > 0)

    def process_batch(self, inputs):
        """Depth for frame 0, poses for the temporal sources, warped images and the spec-6 losses."""
        features = self.train_models["encoder"](inputs[("color_aug", 0, 0)])
        outputs = self.train_models["depth"](features)
        if self.use_pose:
            outputs.update(self.predict_poses(inputs))
        generate_images_pred(inputs, outputs, self.frame_ids, self.opt.scales,
                             self.opt.min_depth, self.opt.max_depth, self.opt.use_depth_hints)
        losses = compute_losses(inputs, outputs, self.frame_ids, self.opt.scales,
                                self.opt.use_depth_hints, self.opt.disparity_smoothness)
        return outputs, losses

    def predict_poses(self, inputs):
        """T from frame 0 to each temporal source: the pair is always fed in temporal order
        (-1, 0) or (0, +1); the transform of a past frame is inverted (spec section 4)."""
        outputs = {}
        for f in self.opt.frame_ids[1:]:
            pair = [inputs[("color_aug", f, 0)], inputs[("color_aug", 0, 0)]]
            if f > 0:
                pair = pair[::-1]
            features = self.train_models["pose_encoder"](paddle.concat(pair, axis=1))
            axisangle, translation = self.train_models["pose"](features)
            outputs[("axisangle", 0, f)], outputs[("translation", 0, f)] = axisangle, translation
            outputs[("cam_T_cam", 0, f)] = transformation_from_parameters(
                axisangle[:, 0], translation[:, 0], invert=(f < 0))
        return outputs

    def average_batchnorm_statistics(self):
        """Each process tracks BatchNorm running statistics on its own samples (the parameters stay
        identical through the gradient all-reduce); averaging them makes the replicas equal again."""
        if self.world_size == 1:
            return
        with paddle.no_grad():
            for model in self.models.values():
                for stat in model.state_dict().values():  # Paddle keeps them as non-trainable parameters
                    if stat.stop_gradient and stat.dtype in (paddle.float32, paddle.float16):
                        dist.all_reduce(stat)
                        stat.set_value(stat / self.world_size)

    # ------------------------------------------------------------------ validation
    def validate(self):
        """(score, name) on the val files: mean abs_rel against velodyne ground truth (median scaled)
        when the dataset has it, else the mean photometric loss; None without val files."""
        if self.val_dataset is None or len(self.val_dataset) == 0 or not self.is_main:
            return None  # only rank 0 validates and saves; the others wait at the next gradient sync
        opt = self.opt
        for m in self.models.values():
            m.eval()
        loader = paddle.io.DataLoader(self.val_dataset, batch_size=opt.batch_size, shuffle=False,
                                      num_workers=opt.num_workers)
        abs_rels, losses_sum, n = [], 0.0, 0
        saved_models, self.train_models = self.train_models, self.models  # no gradient sync in eval
        try:
            with paddle.no_grad():
                for inputs in tqdm(loader, desc="validation", disable=not self.is_main, leave=False):
                    outputs, losses = self.process_batch(inputs)
                    b = inputs[("color", 0, 0)].shape[0]
                    losses_sum += float(losses["loss"]) * b
                    n += b
                    if "depth_gt" in inputs:
                        scaled_disp, _ = disp_to_depth(outputs[("disp", 0)], opt.min_depth, opt.max_depth)
                        for gt, disp in zip(inputs["depth_gt"].numpy()[:, 0], scaled_disp.numpy()[:, 0]):
                            if (gt > 0).any():
                                abs_rels.append(evaluate_depth(gt, disp, mode="median")[0][0])
        finally:
            self.train_models = saved_models
            for m in self.models.values():
                m.train()
        scores = {"val/loss": losses_sum / max(n, 1)}
        if abs_rels:
            scores["val/abs_rel"] = float(np.mean(abs_rels))
        if self.is_main:
            for k, v in scores.items():
                self.writer.add_scalar(k, v, self.step)
            self.log.info(f"epoch {self.epoch + 1} step {self.step}: " +
                          ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
        name = "val/abs_rel" if abs_rels else "val/loss"
        return scores[name], name.split("/")[1]

    # ------------------------------------------------------------------ logging
    def log_step(self, inputs, outputs, losses, speed):
        if not self.is_main:
            return
        lr = self.optimizer.get_lr()
        terms = {k: float(v) for k, v in losses.items() if isinstance(v, paddle.Tensor) and v.size == 1}
        self.log.info(f"epoch {self.epoch + 1} step {self.step} lr {lr:.2e} {speed:.2f} samples/s " +
                      " ".join(f"{k} {v:.4f}" for k, v in terms.items()))
        self.writer.add_scalar("train/lr", lr, self.step)
        self.writer.add_scalar("train/samples_per_s", speed, self.step)
        for k, v in terms.items():
            self.writer.add_scalar(f"train/{k}", v, self.step)
        for j in range(min(self.opt.num_log_images, inputs[("color", 0, 0)].shape[0])):
            image = inputs[("color", 0, 0)][j].numpy().transpose(1, 2, 0)
            self.writer.add_image(f"color_0/{j}", (np.clip(image, 0, 1) * 255).astype(np.uint8), self.step)
            self.writer.add_image(f"disp_0/{j}", image_io.colorize(outputs[("disp", 0)][j, 0].numpy()), self.step)
            mask = losses.get("automask")
            if isinstance(mask, paddle.Tensor):
                m = (mask[j].numpy().reshape(mask.shape[-2:]) * 255).astype(np.uint8)
                self.writer.add_image(f"automask_0/{j}", np.repeat(m[..., None], 3, axis=2), self.step)

    # ------------------------------------------------------------------ checkpoints
    def save_weights(self, folder, extra=None):
        """A self-contained weights folder (spec section 9), written beside `folder` then swapped in."""
        if not all(bool(paddle.isfinite(p).all()) for m in self.models.values() for p in m.parameters()):
            self.log.info(f"not saving {folder}: non-finite weights")
            return
        with atomic_folder(folder) as tmp:
            networks.save_models(tmp, self.models, to_json_dict(self.opt))
            for name, text in (extra or {}).items():
                with open(os.path.join(tmp, name), "w") as f:
                    f.write(text)

    def save_checkpoint(self):
        """Weights plus optimiser, schedule, counters and RNG states: what --resume restores."""
        folder = os.path.join(self.log_path, "checkpoint")
        state = {"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "step": self.step,
                 "best": self.best, "lr_scheduler": self.lr_scheduler.state_dict(),
                 "rng": {"python": random.getstate(), "numpy": np.random.get_state(),
                         "paddle": [s for s in paddle.get_rng_state()]},
                 "scaler": self.scaler.state_dict() if self.scaler else None}
        with atomic_folder(folder) as tmp:
            networks.save_models(tmp, self.models, to_json_dict(self.opt))
            paddle.save(self.optimizer_state(), os.path.join(tmp, "optimizer.pdopt"))
            with open(os.path.join(tmp, "trainer_state.pkl"), "wb") as f:
                pickle.dump(state, f)
        return folder

    def optimizer_state(self, state=None):
        """Get (or set, given `state`) Adam's state keyed by '<model>/<parameter path>' instead of
        Paddle's process-global parameter names, which differ between runs that build models
        in another order or number."""
        names = {p.name: f"{m}/{k}" for m, model in self.models.items() for k, p in model.named_parameters()}
        if state is None:
            return rename_prefixes(self.optimizer.state_dict(), names)
        self.optimizer.set_state_dict(rename_prefixes(state, {v: k for k, v in names.items()}))

    def load_checkpoint(self, folder):
        for name in ("optimizer.pdopt", "trainer_state.pkl", "opt.json"):
            if not os.path.isfile(os.path.join(folder, name)):
                raise SystemExit(f"train.py: error: --resume {folder}: no {name}; pass the run's checkpoint folder "
                                 f"(<log_dir>/<model_name>/checkpoint)")
        for name, model in self.models.items():
            networks.load_state(model, name, os.path.join(folder, f"{name}.pdparams"))
        self.optimizer_state(paddle.load(os.path.join(folder, "optimizer.pdopt")))
        with open(os.path.join(folder, "trainer_state.pkl"), "rb") as f:
            state = pickle.load(f)
        self.lr_scheduler.set_state_dict(state["lr_scheduler"])
        self.epoch, self.batch_in_epoch, self.step = state["epoch"], state["batch_in_epoch"], state["step"]
        self.best = state["best"]
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        paddle.set_rng_state(state["rng"]["paddle"])
        if self.scaler and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.log.info(f"resumed from {folder}: epoch {self.epoch + 1}, batch {self.batch_in_epoch}, step {self.step}")


def rename_prefixes(state, names):
    """Keys '<old><suffix>' of `state` -> '<names[old]><suffix>' (accumulators are named
    '<parameter name>_moment1_0' and so on); other keys unchanged."""
    by_length = sorted(names, key=len, reverse=True)
    out = {}
    for key, value in state.items():
        old = next((n for n in by_length if key.startswith(n + "_")), None)
        out[names[old] + key[len(old):] if old else key] = value
    return out


def split_folder(opt):
    """Folder of the split's train/val files: splits/<split> of the project, or the synthetic
    dataset's own splits folder for --split synthetic."""
    if opt.split == "synthetic":
        from datasets.synthetic import split_dir
        return split_dir(opt.data_path)
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "splits", opt.split)


class atomic_folder:
    """Context manager: yields `<folder>.tmp`; on success swaps it in for `folder` by renames
    (old -> .old, tmp -> folder, remove .old); on error removes the temporary folder."""

    def __init__(self, folder):
        self.folder = os.path.normpath(folder)
        self.tmp, self.old = self.folder + ".tmp", self.folder + ".old"

    def __enter__(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        os.makedirs(self.tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        shutil.rmtree(self.old, ignore_errors=True)
        if os.path.exists(self.folder):
            os.replace(self.folder, self.old)
        os.replace(self.tmp, self.folder)
        shutil.rmtree(self.old, ignore_errors=True)
        return False
