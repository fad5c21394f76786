"""train_refine.py on the synthetic KITTI fixture: the weights folder it writes (MLDA-Net's files +
refine.pdparams + refine.json) loads as a RefinedDepthNet that computes what the trainer's model
computes; --resume continues exactly; and a small run where the refined depth, unscaled, beats
MLDA-Net's median-scaled depth on the test frames, with and without the self-diffusion loss."""
import os

import numpy as np
import paddle
import pytest

import datasets
import networks
import options
import synthetic
import train_refine
from networks.layers import disp_to_depth
from tests.support.lsuv import tame_weights
from tests.support.synthetic_runs import mean_errors, synthetic_test_frames
from tests.synthetic_fixture import synthetic_kitti  # noqa: F401

H, W = 64, 192
STEPS = 40   # the training budget of the slow test


@pytest.fixture(scope="module")
def mlda_folder(tmp_path_factory):
    """MLDA-Net weights: random, tamed so activations are O(1) (no trained MLDA-Net fits a test's time)."""
    paddle.seed(0)
    net = networks.build_nets(use_pose=False)["depth"]
    tame_weights(net, paddle.rand([1, 3, H, W]))
    folder = str(tmp_path_factory.mktemp("mlda"))
    networks.save_weights_folder(folder, {"depth": net}, {"height": H, "width": W, "num_layers": 18,
                                                          "scales": [0, 1, 2, 3], "min_depth": 0.1, "max_depth": 100.0})
    return folder


def train_dataset(root, repeat=1, width=W):
    lines = datasets.read_split(os.path.join(synthetic.split_dir(root), "train_files.txt")) * repeat
    return datasets.KITTIRAWDataset(root, lines, H, width, [0], num_scales=1, is_train=True, load_depth=True,
                                    depth_gt_size=None)


def argv(root, mlda, log_dir, name, *extra, width=W):
    return ["--dataset", "synthetic", "--data_path", root, "--load_weights_folder", mlda, "--log_dir", str(log_dir),
            "--model_name", name, "--height", str(H), "--width", str(width), "--batch_size", "2", "--num_workers", "0",
            "--num_epochs", "100", "--cond_channels", "8", "--ddim_steps", "4", "--strength", "0.5",
            "--warmup_steps", "0", "--seed", "0", *extra]


def run(args, dataset):
    opt = options.parse("train_refine", args)
    if opt.resume:
        opt = train_refine.resume_options(opt, args)
    return train_refine.RefineTrainer(opt, train_dataset=dataset)


@pytest.fixture(scope="module")
def straight_run(synthetic_kitti, mlda_folder, tmp_path_factory):
    """6 steps at 64 x 96 (MLDA-Net's weights say 64 x 192: the head's size wins) on the 8 lines, 4 steps
    an epoch: (trainer, last weights folder)."""
    root = synthetic_kitti["data_path"]
    trainer = run(argv(root, mlda_folder, tmp_path_factory.mktemp("runs"), "straight", "--max_steps", "6",
                       width=96), train_dataset(root, width=96))
    return trainer, trainer.train()


def test_weights_folder_resume_and_reload(synthetic_kitti, mlda_folder, straight_run, tmp_path):
    root = synthetic_kitti["data_path"]
    data = train_dataset(root, width=96)
    straight, folder = straight_run
    assert os.path.basename(folder) == "weights_1_step6"
    files = set(os.listdir(folder))
    assert {"encoder.pdparams", "depth.pdparams", "opt.json", "refine.pdparams", "refine.json"} <= files
    assert networks.load_weights_folder(folder)[0].width == 96

    first = run(argv(root, mlda_folder, tmp_path, "split", "--max_steps", "3", width=96), data)
    first.train()
    checkpoint = os.path.join(tmp_path, "split", "checkpoint")
    resumed = run(["--resume", checkpoint, "--max_steps", "6", "--num_workers", "0"], data)
    assert (resumed.epoch, resumed.batch_in_epoch, resumed.step) == (0, 3, 3)
    resumed.train()
    for (name, a), b in zip(straight.model.head.state_dict().items(), resumed.model.head.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    # the frozen MLDA-Net is unchanged, and the folder reloads as the model that was trained
    _, nets = networks.load_weights_folder(folder, ("depth", "refine"))
    ref = networks.load_weights_folder(mlda_folder, ("depth",))[1]["depth"]
    for a, b in zip(nets["depth"].state_dict().values(), ref.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    image = paddle.rand([1, 3, H, 96])
    straight.model.eval()
    with paddle.no_grad():
        expected = straight.model(image, straight.model.noise_for(H, 96))
        got = nets["refine"](image, nets["refine"].noise_for(H, 96))
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-6)


def test_test_py_and_predictor_use_the_head(synthetic_kitti, straight_run, tmp_path):
    """test.py's refined rows and Predictor's depth are the head's depth, checked against the eager
    RefinedDepthNet and utils.geometry.metrics on the same frames."""
    import test as test_script
    from deployment import Predictor
    from utils.io import image_io

    root = synthetic_kitti["data_path"]
    _, folder = straight_run
    lines = datasets.read_split(os.path.join(synthetic.split_dir(root), "test_files.txt"))[:3]
    ds = datasets.KITTIRAWDataset(root, lines, H, 96, [0], num_scales=1, is_train=False, load_depth=True,
                                  depth_gt_size=None)
    items = [datasets.batch_to_float(ds.get_item(i, np.random.RandomState(0))) for i in range(len(ds))]
    split = tmp_path / "split"
    split.mkdir()
    (split / "test_files.txt").write_text("\n".join(lines) + "\n")
    gts = np.empty(len(items), dtype=object)
    gts[:] = [it["depth_gt"][0] for it in items]
    np.savez_compressed(split / "gt_depths.npz", data=gts)
    result = test_script.main(["--load_weights_folder", folder, "--data_path", root, "--eval_split", str(split),
                               "--eval_mono", "--ddim_steps", "2", "4", "--num_workers", "0", "--batch_size", "2",
                               "--eval_out_dir", str(tmp_path / "out")])
    net = networks.load_weights_folder(folder, ("refine",))[1]["refine"]
    images = paddle.to_tensor(np.stack([it[("color", 0, 0)] for it in items]))
    for steps in (2, 4):
        with paddle.no_grad():
            depth = net(images, net.noise_for(H, 96), steps).numpy()[:, 0]
        for mode in ("none", "median"):
            expect = mean_errors(list(gts), 1.0 / depth, mode)
            got = result["refined"]["ddim_steps"][str(steps)][mode]
            np.testing.assert_allclose([got["abs_rel"], got["rmse"], got["a1"]], expect[[0, 2, 4]], rtol=1e-4)
    # Predictor: metric depth from the head (sigmoid-equivalent disparity mapped back by disp_to_depth)
    predictor = Predictor(folder, eager=True)   # compiled against eager: tests/test_compiled.py
    assert predictor.metric and predictor.scale_factor == 1.0 and predictor.refined is not None
    photo = image_io.load_image(ds.find_image(*ds.lines[0][:3]))
    s = predictor.predict_disp(photo)
    with paddle.no_grad():
        direct = net(paddle.to_tensor(image_io.preprocess(photo, H, 96)), net.noise_for(H, 96)).numpy()[0, 0]
    np.testing.assert_allclose(1 / (1 / 100 + (1 / 0.1 - 1 / 100) * s), np.clip(direct, 0.1, 100), rtol=1e-4)
    assert Predictor(folder, refine=False, eager=True).refined is None


def test_options_refuse_bad_values(capsys):
    for bad in (["--strength", "0"], ["--ddim_steps", "0"], ["--cond_channels", "6"], ["--w_ddim", "-1"]):
        with pytest.raises(SystemExit) as exc:
            options.parse("train_refine", ["--load_weights_folder", "."] + bad)
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "error" in err
    with pytest.raises(SystemExit):
        options.parse("train_refine", [])   # no MLDA-Net weights to refine
    assert "--load_weights_folder is required" in capsys.readouterr().err


@pytest.mark.slow
def test_refined_depth_unscaled_beats_median_scaled_mlda(synthetic_kitti, mlda_folder, tmp_path):
    """A short run (the paper's losses, self-diffusion on) on the fixture's 8 training lines; the 7 test
    frames of the other drive. (The same head without the self-diffusion loss did as well or better
    at such budgets here: bench/RESULTS.md, so that comparison is measured there, not asserted.)"""
    root = synthetic_kitti["data_path"]
    images, gts = synthetic_test_frames(root, H, W)
    _, nets = networks.load_weights_folder(mlda_folder, ("depth",))
    with paddle.no_grad():
        disp = disp_to_depth(nets["depth"].disparity(images), 0.1, 100.0)[0].numpy()[:, 0]
    mlda = mean_errors(gts, disp, "median")
    folder = run(argv(root, mlda_folder, tmp_path, "w1", "--max_steps", str(STEPS)),
                 train_dataset(root, repeat=10)).train()
    net = networks.load_weights_folder(folder, ("refine",))[1]["refine"]
    with paddle.no_grad():
        depth = net(images, net.noise_for(H, W)).numpy()[:, 0]
    refined = mean_errors(gts, 1.0 / depth, "none")
    # abs_rel, rmse lower and a1 higher (indices 0, 2, 4). Measured on AMD EPYC (AVX2), the run's seeds
    # 0-4 x MKL's default and AVX2 kernels (MKL_DEBUG_CPU_TYPE=5), bench/seed_spread.py refine: refined
    # abs_rel 0.259-0.440, rmse 6.21-7.62, a1 0.334-0.620 against MLDA-Net's 0.477, 14.49, 0.297 (seed 0,
    # this test's: 0.259-0.262, 6.43, 0.588-0.591). Since loading the MLDA-Net weights stopped drawing from
    # Paddle's generator the head starts elsewhere for a seed; before, the same measurement gave abs_rel
    # 0.244-0.397, a1 0.387-0.603. At 20 steps seed 1 did not beat it (abs_rel 0.684), so the budget stays 40.
    assert refined[0] < mlda[0] and refined[2] < mlda[2] and refined[4] > mlda[4], (refined, mlda)
