"""A short real run of train.py (validation and the best folder), fine-tuning from its weights,
--weights_init PATH, the run-folder lock and --num_threads. One run of two 1-step epochs at 64 x 96,
stereo only (no pose networks), on a 2-line train split and the fixture's 2 val lines."""
import json
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

import datasets
import networks
import options
import synthetic
import train
import trainer
from networks.layers import disp_to_depth
from tests.synthetic_fixture import synthetic_kitti, synthetic_kitti_hints  # noqa: F401
from utils.geometry.metrics import evaluate_depth
from utils.system import set_cpu_threads, setup_runtime


def run_argv(root, split, log_dir, *extra):
    return ["--dataset", "synthetic", "--data_path", root, "--split", str(split), "--log_dir", str(log_dir),
            "--height", "64", "--width", "96", "--batch_size", "2", "--num_workers", "0", "--frame_ids", "0",
            "--seed", "0", *extra]


@pytest.fixture(scope="module")
def short_run(synthetic_kitti_hints, tmp_path_factory):
    """train.main for 2 epochs of one step, recording every validation score (epoch 1's made worse)."""
    root = synthetic_kitti_hints["data_path"]
    split = tmp_path_factory.mktemp("split")
    lines = datasets.read_split(os.path.join(synthetic.split_dir(root), "train_files.txt"))[:2]
    (split / "train_files.txt").write_text("\n".join(lines) + "\n")
    val_lines = datasets.read_split(os.path.join(synthetic.split_dir(root), "val_files.txt"))
    assert len(val_lines) >= 2
    (split / "val_files.txt").write_text("\n".join(val_lines) + "\n")
    log_dir = tmp_path_factory.mktemp("runs")
    scores = []
    original = trainer.Trainer.validate

    def recording_validate(self):
        score = original(self)
        if self.epoch == 1:
            # epoch 1 reports a worse score than epoch 0, so best must keep epoch 0's weights. Which of
            # two one-step epochs really validates better is chance: measured on AMD EPYC (AVX2) with
            # Paddle's default init (what this run used to rely on), seeds 0-4 x MKL's default and AVX2
            # kernels, epoch 0 won for seeds 0 and 4 (0.525 vs 0.549 at seed 0) and lost for 1-3
            score = (scores[0][1][0] + 1.0, score[1])
        scores.append((self.epoch, score))
        return score

    trainer.Trainer.validate = recording_validate
    try:
        train.main(run_argv(root, split, log_dir, "--num_epochs", "2", "--save_frequency", "100", "--seed", "0"))
    finally:
        trainer.Trainer.validate = original
    return dict(root=root, split=split, log_dir=log_dir, run=log_dir / "mlda", scores=scores)


def test_best_folder_holds_the_minimum_validation_score(short_run):
    scores = short_run["scores"]
    assert [epoch for epoch, _ in scores] == [0, 1] and all(s[1] == "abs_rel" for _, s in scores)
    best_epoch, (best_value, _) = min(scores, key=lambda item: item[1][0])
    assert best_epoch == 0, scores  # the case where keeping the earlier best matters (the last is worse)
    best = short_run["run"] / "models" / "best"
    info = json.loads((best / "best.json").read_text())
    assert info["epoch"] == best_epoch and info["abs_rel"] == best_value
    assert not os.path.exists(short_run["run"] / "train.lock")  # released at the end

    # independent recomputation on the saved weights: each val image alone, utils.geometry.metrics
    _, nets = networks.load_weights_folder(str(best), ("depth",))
    _, val = datasets.train_val_datasets(short_run["root"], str(short_run["split"]), 64, 96, [0, "s"],
                                         use_depth_hints=True, depth_gt_size=None)
    abs_rels = []
    with paddle.no_grad():
        for i in range(len(val)):
            sample = datasets.batch_to_float(val[i])
            disp = nets["depth"](paddle.to_tensor(sample[("color", 0, 0)][None]))[("disp", 0)]
            scaled, _ = disp_to_depth(disp, 0.1, 100.0)
            abs_rels.append(evaluate_depth(sample["depth_gt"][0], scaled.numpy()[0, 0], mode="median")[0][0])
    assert info["abs_rel"] == pytest.approx(float(np.mean(abs_rels)), rel=1e-5)


def test_weights_record_their_training_data(short_run):
    """opt.json of the best folder (epoch 0: one step) records the synthetic scene, the steps and the epoch,
    and the Predictor on it captions its depth as demonstration weights, not metres."""
    from deployment import Predictor
    from utils.geometry.provenance import DEMONSTRATION
    best = short_run["run"] / "models" / "best"
    record = json.loads((best / "opt.json").read_text())["training_data"]
    assert (record["dataset"], record["steps"], record["epoch"], record["split"]) == \
        ("synthetic", 1, 0, str(short_run["split"]))
    assert (record["depth"], record["metric_from"]) == ("metric", "KITTI stereo (x5.4)")   # stereo, KITTI units
    predictor = Predictor(str(best))
    assert predictor.provenance.kind == "demonstration" and predictor.caption == DEMONSTRATION


def dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_fine_tuning_loads_the_saved_weights_and_the_run_folder_is_locked(short_run, tmp_path):
    """--load_weights_folder: the new Trainer's networks equal the saved ones exactly before any step
    (another seed, so the fresh weights differ). Its run folder starts with a stale lock (a dead pid),
    which it takes over; a second Trainer on the folder is refused with one line; close() releases."""
    best = str(short_run["run"] / "models" / "best")
    argv = run_argv(short_run["root"], short_run["split"], tmp_path, "--seed", "1", "--load_weights_folder", best)
    lock = tmp_path / "mlda" / "train.lock"
    lock.parent.mkdir()
    lock.write_text(f"{dead_pid()}\n")
    tr = trainer.Trainer(options.parse("train", argv))
    try:
        assert lock.read_text().splitlines()[0] == str(os.getpid())
        for name, layer in networks.weight_files(tr.models).items():
            saved = paddle.load(os.path.join(best, f"{name}.pdparams"))
            state = layer.state_dict()
            assert saved.keys() == state.keys()
            for key, value in saved.items():
                assert np.array_equal(value.numpy(), state[key].numpy()), f"{name}.{key}"
        with pytest.raises(SystemExit) as exc:
            trainer.Trainer(options.parse("train", argv))
        message = str(exc.value.code)
        assert message.startswith("train.py: error: ") and f"pid {os.getpid()}" in message and "\n" not in message
    finally:
        tr.close()
    assert not lock.exists()


def test_weights_init_path_loads_the_backbones(short_run, tmp_path):
    """--weights_init FILE (a paddle.vision ResNet-18 state dict, random here): the depth encoder's
    backbone equals the file; the pose encoder's conv1 is the kernel repeated for 2 images, halved."""
    from paddle.vision.models import resnet18
    paddle.seed(123)
    state = resnet18().state_dict()
    path = str(tmp_path / "resnet18.pdparams")
    paddle.save(state, path)
    argv = run_argv(short_run["root"], short_run["split"], tmp_path, "--frame_ids", "0", "-1", "1",
                    "--weights_init", path)
    tr = trainer.Trainer(options.parse("train", argv))
    tr.close()
    backbone = tr.models["depth"].encoder.backbone.state_dict()
    compared = [k for k in state if not k.startswith("fc.")]
    assert compared and set(compared) <= set(backbone)
    for key in compared:
        assert np.array_equal(backbone[key].numpy(), state[key].numpy()), key
    conv1 = state["conv1.weight"].numpy()
    pose_conv1 = tr.models["pose"].encoder.backbone.state_dict()["conv1.weight"].numpy()
    np.testing.assert_allclose(pose_conv1, np.concatenate([conv1, conv1], axis=1) / 2, rtol=1e-6)


def test_num_threads_reaches_omp_num_threads(monkeypatch):
    """An explicit thread count replaces an OMP_NUM_THREADS already set (e.g. by an earlier device
    selection); the default leaves it."""
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    try:
        assert setup_runtime("cpu") == "cpu" and os.environ["OMP_NUM_THREADS"] == "7"
        assert setup_runtime("cpu", num_threads=3) == "cpu" and os.environ["OMP_NUM_THREADS"] == "3"
    finally:
        set_cpu_threads()  # conftest's setting: every core
