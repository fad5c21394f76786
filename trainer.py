"""Self-supervised training of MLDA-Net (Monodepth2 + Depth Hints framework, docs/MLDA_NET.md §5-6).

    trainer = Trainer(opt)        # opt: options.parse("train", ...)
    trainer.train()

Reads top to bottom: set-up (runtime, run folder, networks, optimiser, data), one step (forward,
loss, backward, optimiser), validation, logging, weights. The loop (epochs, checkpoints, stops)
is training.TrainingLoop, shared with train_refine.py; sampling and the checkpoint format live in
training/ too, the datasets in datasets/, the device set-up in utils/system.

Layout of a run, <log_dir>/<model_name>/:
    models/weights_<epoch>/   a weights folder per epoch (encoder/depth/pose_encoder/pose.pdparams + opt.json)
    models/best/              the weights folder of the best validation score so far (+ best.json)
    checkpoint/               everything --resume needs (weights, optimiser, schedule, counters, RNG)
    checkpoint_previous/      the checkpoint before it (--resume falls back to it if checkpoint/ is damaged)
    train.log, vdl/           plain log and VisualDL logs (`visualdl --logdir <log_dir>/<model_name>/vdl`)
    train.lock                the process of the train.py using the folder (a second one is refused)
Epochs count from 0 everywhere, as Monodepth2's: weights_0 holds the first epoch's weights, and the
progress bar, the log and best.json name that epoch 0; a run stopped inside epoch e by --max_steps
saves weights_<e>_step<n>. Folders are swapped in whole (utils.io.fileio.atomic_folder), so a crash
never leaves a half-written folder where a good one was.
"""
import os
import warnings

import numpy as np
import paddle
import paddle.distributed as dist
from tqdm import tqdm

import datasets
import networks
import training
from losses import compute_losses, generate_images_pred, sparse_depth_loss, to_gt_size, velocity_loss
from networks.layers import disp_to_depth, transformation_from_parameters
from options import to_json_dict
from training.stop import loader_batches, worker_init
from utils.cameras.kitti_layout import NATIVE_SIZE, STEREO_SCALE_FACTOR
from utils.geometry import provenance
from utils.io import image_io
from utils.system import RuntimeSetupError, setup_runtime

# Options a resumed run may change; everything else comes from the checkpoint's opt.json.
RESUME_OVERRIDABLE = ("num_epochs", "max_steps", "num_workers", "num_threads", "device", "log_frequency",
                      "save_frequency", "num_log_images", "val_max_images", "max_bad_steps", "resume",
                      "checkpoint_steps", "checkpoint_minutes")


def fail(message):
    raise SystemExit(f"train.py: error: {message}")


class Trainer(training.TrainingLoop):
    def __init__(self, opt, train_dataset=None, val_dataset=None, stop=None):
        """Datasets given by the caller (tests, benchmarks) replace the split's; val may then be None.
        stop: the training.StopSignals train.py entered before the set-up (a SIGTERM during it then
        stops the run at its first step)."""
        self.opt = opt
        self.init_loop(stop)
        self.world_size = dist.get_world_size()
        if self.world_size > 1:
            dist.init_parallel_env()
        self.rank = dist.get_rank()
        self.is_main = self.rank == 0
        try:
            self.device = setup_runtime(opt.device, opt.num_threads, self.world_size)
        except RuntimeSetupError as e:
            fail(e)
        self.amp = bool(opt.amp and self.device != "cpu")
        if opt.amp and not self.amp and self.is_main:
            print("note: --amp needs a GPU; training in float32 on the CPU")
        self.open_run()
        try:
            self.setup(train_dataset, val_dataset)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ set-up
    def setup(self, train_dataset, val_dataset):
        opt = self.opt
        self.log = self.make_log()

        # Frames: 0 is the target; -1/+1 temporal sources (need the pose network), "s" the stereo partner.
        self.frame_ids = list(opt.frame_ids) + (["s"] if opt.use_stereo else [])
        self.use_pose = len(opt.frame_ids) > 1
        # {"depth": DepthNet, "pose": PoseNet}; stored as the weights files encoder, depth, pose_encoder, pose
        # a resumed run takes every value from its checkpoint (load_checkpoint): nothing drawn before
        self.models = networks.build_nets(num_layers=opt.num_layers, scales=opt.scales, use_pose=self.use_pose,
                                          batch_coupled_filter=opt.batch_coupled_filter, initialise=not opt.resume)
        self.init_weights()
        if opt.get("qat"):  # fake int8 on the depth network's convolutions; its state dict stays the float one
            from training.qat import quantize_for_training
            self.log.info(quantize_for_training(self.models["depth"]))
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

        if train_dataset is None:
            train_dataset, val_dataset = self.make_datasets()
        self.train_dataset, self.val_dataset = train_dataset, val_dataset
        # opt.json says which camera the weights learnt and whether their depth is in metres: stereo with
        # a real baseline (--dataset folder) is; KITTI's 0.1-unit stereo needs its 5.4, mono a median scale
        # (written for --dataset folder only: KITTI's weights keep their use_stereo rule)
        if getattr(train_dataset, "camera", None) is not None:
            opt.camera = train_dataset.camera
            opt.metric = bool(opt.use_stereo and train_dataset.metric_stereo)
            if opt.metric and not (opt.load_weights_folder or opt.resume):
                # a baseline in metres moves the warp's initial shift: start from KITTI's (stereo_start_logit)
                camera = train_dataset.camera
                logit = networks.model.stereo_start_logit(camera["fx"] / camera["width"], camera["baseline"],
                                                          opt.min_depth, opt.max_depth)
                networks.model.set_disp_logit(self.models["depth"], logit)
                self.log.info(f"disparity heads start at logit {logit:.2f} (fx / W {camera['fx'] / camera['width']:.3f}, "
                              f"baseline {camera['baseline']} m)")
        self.setup_metric_supervision(train_dataset)
        self.sampler = training.ResumableBatchSampler(training.SeededDataset(train_dataset, opt.seed),
                                                      opt.batch_size, shuffle=True, seed=opt.seed)
        if len(self.sampler) == 0:
            fail(f"{len(train_dataset)} training samples make no batch of {opt.batch_size} per process: "
                 f"lower --batch_size")
        train_dataset.resize_on_device = opt.get("resize_on_device", False)
        if train_dataset.resize_on_device and paddle.get_device() == "cpu":
            self.log.info("--resize_on_device on the CPU: the resizes run in the main process, slower than in "
                          "the workers (meant for GPU training)")
        self.loader = paddle.io.DataLoader(self.sampler.dataset, batch_sampler=self.sampler,
                                           num_workers=opt.num_workers, worker_init_fn=worker_init,
                                           collate_fn=datasets.collate if train_dataset.resize_on_device else None)
        if opt.resume:
            self.load_checkpoint(opt.resume)
        self.writer = self.make_writer()
        self.log.info(f"training {self.frame_ids} at {opt.height}x{opt.width}, batch {opt.batch_size} x "
                      f"{self.world_size} process(es) on {self.device}; {len(train_dataset)} train / "
                      f"{len(val_dataset) if val_dataset is not None else 0} val samples; "
                      f"run folder {self.log_path}")

    def make_log(self):
        return training.run_log(self.log_path, f"mlda.train.{id(self)}", write=self.is_main)

    def make_writer(self):
        if not self.is_main:
            return None
        from visualdl import LogWriter
        return LogWriter(logdir=os.path.join(self.log_path, "vdl"))

    def init_weights(self):
        """Backbones from ImageNet (--weights_init pretrained|PATH) or random; then, for fine-tuning,
        the networks of --models_to_load from --load_weights_folder (either weights layout)."""
        opt = self.opt
        if opt.weights_init != "scratch" and not opt.resume and not opt.load_weights_folder:
            state = self.imagenet_state() if opt.weights_init == "pretrained" else paddle.load(opt.weights_init)
            for net in self.models.values():
                net.encoder.load_backbone_state(state)
        if opt.load_weights_folder:
            try:
                names = networks.load_into(self.models, opt.load_weights_folder, opt.models_to_load)
            except networks.CheckpointError as e:
                fail(f"--load_weights_folder: {e}")
            self.log.info(f"fine-tuning from {opt.load_weights_folder}: {', '.join(names)}")

    def imagenet_state(self):
        from paddle.vision.models import resnet
        n = self.opt.num_layers
        try:
            return getattr(resnet, f"resnet{n}")(pretrained=True).state_dict()
        except Exception as e:  # offline, proxy, checksum ...
            url = resnet.model_urls[f"resnet{n}"][0]
            fail(f"could not get ImageNet ResNet-{n} weights ({type(e).__name__}): download {url} by hand and "
                 f"pass --weights_init /path/to/{os.path.basename(url)}, or train from random weights with "
                 f"--weights_init scratch")

    def make_datasets(self):
        """The split's train and val datasets (val None without val files, capped at --val_max_images)."""
        opt = self.opt
        if not os.path.isdir(opt.data_path):
            fail(f"--data_path {opt.data_path}: no such folder (KITTI raw or, with --dataset folder, one's own "
                 f"sequences, see docs/own_camera.md; or try --dataset synthetic)")
        try:
            return datasets.train_val_datasets(
                opt.data_path, opt.split, opt.height, opt.width, self.frame_ids, img_ext=".png" if opt.png else ".jpg",
                use_depth_hints=opt.use_depth_hints, depth_hint_path=opt.depth_hint_path,
                skip_missing=opt.get("skip_missing", False), val_max_images=opt.val_max_images,
                depth_gt_size=NATIVE_SIZE if opt.dataset == "kitti" else None, dataset=opt.dataset,
                lidar_beams=opt.get("lidar_beams", 64), load_travel=opt.get("velocity_weight", 0) > 0)
        except datasets.DataError as e:
            fail(f"{e}{' (compute hints with precompute_depth_hints.py)' if opt.use_depth_hints else ''}")

    def setup_metric_supervision(self, train_dataset):
        """Sparse depth / velocity supervision (metric depth): check the data has what they need, fix the
        units, record "metric" in opt.json. Both compare with metres; under KITTI's 0.1-unit stereo the
        network's depth is metres / 5.4 (STEREO_SCALE_FACTOR), so the prediction is multiplied by 5.4
        before the comparison and opt.json keeps the use_stereo rule (x5.4) instead of "metric"."""
        opt = self.opt
        self.sparse_weight = opt.get("sparse_depth_weight", 0.0)
        self.velocity_weight = opt.get("velocity_weight", 0.0)
        real_stereo = getattr(train_dataset, "metric_stereo", False)
        self.metres_per_unit = STEREO_SCALE_FACTOR if opt.use_stereo and not real_stereo else 1.0
        if self.sparse_weight and not train_dataset.load_depth:
            fail(f"--sparse_depth_weight needs ground-truth depth and {opt.data_path} has none: KITTI raw needs the "
                 f"drives' velodyne_points and calibration files, --dataset folder the <sequence>/depth/ maps")
        if self.velocity_weight and not (train_dataset.load_travel and self.use_pose):
            fail("--velocity_weight needs KITTI's oxts records (<drive>/oxts/) and temporal frames "
                 "(--frame_ids 0 -1 1)")
        if (self.sparse_weight or self.velocity_weight) and self.metres_per_unit == 1.0:
            opt.metric = True

    def close(self):
        """Release the run folder (also done by train() on its way out)."""
        if getattr(self, "writer", None) is not None:
            self.writer.close()
            self.writer = None
        super().close()

    # ------------------------------------------------------------------ the loop's hooks
    def set_train_mode(self):
        for m in self.models.values():
            m.train()

    def sync_replicas(self):
        self.average_batchnorm_statistics()

    def epoch_finished(self):
        self.lr_scheduler.step()  # the schedule counts epochs

    def weight_layers(self):
        return networks.weight_files(self.models)

    def write_weights(self, folder):
        """A self-contained weights folder (docs/MLDA_NET.md §9) with the run's opt.json and its training data
        record (utils/geometry/provenance.py)."""
        record = provenance.training_record(self.opt, self.step, self.epoch)   # what the weights learned from
        networks.save_weights_folder(folder, self.models, {**to_json_dict(self.opt), provenance.RECORD_KEY: record})

    def restore_weights(self, folder):
        networks.load_into(self.models, folder)

    def log_progress(self, inputs, result, speed, bar):
        outputs, losses = result
        bar.set_postfix(loss=f"{float(losses['loss']):.4f}", samples_per_s=f"{speed:.2f}")
        if self.step % self.opt.log_frequency == 0 or self.step == 1:
            self.log_step(inputs, outputs, losses, speed)

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
            fail(f"{self.bad_steps} consecutive non-finite losses: training stopped, the last good weights are "
                 f"in {os.path.join(self.log_path, 'checkpoint')} if one was written; try a lower "
                 f"--learning_rate or --no-amp")
        return None

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
        """Depth for frame 0, poses for the temporal sources, warped images and the losses (docs/MLDA_NET.md §6)."""
        datasets.batch_to_float(inputs)  # the loader sends uint8 images: float32 here, on the device
        outputs = self.train_models["depth"](inputs[("color_aug", 0, 0)])
        if self.use_pose:
            outputs.update(self.predict_poses(inputs))
        generate_images_pred(inputs, outputs, self.frame_ids, self.opt.scales,
                             self.opt.min_depth, self.opt.max_depth, self.opt.use_depth_hints)
        losses = compute_losses(inputs, outputs, self.frame_ids, self.opt.scales,
                                self.opt.use_depth_hints, self.opt.disparity_smoothness)
        self.add_metric_losses(inputs, outputs, losses)
        return outputs, losses

    def add_metric_losses(self, inputs, outputs, losses):
        """losses["loss"] += w_sparse x sparse_depth + w_velocity x velocity (when on and the batch has
        the keys), both in metres (setup_metric_supervision):
        sparse_depth: losses.sparse_depth_loss at scale 0 on the pixels with depth_gt > 0, the
        prediction being disp_to_depth of the sigmoid disparity bilinearly resized to depth_gt's size
        (the evaluation's resize; the sparse ground truth itself is never resampled);
        velocity: sum over the temporal source frames f of losses.velocity_loss(t(0 -> f), travel f)
        (a sum, as PackNet-SfM's)."""
        opt = self.opt
        if self.sparse_weight and "depth_gt" in inputs:
            gt = inputs["depth_gt"]
            _, depth = disp_to_depth(to_gt_size(outputs[("disp", 0)], gt), opt.min_depth, opt.max_depth)
            losses["sparse_depth"] = sparse_depth_loss(depth * self.metres_per_unit, gt, gt > 0,
                                                       opt.sparse_depth_loss, opt.silog_lambda)
            losses["loss"] = losses["loss"] + self.sparse_weight * losses["sparse_depth"]
        frames = [f for f in opt.frame_ids[1:] if ("travel", f) in inputs and ("translation", 0, f) in outputs]
        if self.velocity_weight and frames:
            losses["velocity"] = paddle.add_n([
                velocity_loss(outputs[("translation", 0, f)][:, 0] * self.metres_per_unit, inputs[("travel", f)])
                for f in frames])
            losses["loss"] = losses["loss"] + self.velocity_weight * losses["velocity"]

    def predict_poses(self, inputs):
        """T from frame 0 to each temporal source: the pair is always fed in temporal order
        (-1, 0) or (0, +1); the transform of a past frame is inverted (docs/MLDA_NET.md §4)."""
        outputs = {}
        for f in self.opt.frame_ids[1:]:
            pair = [inputs[("color_aug", f, 0)], inputs[("color_aug", 0, 0)]]
            if f > 0:
                pair = pair[::-1]
            axisangle, translation = self.train_models["pose"](*pair)
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
        """(score, name) on the val files: mean abs_rel against the ground-truth depth (unscaled for
        metric weights, else median scaled) when the dataset has it, else the mean photometric loss;
        None without val files."""
        if self.val_dataset is None or len(self.val_dataset) == 0 or not self.is_main:
            return None  # only rank 0 validates and saves; the others wait at the next gradient sync
        opt = self.opt
        for m in self.models.values():
            m.eval()
        loader = paddle.io.DataLoader(self.val_dataset, batch_size=opt.batch_size, shuffle=False,
                                      num_workers=opt.num_workers, worker_init_fn=worker_init)
        abs_rels, losses_sum, n = [], 0.0, 0
        # metric weights are judged in metres, as test.py evaluates them; the others after median scaling
        mode = "none" if opt.get("metric") else "median"
        saved_models, self.train_models = self.train_models, self.models  # no gradient sync in eval
        try:
            with paddle.no_grad(), loader_batches(loader) as batches:
                for inputs in tqdm(batches, total=len(loader), desc="validation", leave=False):
                    if self.world_size == 1:  # only rank 0 validates: a distributed run stops between steps
                        self.check_stop()
                    outputs, losses = self.process_batch(inputs)
                    b = inputs[("color", 0, 0)].shape[0]
                    losses_sum += float(losses["loss"]) * b
                    n += b
                    if "depth_gt" in inputs:
                        scaled_disp, _ = disp_to_depth(outputs[("disp", 0)], opt.min_depth, opt.max_depth)
                        abs_rels += self.abs_rels(inputs["depth_gt"].numpy(), scaled_disp.numpy(), mode)
        finally:
            self.train_models = saved_models
            for m in self.models.values():
                m.train()
        scores = {"val/loss": losses_sum / max(n, 1)}
        if abs_rels:
            scores["val/abs_rel"] = float(np.mean(abs_rels))
        for k, v in scores.items():
            self.writer.add_scalar(k, v, self.step)
        self.log.info(f"epoch {self.epoch} step {self.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
        name = "val/abs_rel" if abs_rels else "val/loss"
        return scores[name], name.split("/")[1]

    # ------------------------------------------------------------------ logging
    def log_step(self, inputs, outputs, losses, speed):
        if not self.is_main:
            return
        lr = self.optimizer.get_lr()
        terms = {k: float(v) for k, v in losses.items() if isinstance(v, paddle.Tensor) and v.size == 1}
        self.log.info(f"epoch {self.epoch} step {self.step} lr {lr:.2e} {speed:.2f} samples/s " +
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
