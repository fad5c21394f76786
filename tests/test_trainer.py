"""trainer.py / train.py: over-fitting one synthetic sample (loss, warps, gradients and the pose
network fit together), exact resume after Ctrl-C, non-finite losses, option refusals of train.py."""
import os
import pickle
import signal

import cv2
import numpy as np
import paddle
import pytest

import datasets
import options
import synthetic
import train
import trainer
from networks.layers import disp_to_depth
from tests.synthetic_fixture import synthetic_kitti, synthetic_kitti_hints  # noqa: F401
from utils.geometry.metrics import compute_depth_errors

MAX_OVERFIT_STEPS = 40  # done after 25-30 here (lr 6e-5; the default 1e-4 is too large from scratch at batch 2)
# Frame 4 of the 7-frame fixture. Measured on AMD EPYC (AVX2), seeds 0-2, every 2 steps: all three criteria
# first held at steps 28 / 24 / 26, where the loss was 0.486 / 0.493 / 0.456 of the first, abs_rel 0.274 /
# 0.166 / 0.146 against the constant's 0.477, and z(+1, 0) - z(0, +1) 0.0039 / 0.0064 / 0.0093 m (it was
# < 1e-4 either way up to step 4-12, and positive from step 6-14 to step 40, the last measured). The pose
# criterion used to be the signs (z(0, +1) < 0 < z(+1, 0)), which held for seed 0 only; their ordering holds
# for every seed. At lr 3e-5 (the earlier setting) the criteria held from step 35-40. At 64 x 64 the ordering
# held only from step 20 to 36 for seed 0, too narrow a window. A change of the fixture's scene changes these.
OVERFIT_LINE = "2000_01_01/2000_01_01_drive_0001_sync 4 l"


def small_argv(root, log_dir, *extra):
    return ["--dataset", "synthetic", "--data_path", root, "--log_dir", str(log_dir), "--height", "64",
            "--width", "128", "--batch_size", "1", "--num_workers", "0", "--seed", "0", *extra]


def batch_of(dataset):
    return datasets.batch_to_float(next(iter(paddle.io.DataLoader(dataset, batch_size=len(dataset)))))


def with_time_reversed_copy(inputs):
    """The batch plus the same sample with frames -1 and +1 exchanged (the camera driving backwards).
    Pose pairs are always fed in temporal order, so one forward-driving sample could be fitted by a
    constant pose; with both, the network must tell the direction of motion from the images."""
    out = {}
    for key, value in inputs.items():
        partner = (key[0], -key[1], key[2]) if isinstance(key, tuple) and len(key) == 3 and key[1] in (-1, 1) else key
        out[key] = paddle.concat([value, inputs[partner]], axis=0)
    return out


def depth_errors(tr, inputs):
    """Loss and abs_rel of the median-scaled prediction and of the median-scaled constant on the
    batch's exact synthetic depth; BN in train mode (batch statistics), as during the steps."""
    with paddle.no_grad():
        outputs, losses = tr.process_batch(inputs)
    scaled_disp, _ = disp_to_depth(outputs[("disp", 0)], tr.opt.min_depth, tr.opt.max_depth)
    errors = []
    for gt, disp in zip(inputs["depth_gt"][:, 0].numpy(), scaled_disp[:, 0].numpy()):
        pred = 1 / cv2.resize(disp, gt.shape[::-1])
        valid = (gt > 0) & (gt < 80)
        g, p = gt[valid], pred[valid]
        errors.append((compute_depth_errors(g, p * np.median(g) / np.median(p))[0],
                       compute_depth_errors(g, np.full_like(g, np.median(g)))[0]))
    abs_rel, constant = np.mean(errors, axis=0)
    return float(losses["loss"]), abs_rel, constant


def pose_z(tr, inputs):
    """Translation z the pose network (eval mode) predicts for the pairs (0, +1) and (+1, 0) of the
    batch's first sample."""
    c0, c1 = inputs[("color", 0, 0)][:1], inputs[("color", 1, 0)][:1]
    tr.models["pose"].eval()
    with paddle.no_grad():
        _, translation = tr.models["pose"](paddle.concat([c0, c1]), paddle.concat([c1, c0]))
    tr.models["pose"].train()
    return float(translation[0, 0, 0, 2]), float(translation[1, 0, 0, 2])


@pytest.fixture(scope="module")
def overfit(synthetic_kitti_hints, tmp_path_factory):
    """Mono+stereo+hints from scratch on one fixed sample (and its time-reversed copy) until the loss
    has halved, the depth beats the constant and the pose network orders the two directions of motion
    (z of the forward pair below the reversed pair's; checked every 5 steps), at most MAX_OVERFIT_STEPS
    steps (25-30 here)."""
    root = synthetic_kitti_hints["data_path"]
    opt = options.parse("train", small_argv(root, tmp_path_factory.mktemp("overfit"), "--learning_rate", "6e-5",
                                            "--width", "96"))
    ds = datasets.KITTIRAWDataset(root, [OVERFIT_LINE], 64, 96, [0, -1, 1, "s"], is_train=False,
                                  use_depth_hints=True, depth_gt_size=None)
    inputs = with_time_reversed_copy(batch_of(ds))
    tr = trainer.Trainer(opt, ds, None)
    first = depth_errors(tr, inputs)
    last, steps = first, 0
    while steps < MAX_OVERFIT_STEPS:
        tr.train_step(inputs)
        steps += 1
        if steps % 5 == 0:
            last, z = depth_errors(tr, inputs), pose_z(tr, inputs)
            if last[0] < 0.5 * first[0] and last[1] < last[2] and z[0] < z[1]:
                break
    return dict(first=first, last=last, steps=steps, root=root, z_forward=z[0], z_swapped=z[1])


@pytest.mark.slow
def test_overfitting_halves_the_loss(overfit):
    assert overfit["last"][0] < 0.5 * overfit["first"][0], overfit


@pytest.mark.slow
def test_overfitting_beats_the_median_scaled_constant(overfit):
    loss, abs_rel, constant = overfit["last"]
    assert abs_rel < constant, overfit


@pytest.mark.slow
def test_pose_network_learns_the_direction_of_motion(overfit):
    # Ground truth from the generator's poses (camera-to-world): T_{0->1} = inv(P1) P0 maps frame-0
    # camera points into frame 1; the car drives forward, so its z translation is negative.
    frame = int(OVERFIT_LINE.split()[1])
    poses = np.loadtxt(os.path.join(overfit["root"], "poses", OVERFIT_LINE.split()[0].split("/")[1] + ".txt"))
    p0, p1 = (np.vstack([poses[i].reshape(3, 4), [0, 0, 0, 1]]) for i in (frame, frame + 1))
    true_z = (np.linalg.inv(p1) @ p0)[2, 3]
    assert true_z < 0
    # the forward pair's z below the reversed pair's, as the true motion's sign says (untrained, the two
    # differ by < 2e-5 m, in either order; see MAX_OVERFIT_STEPS for why not their signs)
    assert np.sign(overfit["z_forward"] - overfit["z_swapped"]) == np.sign(true_z), overfit


def checkpoint_weights(folder):
    return {name: paddle.load(os.path.join(folder, f"{name}.pdparams"))
            for name in ("encoder", "depth", "pose_encoder", "pose")}


@pytest.mark.slow
def test_resume_after_ctrl_c_equals_an_uninterrupted_run(synthetic_kitti_hints, tmp_path, monkeypatch, capsys):
    """5 steps in one go == Ctrl-C during step 3 (the step ends, then the checkpoint), --resume for the
    rest: identical weights, Adam state and LR. Batch 2 over 8 lines: 4 steps per epoch, so the run
    crosses an epoch end and an LR step."""
    root = synthetic_kitti_hints["data_path"]
    extra = ["--batch_size", "2", "--width", "64", "--max_steps", "5", "--num_epochs", "3",
             "--scheduler_step_size", "1", "--lr_decay", "0.5"]
    train.main(small_argv(root, tmp_path / "a", *extra))

    original_step = trainer.Trainer.train_step

    def interrupted_step(self, inputs):
        if self.step == 2:
            os.kill(os.getpid(), signal.SIGINT)   # as Ctrl-C: handled once this step is done
        return original_step(self, inputs)

    monkeypatch.setattr(trainer.Trainer, "train_step", interrupted_step)
    with pytest.raises(SystemExit) as exc:
        train.main(small_argv(root, tmp_path / "b", *extra))
    assert exc.value.code == 130
    ckpt = str(tmp_path / "b" / "mlda" / "checkpoint")
    assert f"--resume {ckpt}" in capsys.readouterr().out
    assert pickle.load(open(os.path.join(ckpt, "trainer_state.pkl"), "rb"))["step"] == 3
    monkeypatch.setattr(trainer.Trainer, "train_step", original_step)
    train.main(["--resume", ckpt])

    a, b = (str(tmp_path / run / "mlda" / "checkpoint") for run in "ab")
    for name, state in checkpoint_weights(a).items():
        other = checkpoint_weights(b)[name]
        for key, value in state.items():
            assert np.array_equal(value.numpy(), other[key].numpy()), f"{name}.{key}"
    opt_a, opt_b = (paddle.load(os.path.join(f, "optimizer.pdopt")) for f in (a, b))
    for key, value in opt_a.items():
        if isinstance(value, paddle.Tensor):
            assert np.array_equal(value.numpy(), opt_b[key].numpy()), key
    states = [pickle.load(open(os.path.join(f, "trainer_state.pkl"), "rb")) for f in (a, b)]
    assert states[0]["step"] == states[1]["step"] == 5
    assert states[0]["epoch"] == states[1]["epoch"] == 1
    assert states[0]["lr_scheduler"] == states[1]["lr_scheduler"]
    assert states[0]["lr_scheduler"]["last_lr"] == pytest.approx(1e-4 * 0.5)
    # epoch 0 (0-based) completed -> weights_0; the run stopped in epoch 1 -> a partial one; val files -> best
    assert sorted(os.listdir(tmp_path / "a" / "mlda" / "models")) == ["best", "weights_0", "weights_1_step5"]


def test_non_finite_losses_skip_steps_then_stop(synthetic_kitti_hints, tmp_path, monkeypatch):
    root = synthetic_kitti_hints["data_path"]
    opt = options.parse("train", small_argv(root, tmp_path, "--max_bad_steps", "2"))
    tr = trainer.Trainer(opt)
    before = {k: v.numpy().copy() for k, v in tr.models["depth"].state_dict().items()}

    def nan_batch(inputs):
        params = [p for m in tr.models.values() for p in m.parameters()]
        return {}, {"loss": paddle.add_n([p.sum() for p in params]) * float("nan")}

    monkeypatch.setattr(tr, "process_batch", nan_batch)
    with pytest.warns(UserWarning, match="non-finite loss"):
        with pytest.raises(SystemExit, match="2 consecutive non-finite losses"):
            tr.train()
    after = tr.models["depth"].state_dict()
    assert all(np.array_equal(before[k], after[k].numpy()) for k in before)
    assert tr.step == 0 and not os.path.exists(tmp_path / "mlda" / "checkpoint")


@pytest.mark.parametrize("argv, message", [
    (["--height", "200"], "--height 200: must be a multiple of 32"),
    (["--frame_ids", "1", "0"], "must start with the target frame 0"),
    (["--no-use_stereo"], "--use_depth_hints needs stereo"),
])
def test_train_script_refuses_bad_options(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        train.main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_offline_imagenet_download_says_how_to_proceed(monkeypatch):
    from types import SimpleNamespace

    from paddle.vision.models import resnet

    def offline(pretrained=False):
        raise ConnectionError("no network")

    monkeypatch.setattr(resnet, "resnet18", offline)
    with pytest.raises(SystemExit) as exc:
        trainer.Trainer.imagenet_state(SimpleNamespace(opt=options.parse("train", [])))
    message = str(exc.value)
    assert resnet.model_urls["resnet18"][0] in message
    assert "--weights_init /path/to/" in message and "--weights_init scratch" in message


def test_missing_training_files_stop_or_are_skipped(synthetic_kitti_hints, tmp_path):
    """A split line whose frame is missing stops training with the file named, unless --skip_missing."""
    root = synthetic_kitti_hints["data_path"]
    good = datasets.read_split(os.path.join(synthetic.split_dir(root), "train_files.txt"))
    split = tmp_path / "split"
    split.mkdir()
    (split / "train_files.txt").write_text("\n".join(good + [good[0].rsplit(" ", 2)[0] + " 999 l"]) + "\n")
    argv = small_argv(root, tmp_path / "logs", "--split", str(split))
    with pytest.raises(SystemExit, match=r"0000000999"):
        trainer.Trainer(options.parse("train", argv))
    tr = trainer.Trainer(options.parse("train", argv + ["--skip_missing"]))
    assert len(tr.train_dataset) == len(good)


@pytest.mark.slow
def test_resize_on_device_trains_on_the_same_batches(synthetic_kitti_hints, tmp_path):
    """train.py --resize_on_device: the loader (datasets.collate, decoded frames) feeds the trainer the
    batches of the default loader, whose training steps from the same initial networks give the same
    losses. Batch 4 with seed 4 draws flips [1, 0, 0, 1]: the device resizes the rows in the order
    [0, 3, 1, 2] (a 3-cycle) and must put each image back in the row of its K, stereo_T, hints and depth."""
    root = synthetic_kitti_hints["data_path"]
    argv = ["--batch_size", "4", "--seed", "4"]
    plain = trainer.Trainer(options.parse("train", small_argv(root, tmp_path / "a", *argv)))
    device = trainer.Trainer(options.parse("train", small_argv(root, tmp_path / "b", *argv, "--resize_on_device")))
    assert device.train_dataset.resize_on_device and not plain.train_dataset.resize_on_device
    first = [next(iter(tr.loader)) for tr in (plain, device)]
    assert ("raw", 0) in first[1] and ("color", 0, 0) in first[0]
    assert first[1]["raw_flip"].numpy().tolist() == [1, 0, 0, 1]     # the premise: groups out of batch order
    assert len({float(t[0, 3]) for t in first[0]["stereo_T"].numpy()}) == 2   # rows differ by their flip
    losses = []
    for tr, inputs in zip((plain, device), first):
        result = tr.train_step(inputs)   # None: a non-finite loss skipped the step
        assert result is not None
        losses.append(float(result[1]["loss"]))
        tr.close()
    for key, value in first[0].items():
        if key[0] != "color_aug":
            np.testing.assert_array_equal(first[1][key].numpy(), value.numpy())
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
