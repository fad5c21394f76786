"""Training that survives being killed (training/loop.py, training/stop.py, training/checkpoint.py):
real train.py and train_refine.py processes on the synthetic KITTI fixture at 64 x 64 (4 training
lines, batch 2: 2 steps an epoch, 2 epochs, a checkpoint after every step), killed with SIGKILL at
moments drawn by a seeded generator (mid-step, mid-validation, while a checkpoint is written),
given damaged checkpoints, a file-size limit and a stale lock, stopped with SIGTERM, and each time
resumed with the command the run printed: the final weights and Adam state equal those of a run
never interrupted, to the bit. Each run uses one thread: a run's bits depend on its thread count
(two runs with the same count agree to the bit, 1 and 2 threads do not), and --resume keeps it."""
import json
import os
import pickle
import random
import signal
import subprocess
import time

import numpy as np
import paddle
import pytest

import datasets
import synthetic
from tests.support.processes import Run
from tests.synthetic_fixture import synthetic_kitti  # noqa: F401
from training import StopSignals, checkpoint_due
from training.loop import epoch_bar_total
from utils.io.fileio import manifest_problem, read_manifest

FILE_SIZE_LIMIT = 4 << 20       # bytes: train.log and batches fit, no weights file does


@pytest.fixture(scope="module")
def split(synthetic_kitti, tmp_path_factory):  # noqa: F811
    root = synthetic_kitti["data_path"]
    folder = tmp_path_factory.mktemp("split")
    for name, count in (("train_files.txt", 4), ("val_files.txt", 2)):
        lines = datasets.read_split(os.path.join(synthetic.split_dir(root), name))[:count]
        (folder / name).write_text("\n".join(lines) + "\n")
    return root, str(folder)


def train_argv(split, log_dir, name, *extra):
    root, folder = split
    return ["train.py", "--dataset", "synthetic", "--data_path", root, "--split", folder, "--log_dir", str(log_dir),
            "--model_name", name, "--height", "64", "--width", "64", "--batch_size", "2", "--frame_ids", "0",
            "--no-use_depth_hints", "--num_epochs", "2", "--save_frequency", "100", "--log_frequency", "1",
            "--checkpoint_steps", "1", "--num_threads", "1", "--num_workers", "0", "--seed", "0", *extra]


def finished(run):
    code = run.finish()
    assert code == 0, run.text[-4000:]
    return run


@pytest.fixture(scope="module")
def reference(split, tmp_path_factory):
    """The uninterrupted run (no loader workers, checkpoints at the epochs' ends only): its run folder."""
    log_dir = tmp_path_factory.mktemp("reference")
    finished(Run(train_argv(split, log_dir, "run", "--checkpoint_steps", "0")))
    return log_dir / "run"


def damage(folder, kind, name="trainer_state.pkl"):
    """Damage one file of a checkpoint: 'deleted', 'truncated' or 'changed' (a byte flipped: same size)."""
    path = os.path.join(folder, name)
    if kind == "deleted":
        os.remove(path)
        return
    data = bytearray(open(path, "rb").read())
    if kind == "truncated":
        data = data[:len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    with open(path, "wb") as f:
        f.write(data)


def phase_seconds(run, ckpt):
    """How long epoch 0's phases take in a fresh run with a checkpoint every step (seen from here,
    polling): the first checkpoint's write, step 2, and what follows it up to the validation score
    (the loader's end and validation). The kill moments are drawn as fractions of these, so they
    fall inside their phase on a fast machine as on a slow one."""
    run.wait_for(lambda: os.path.isdir(ckpt + ".tmp"), "the first checkpoint.tmp")
    t0 = time.monotonic()
    run.wait_log("checkpoint: epoch 0 batch 1 step 1")
    t1 = time.monotonic()
    run.wait_log("epoch 0 step 2 lr")
    t2 = time.monotonic()
    run.wait_log("epoch 0 step 2: val/")
    return dict(save=t1 - t0, step=t2 - t1, validation=time.monotonic() - t2)


def kill_mid_step_3(run, seconds, moments):
    """SIGKILL while step 3 (epoch 1's first) runs: a drawn fraction of a step after c2."""
    run.wait_log("checkpoint: epoch 1 batch 0 step 2")
    time.sleep(moments.uniform(0.1, 0.5) * seconds["step"])
    return run.kill()


def sleep_process():
    return subprocess.Popen(["sleep", "600"])


@pytest.fixture(scope="module")
def chain(split, tmp_path_factory):
    """One run (one loader worker) interrupted six times over, each time resumed with the command
    it printed; what each interruption showed. Checkpoints c<step>; an epoch is 2 steps.
    1. SIGKILL while step 3 runs (after c2), epoch 0's phases timed on the way
    2. c2 lost opt.json: resume falls back to c1; SIGKILL while epoch 1 validates (after step 4)
    3. SIGKILL while c4 is written
    4. c3 truncated, the lock held by a live process under the killed run's pid, a 4 MB file-size
       limit: falls back to c2, takes the lock, fails writing c3 with one line
    5. c3 changed (a byte flipped): falls back to c2; SIGTERM after c3
    6. resumed to the end."""
    log_dir = tmp_path_factory.mktemp("chain")
    folder = log_dir / "run"
    ckpt, previous = str(folder / "checkpoint"), str(folder / "checkpoint_previous")
    log = str(folder / "train.log")
    moments = random.Random(2024)   # the kill moments: delays after the event that opens each phase
    facts = {}

    run = Run(train_argv(split, log_dir, "run", "--num_workers", "1"), log)
    seconds = phase_seconds(run, ckpt)
    facts["mid_step"] = dict(code=kill_mid_step_3(run, seconds, moments), log=run.log_text(),
                             survivors=run.survivors(),
                             step=read_manifest(ckpt)["step"], workers=len(run.children))
    command = run.resume_command()

    damage(ckpt, "deleted", "opt.json")
    run = Run(command, log)
    run.wait_log("epoch 1 step 4 lr")   # then epoch 1's validation: its bar is the run's second
    run.wait_for(lambda: run.text.count("validation:   0%") >= 2, "epoch 1's validation")
    time.sleep(moments.uniform(0.0, 0.5) * seconds["validation"])
    facts["mid_validation"] = dict(code=run.kill(), log=run.log_text(), text=run.text, survivors=run.survivors(),
                                   step=read_manifest(ckpt)["step"], workers=len(run.children))

    assert not os.path.exists(ckpt + ".tmp")
    run = Run(command, log)
    run.wait_for(lambda: os.path.isdir(ckpt + ".tmp"), "checkpoint.tmp")
    time.sleep(moments.uniform(0.0, 0.5) * seconds["save"])
    facts["mid_save"] = dict(code=run.kill(), survivors=run.survivors(), tmp_left=os.path.isdir(ckpt + ".tmp"),
                             step=read_manifest(ckpt)["step"])

    state = open(os.path.join(ckpt, "trainer_state.pkl"), "rb").read()
    damage(ckpt, "truncated")
    killed_pid, killed_identity = open(folder / "train.lock").read().splitlines()[:2]
    sleeper = sleep_process()
    try:
        (folder / "train.lock").write_text(f"{sleeper.pid}\n{killed_identity}\n")
        run = Run(command, log, file_size_limit=FILE_SIZE_LIMIT)
        code = run.finish()
        facts["full"] = dict(code=code, text=run.text, sleeper_alive=sleeper.poll() is None,
                             lock_left=os.path.exists(folder / "train.lock"), tmp_left=os.path.isdir(ckpt + ".tmp"),
                             previous_problem=manifest_problem(previous), previous_step=read_manifest(previous)["step"],
                             killed_pid=int(killed_pid), sleeper_pid=sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()

    with open(os.path.join(ckpt, "trainer_state.pkl"), "wb") as f:
        f.write(state)
    damage(ckpt, "changed")
    run = Run(run.resume_command(), log)
    run.wait_log("checkpoint: epoch 1 batch 1 step 3")
    time.sleep(moments.uniform(0.0, 0.5) * seconds["step"])
    facts["sigterm"] = dict(code=run.kill(signal.SIGTERM), text=run.text, survivors=run.survivors(),
                            workers=len(run.children), manifest=read_manifest(ckpt),
                            damaged_kept=os.path.isdir(ckpt + "_damaged"))

    finished(Run(run.resume_command(), log))
    return dict(facts, folder=folder)


@pytest.mark.slow
def test_sigkill_landed_mid_step_mid_validation_and_mid_save(chain):
    """Each SIGKILL hit its phase (the run's log and folder show the phase unfinished) and left no
    loader worker running."""
    step, val, save = chain["mid_step"], chain["mid_validation"], chain["mid_save"]
    assert step["code"] == val["code"] == save["code"] == -signal.SIGKILL
    assert "epoch 1 step 3 lr" not in step["log"] and step["step"] == 2
    assert "epoch 1 step 4 lr" in val["log"] and "epoch 1 step 4: val/" not in val["log"] and val["step"] == 3
    assert save["tmp_left"] and save["step"] == 3   # c4 half-written beside an untouched c3
    assert step["workers"] >= 1 and val["workers"] >= 1   # so that no survivor means something
    assert step["survivors"] == val["survivors"] == save["survivors"] == []


@pytest.mark.slow
def test_damaged_checkpoint_falls_back_to_the_previous_and_says_so(chain):
    val, full, term = chain["mid_validation"], chain["full"], chain["sigterm"]
    assert "checkpoint: opt.json is missing; resuming from" in val["text"]
    assert "checkpoint_previous (step 1): step 2 will be redone" in val["text"]
    assert "checkpoint: trainer_state.pkl has " in full["text"] and "(step 2): step 3 will be redone" in full["text"]
    assert "checkpoint: trainer_state.pkl does not match its checksum; resuming from" in term["text"]
    # the damaged checkpoint went aside at the first save after the fallback, the one resumed from stayed
    assert term["damaged_kept"]


@pytest.mark.slow
def test_write_error_is_one_line_and_the_previous_checkpoint_resumes(chain):
    full = chain["full"]
    assert full["code"] == 1 and "Traceback" not in full["text"]
    last = full["text"].strip().splitlines()[-1]
    folder = str(chain["folder"] / "checkpoint")
    assert last.startswith(f"train.py: error: could not write {folder} (File too large): it needs about ")
    assert f" free on its disk; the checkpoint {folder}_previous (step 2) is intact: make room and continue with: " \
           f"python train.py --resume {folder}" in last
    assert not full["tmp_left"] and full["previous_problem"] is None and full["previous_step"] == 2


@pytest.mark.slow
def test_lock_of_a_reused_pid_is_taken_over(chain):
    """The lock named the killed run's process identity under the pid of a live `sleep`: taken over
    (the run trained and failed later, at the write), released at its exit, the sleeper untouched."""
    full = chain["full"]
    assert "in use by a running train.py" not in full["text"] and "could not write" in full["text"]
    assert full["sleeper_alive"] and not full["lock_left"] and full["killed_pid"] != full["sleeper_pid"]


@pytest.mark.slow
def test_sigterm_writes_a_checkpoint_and_leaves_no_process(chain):
    term = chain["sigterm"]
    assert term["code"] == 128 + signal.SIGTERM
    assert "FatalError" not in term["text"] and "Traceback" not in term["text"]
    folder = str(chain["folder"] / "checkpoint")
    assert f"stopped by SIGTERM: checkpoint {folder} (epoch 1, step " in term["text"]
    assert f"continue with: python train.py --resume {folder}" in term["text"]
    assert term["manifest"]["epoch"] == 1 and term["manifest"]["step"] in (3, 4)
    assert term["workers"] >= 1 and term["survivors"] == []


def same_tensors(a, b):
    assert a.keys() == b.keys()
    for key, value in a.items():
        if isinstance(value, paddle.Tensor):
            assert np.array_equal(value.numpy(), b[key].numpy()), key
        else:
            assert value == b[key], key


def assert_same_end(run_a, run_b, files):
    a, b = (os.path.join(r, "checkpoint") for r in (run_a, run_b))
    for name in files:
        same_tensors(paddle.load(os.path.join(a, name)), paddle.load(os.path.join(b, name)))
    states = [pickle.load(open(os.path.join(f, "trainer_state.pkl"), "rb")) for f in (a, b)]
    for key in ("epoch", "batch_in_epoch", "step", "best", "lr_scheduler"):
        assert states[0][key] == states[1][key], key


@pytest.mark.slow
def test_interrupted_run_ends_bit_identical(chain, reference):
    assert_same_end(reference, chain["folder"], ("encoder.pdparams", "depth.pdparams", "optimizer.pdopt"))
    assert read_manifest(os.path.join(chain["folder"], "checkpoint"))["step"] == 4
    best = [json.loads(open(os.path.join(r, "models", "best", "best.json")).read()) for r in (reference, chain["folder"])]
    assert best[0] == best[1]


# ---------------------------------------------------------------------------------------------- train_refine.py
def refine_argv(split, mlda, log_dir, name, *extra):
    root, folder = split
    return ["train_refine.py", "--dataset", "synthetic", "--data_path", root, "--split", folder,
            "--load_weights_folder", mlda, "--log_dir", str(log_dir), "--model_name", name, "--height", "64",
            "--width", "64", "--batch_size", "2", "--num_epochs", "2", "--cond_channels", "8", "--ddim_steps", "2",
            "--warmup_steps", "0", "--log_frequency", "1", "--checkpoint_steps", "1", "--num_threads", "1",
            "--num_workers", "0", "--seed", "0", *extra]


@pytest.fixture(scope="module")
def refine_runs(split, reference, tmp_path_factory):
    """The diffusion head on the reference run's best MLDA-Net: uninterrupted (checkpoints at the
    epochs' ends); and SIGKILL while step 3 runs, SIGTERM after step 3's checkpoint (one loader
    worker), resumed to the end."""
    mlda = str(reference / "models" / "best")
    log_dir = tmp_path_factory.mktemp("refine")
    finished(Run(refine_argv(split, mlda, log_dir, "straight", "--checkpoint_steps", "0")))
    log = str(log_dir / "cut" / "train.log")
    moments = random.Random(2025)
    run = Run(refine_argv(split, mlda, log_dir, "cut", "--num_workers", "1"), log)
    seconds = phase_seconds(run, str(log_dir / "cut" / "checkpoint"))
    killed = dict(code=kill_mid_step_3(run, seconds, moments), log=run.log_text(), survivors=run.survivors())
    run = Run(run.resume_command(), log)
    run.wait_log("checkpoint: epoch 1 batch 1 step 3")
    time.sleep(moments.uniform(0.0, 0.5) * seconds["step"])
    stopped = dict(code=run.kill(signal.SIGTERM), text=run.text, survivors=run.survivors(), workers=len(run.children))
    finished(Run(run.resume_command(), log))
    return dict(straight=log_dir / "straight", cut=log_dir / "cut", killed=killed, stopped=stopped, split=split)


@pytest.mark.slow
def test_refine_killed_and_stopped_ends_bit_identical(refine_runs):
    killed, stopped = refine_runs["killed"], refine_runs["stopped"]
    assert killed["code"] == -signal.SIGKILL and "epoch 1 step 3 lr" not in killed["log"]
    assert stopped["code"] == 128 + signal.SIGTERM and "continue with: python train_refine.py --resume" in stopped["text"]
    assert stopped["workers"] >= 1 and killed["survivors"] == stopped["survivors"] == []
    assert_same_end(refine_runs["straight"], refine_runs["cut"], ("refine.pdparams", "optimizer.pdopt"))


@pytest.mark.slow
def test_refine_best_folder_holds_its_validation_score(refine_runs):
    """best.json's abs_rel: the refined depth of the best folder's model (loaded as predict.py does),
    unscaled, on the 2 val frames, by utils.geometry.metrics per image."""
    import networks
    from utils.geometry.metrics import evaluate_depth
    best = os.path.join(refine_runs["straight"], "models", "best")
    info = json.loads(open(os.path.join(best, "best.json")).read())
    net = networks.load_weights_folder(best, ("refine",))[1]["refine"]
    root, folder = refine_runs["split"]
    lines = datasets.read_split(os.path.join(folder, "val_files.txt"))
    ds = datasets.KITTIRAWDataset(root, lines, 64, 64, [0], num_scales=1, is_train=False, load_depth=True,
                                  depth_gt_size=None)
    abs_rels = []
    for i in range(len(ds)):
        sample = datasets.batch_to_float(ds[i])
        with paddle.no_grad():
            depth = net(paddle.to_tensor(sample[("color", 0, 0)][None]), net.noise_for(64, 64)).numpy()[0, 0]
        abs_rels.append(evaluate_depth(sample["depth_gt"][0], 1 / depth, mode="none")[0][0])
    assert info["abs_rel"] == pytest.approx(float(np.mean(abs_rels)), rel=1e-5)


# ---------------------------------------------------------------------------------------------- units
def test_checkpoint_due_after_n_steps_or_m_minutes():
    assert not checkpoint_due(4, 10.0, every_steps=5, every_minutes=15)
    assert checkpoint_due(5, 10.0, every_steps=5, every_minutes=15)
    assert checkpoint_due(1, 15 * 60.0, every_steps=0, every_minutes=15)
    assert not checkpoint_due(1, 15 * 60.0 - 1, every_steps=0, every_minutes=15)
    assert not checkpoint_due(10 ** 6, 10.0 ** 9, every_steps=0, every_minutes=0)


def test_stop_signals_set_a_flag_then_interrupt():
    """SIGTERM inside: a flag (no exception, Paddle's abort handler replaced); a second signal:
    KeyboardInterrupt; outside: the previous handlers again."""
    before = signal.getsignal(signal.SIGINT)
    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)
        assert stop.signum == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
    assert signal.getsignal(signal.SIGINT) is before


def test_epoch_bar_ends_where_max_steps_ends_the_run():
    # 22 batches an epoch (the folder worked example at batch 4), --max_steps 10: the first bar is 10 long
    assert epoch_bar_total(22, step=0, max_steps=10) == 10
    assert epoch_bar_total(22, step=0, max_steps=0) == 22 and epoch_bar_total(22, step=0, max_steps=None) == 22
    # 4 batches an epoch, --max_steps 5: epoch 0 whole, epoch 1 one batch; resumed after batch 1 of epoch 1 at step 5
    assert epoch_bar_total(4, step=0, max_steps=5) == 4 and epoch_bar_total(4, step=4, max_steps=5) == 1
    assert epoch_bar_total(4, step=5, max_steps=5, batch_in_epoch=1) == 1
    # resumed at batch 2 of an epoch, 6 steps left: 2 done + 6 to come, but the epoch has only 7
    assert epoch_bar_total(7, step=9, max_steps=15, batch_in_epoch=2) == 7
    assert epoch_bar_total(9, step=9, max_steps=15, batch_in_epoch=2) == 8
