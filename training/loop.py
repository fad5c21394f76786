"""The training loop of train.py and train_refine.py (trainer.Trainer, train_refine.RefineTrainer):

    epochs of steps; at each epoch's end: validation, weights_<epoch>, best, a checkpoint
    a checkpoint also every --checkpoint_steps steps and every --checkpoint_minutes minutes inside
    an epoch, and on a stop (SIGINT / SIGTERM: the step under way ends, the checkpoint is written,
    the loader's workers stop, the resume command is printed, exit 128 + the signal's number)

so a kill costs at most the steps since the last checkpoint, and --resume continues at the next
batch of the epoch (sampling.py makes every sample a function of seed, epoch and index).

A subclass sets opt, is_main and world_size, calls init_loop(stop) and open_run() (seeds, run
folder, lock), sets log, sampler, loader, optimizer, lr_scheduler and scaler, and provides:
    train_step(inputs) -> result, or None for a skipped (non-finite) step
    log_progress(inputs, result, speed, bar)   after each step that was taken
    validate() -> (score, name) or None        calling check_stop() between batches
    write_weights(folder)                      a weights folder (a checkpoint adds the optimiser
                                               and write_run_options)
    weight_layers() -> {file: layer}           everything the optimiser updates, by weights file
    restore_weights(folder)                    load a checkpoint's weights
    set_train_mode()                           the networks in training mode (validate calls it after)
and may override sync_replicas (before validation), epoch_finished, write_run_options, close."""
import json
import os
import random
import shlex
import shutil
import sys
import time
from contextlib import contextmanager

import numpy as np
import paddle
import paddle.distributed as dist
from tqdm import tqdm

import networks
from training import checkpoint as ckpt
from training.run_folder import RunFolderBusy, RunLock, disk_usage, human_size
from training.stop import StopRequested, StopSignals, loader_batches
from utils.geometry.metrics import evaluate_depth
from utils.io.fileio import atomic_folder


def checkpoint_due(steps_since, seconds_since, every_steps, every_minutes):
    """Whether a checkpoint is due inside an epoch: every_steps steps or every_minutes minutes
    since the last one (0 = that rule off)."""
    return bool(every_steps and steps_since >= every_steps) or \
        bool(every_minutes and seconds_since >= 60 * every_minutes)


def epoch_bar_total(batches, step, max_steps, batch_in_epoch=0):
    """The length of an epoch's progress bar: its `batches`, or fewer when --max_steps ends the run inside it
    (`step` steps done so far, `batch_in_epoch` of them in this epoch), so the bar ends where the run does."""
    if not max_steps:
        return batches
    return min(batches, batch_in_epoch + max(0, max_steps - step))


def resume_from(script, folder):
    """The intact checkpoint to resume from (checkpoint.choose_checkpoint), printing its note; when
    there is none: one line, exit 2, before anything is written."""
    try:
        chosen, note = ckpt.choose_checkpoint(folder)
    except ckpt.ResumeError as e:
        print(f"{script}: error: {e}", file=sys.stderr)
        raise SystemExit(2)
    if note:
        print(f"note: {note}", flush=True)
    return chosen


def resumed_options(script, opt, given, overridable, options_file):
    """The options of the run being resumed: those saved in its checkpoint's `options_file`, except
    the runtime options `overridable` given on this command line (`given`: their names); --resume
    becomes the intact checkpoint to load (resume_from)."""
    folder = resume_from(script, opt.resume)
    path = os.path.join(folder, options_file)
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"{script}: error: --resume {folder}: cannot read {options_file} ({e})")
    ignored = sorted(set(given) - set(overridable))
    if ignored:
        print(f"note: --resume keeps the run's own {', '.join('--' + k for k in ignored)}")
    saved.update({k: opt[k] for k in overridable if k in given})
    saved["resume"] = folder
    opt.update(saved)
    return opt


class TrainingLoop:
    script = "train.py"
    checkpoint_files = ckpt.CHECKPOINT_FILES   # what load_checkpoint needs

    def init_loop(self, stop=None):
        """The loop's state; `stop`: the StopSignals a script entered before the set-up (else one
        of the trainer's own, entered by train())."""
        self.epoch, self.batch_in_epoch, self.step, self.bad_steps = 0, 0, 0, 0
        self.best = None  # (value, metric name, epoch label)
        self.last_weights = None   # the newest weights folder written
        self.saved = None   # the counters and best of the newest intact checkpoint
        self.saved_folder = None   # and where it is
        self.saved_step, self.saved_time = 0, time.monotonic()
        self.resumed_from = None
        self.stop = stop or StopSignals()

    def open_run(self):
        """Seed Paddle, numpy and Python with --seed (every process alike, so the replicas start
        identical) and take the run folder's lock (the main process)."""
        paddle.seed(self.opt.seed)
        np.random.seed(self.opt.seed)
        random.seed(self.opt.seed)
        self.log_path = os.path.join(self.opt.log_dir, self.opt.model_name)
        self.lock = RunLock(self.log_path)
        if self.is_main:
            try:
                self.lock.acquire()
            except RunFolderBusy as e:
                self.fail(e)

    def fail(self, message):
        raise SystemExit(f"{self.script}: error: {message}")

    @property
    def checkpoint_folder(self):
        return os.path.join(self.log_path, "checkpoint")

    def resume_command(self):
        launch = "python -m paddle.distributed.launch ... " if self.world_size > 1 else "python "
        return f"{launch}{self.script} --resume {shlex.quote(self.checkpoint_folder)}"

    # ------------------------------------------------------------------ the loop
    def train(self):
        """Epochs until num_epochs (or max_steps); a stop signal writes a checkpoint first.
        Returns the best (score, name, epoch) or None."""
        opt = self.opt
        if self.is_main:
            every = [f"{opt.checkpoint_steps} steps" if opt.get("checkpoint_steps") else "",
                     f"{opt.checkpoint_minutes:g} minutes" if opt.get("checkpoint_minutes") else ""]
            self.say(f"checkpoints {'every ' + ' and '.join(filter(None, every)) + ', ' if any(every) else ''}"
                     f"at each epoch's end and on Ctrl-C / SIGTERM; if the run stops or is killed, continue "
                     f"with: {self.resume_command()}")
        try:
            with self.stop:
                while self.epoch < opt.num_epochs and not self.steps_done():
                    self.check_stop()
                    finished = self.run_epoch()
                    self.end_of_epoch(finished)
        except StopRequested as stop:
            self.stopped(stop.signum)
        except KeyboardInterrupt:  # a second signal: no checkpoint of a step cut short
            last = f"; continue from the last checkpoint with: {self.resume_command()}" if self.saved else ""
            self.say(f"stopped at once, without a checkpoint{last}")
            raise SystemExit(130)
        finally:
            self.close()
        if self.is_main:
            print(f"weights: {os.path.join(self.log_path, 'models')} (weights_<epoch>, best); the run folder "
                  f"{self.log_path} takes {human_size(disk_usage(self.log_path))} of disk")
        return self.best

    def say(self, message):
        """A line on the terminal and in train.log."""
        self.log.info(message)
        print(message, flush=True)

    def stopped(self, signum):
        """After a stop signal: the checkpoint (main process), the resume command, exit 128 + signum."""
        if self.is_main:
            folder = self.save_checkpoint()
            self.say(f"stopped by {StopRequested(signum)}: checkpoint {folder} (epoch {self.epoch}, step "
                     f"{self.step}); continue with: {self.resume_command()}")
        raise SystemExit(128 + signum)

    def check_stop(self):
        """Raise StopRequested when a stop signal came (in any process of a distributed run)."""
        signum = self.stop.signum or 0
        if self.world_size > 1:
            flag = paddle.to_tensor([signum], dtype="int32")
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            signum = int(flag.item())
        if signum:
            raise StopRequested(signum)

    def steps_done(self):
        return bool(self.opt.max_steps) and self.step >= self.opt.max_steps

    def run_epoch(self):
        """One pass over this process's share of the training set, from batch batch_in_epoch;
        returns True if it completed."""
        opt = self.opt
        self.set_train_mode()
        self.sampler.set_epoch(self.epoch, self.batch_in_epoch)
        total = len(self.sampler)   # the epoch's batches; the bar ends earlier where --max_steps ends the run
        until = f", --max_steps {opt.max_steps}" if opt.max_steps else ""
        bar = tqdm(total=epoch_bar_total(total, self.step, opt.max_steps, self.batch_in_epoch), initial=self.batch_in_epoch,
                   desc=f"epoch {self.epoch} (of 0-{opt.num_epochs - 1}{until})",
                   disable=not self.is_main, dynamic_ncols=True)
        t_last = time.time()
        try:
            with loader_batches(self.loader) as batches:
                for inputs in batches:
                    self.check_stop()
                    result = self.train_step(inputs)
                    self.batch_in_epoch += 1
                    bar.update()
                    now = time.time()
                    speed = opt.batch_size * self.world_size / max(now - t_last, 1e-9)
                    t_last = now
                    if result is not None:
                        self.log_progress(inputs, result, speed, bar)
                    if self.steps_done():
                        return self.batch_in_epoch == total
                    # the epoch's end writes its own checkpoint
                    if self.is_main and self.batch_in_epoch < total and checkpoint_due(
                            self.step - self.saved_step, time.monotonic() - self.saved_time,
                            opt.get("checkpoint_steps", 0), opt.get("checkpoint_minutes", 0)):
                        self.save_checkpoint()
                    self.check_stop()
        finally:
            bar.close()
        return True

    def end_of_epoch(self, finished):
        """Validate, save the epoch's weights (and best), end the epoch, write the checkpoint."""
        self.sync_replicas()
        state = ckpt.rng_state()
        try:   # validation leaves the random states as it found them, also when a stop cuts it short
            score = self.validate()
        finally:
            ckpt.set_rng_state(state)
        label = self.epoch if finished else f"{self.epoch}_step{self.step}"
        if self.is_main:
            if not finished or (self.epoch + 1) % self.opt.get("save_frequency", 1) == 0:
                self.save_weights(os.path.join(self.log_path, "models", f"weights_{label}"))
            # a NaN score (diverged validation) never becomes the best: nothing would replace it
            if score is not None and np.isfinite(score[0]) and (self.best is None or score[0] < self.best[0]):
                self.best = (score[0], score[1], label)
                best_json = json.dumps({"epoch": label, "step": self.step, score[1]: score[0]})
                self.save_weights(os.path.join(self.log_path, "models", "best"), extra={"best.json": best_json})
                self.log.info(f"new best {score[1]} {score[0]:.4f} at epoch {label}")
        if finished:
            self.epoch += 1
            self.batch_in_epoch = 0
            self.epoch_finished()
        if self.is_main:
            self.save_checkpoint()

    def abs_rels(self, depth_gt, disp, mode):
        """abs_rel of each image with ground truth of a batch (numpy B x 1 x h x w: ground truth,
        disparity), under utils.geometry.metrics' rules: KITTI's crop and 80 m cap, except on one's
        own camera (--dataset folder) where every pixel with depth counts."""
        rules = dict(garg_crop=False, cap_gt=False) if self.opt.get("dataset") == "folder" else {}
        return [evaluate_depth(gt, d, mode=mode, **rules)[0][0]
                for gt, d in zip(depth_gt[:, 0], disp[:, 0]) if (gt > 0).any()]

    # hooks with a default
    def sync_replicas(self):
        pass

    def epoch_finished(self):
        pass

    def write_run_options(self, folder):
        """The run's options in a checkpoint, when write_weights has not written them (opt.json)."""

    def close(self):
        """Release the run folder (also done by train() on its way out)."""
        for handler in list(self.log.handlers if getattr(self, "log", None) else ()):
            handler.close()
            self.log.removeHandler(handler)
        self.lock.release()

    # ------------------------------------------------------------------ saving
    @contextmanager
    def writing(self, folder, need):
        """A write error (full disk, quota, file-size limit) while saving `folder` ends the run with
        one line: the folder, the bytes needed and free, and how to continue."""
        try:
            yield
        except OSError as e:
            root = os.path.dirname(os.path.abspath(folder))
            while not os.path.isdir(root):
                root = os.path.dirname(root)
            free = shutil.disk_usage(root).free
            after = (f"the checkpoint {self.saved_folder} (step {self.saved[2]}) is intact: make room and "
                     f"continue with: {self.resume_command()}") if self.saved else "no checkpoint was written yet"
            self.fail(f"could not write {folder} ({e.strerror or e}): it needs about {human_size(need)}, "
                      f"{human_size(free)} free on its disk; {after}")

    def weights_finite(self):
        return all(bool(paddle.isfinite(p).all()) for m in self.weight_layers().values() for p in m.parameters())

    def save_weights(self, folder, extra=None):
        """A self-contained weights folder, swapped in whole; `extra`: file name -> text."""
        if not self.weights_finite():
            self.log.info(f"not saving {folder}: non-finite weights")
            return None
        with self.writing(folder, ckpt.state_bytes(self.weight_layers())), atomic_folder(folder) as tmp:
            self.write_weights(tmp)
            for name, text in (extra or {}).items():
                with open(os.path.join(tmp, name), "w") as f:
                    f.write(text)
        self.log.info(f"weights: {folder}")
        self.last_weights = folder
        return folder

    def save_checkpoint(self):
        """Weights, optimiser, schedule, counters and RNG states (what --resume restores), rotated
        in as checkpoint/ (the one before kept as checkpoint_previous/). Skipped when the newest
        checkpoint already holds this state."""
        key = (self.epoch, self.batch_in_epoch, self.step, self.best)
        folder = self.checkpoint_folder
        if key == self.saved and self.resumed_from in (None, os.path.abspath(folder)):
            return folder
        state = ckpt.trainer_state(self.epoch, self.batch_in_epoch, self.step, self.best, self.lr_scheduler,
                                   self.scaler)

        def write(tmp):
            self.write_weights(tmp)
            ckpt.write_state(tmp, self.optimizer, self.weight_layers(), state)
            self.write_run_options(tmp)

        info = {"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "step": self.step}
        with self.writing(folder, ckpt.state_bytes(self.weight_layers(), self.optimizer)):
            ckpt.save_checkpoint(folder, write, info,
                                 current_damaged=self.resumed_from == os.path.abspath(folder) + ckpt.PREVIOUS)
        self.resumed_from = None
        self.saved, self.saved_folder, self.saved_step, self.saved_time = key, folder, self.step, time.monotonic()
        self.log.info(f"checkpoint: epoch {self.epoch} batch {self.batch_in_epoch} step {self.step}")
        return folder

    def load_checkpoint(self, folder):
        """Restore a checkpoint (chosen by checkpoint.choose_checkpoint) into the set-up run."""
        try:
            ckpt.missing_file(folder, self.checkpoint_files)
            self.restore_weights(folder)
        except (ckpt.ResumeError, networks.CheckpointError) as e:
            self.fail(e)
        state = ckpt.restore_state(folder, self.optimizer, self.weight_layers(), self.lr_scheduler, self.scaler)
        self.epoch, self.batch_in_epoch, self.step = state["epoch"], state["batch_in_epoch"], state["step"]
        self.best = state["best"]
        self.saved, self.saved_step = (self.epoch, self.batch_in_epoch, self.step, self.best), self.step
        self.saved_folder = folder
        self.resumed_from = os.path.abspath(folder)   # compared with the checkpoint folders of this run
        self.log.info(f"resumed from {folder}: epoch {self.epoch}, batch {self.batch_in_epoch}, step {self.step}")
