"""evaluate_pose.py: Monodepth2's ATE protocol on known trajectories, and one run with a network."""
import json
import os

import numpy as np
import paddle
import pytest
from PIL import Image

import evaluate_pose
import networks
from tests.support.lsuv import tame_weights


def rot_y(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def curved_drive(n=12):
    """Camera-to-world poses of a car turning left while driving forward (z) and climbing (y)."""
    poses = []
    for i in range(n):
        g = np.eye(4)
        g[:3, :3] = rot_y(0.05 * i)
        g[:3, 3] = [0.3 * np.sin(0.1 * i), -0.02 * i, 1.1 * i]
        poses.append(g)
    return np.stack(poses)


def test_true_poses_give_zero_error_even_scaled():
    gt = curved_drive()
    local = evaluate_pose.local_poses_from_global(gt)
    assert np.abs(evaluate_pose.evaluate_trajectory(local, gt)).max() < 1e-12
    scaled = local.copy()
    scaled[:, :3, 3] *= 0.1  # a monocular network's unknown scale: removed by the per-snippet alignment
    ates = evaluate_pose.evaluate_trajectory(scaled, gt)
    assert len(ates) == len(gt) - 1 and ates.max() < 1e-12


def test_lateral_drift_gives_the_analytic_error():
    """Straight drive, unit steps along z; the prediction adds a sideways a per step. For a full
    5-frame snippet the prediction's positions are k (a, 0, 1), the least-squares scale is
    1 / (1 + a^2) and ATE = sqrt(30 a^2 / (1 + a^2)) / 5 (k = 0..4, sum k^2 = 30)."""
    a, n = 0.2, 10
    gt = np.tile(np.eye(4), (n, 1, 1))
    gt[:, 2, 3] = np.arange(n)
    pred = evaluate_pose.local_poses_from_global(gt)
    pred[:, 0, 3] = -a  # local motions are T(0, 0, -1) here: chained they give -k (a, 0, 1)
    pred_xyz = evaluate_pose.dump_xyz(pred[:4])
    np.testing.assert_allclose(pred_xyz[4], [-4 * a, 0, -4], atol=1e-12)
    ates = evaluate_pose.evaluate_trajectory(pred, gt)
    expect_full = np.sqrt(30 * a ** 2 / (1 + a ** 2)) / 5
    np.testing.assert_allclose(ates[: n - 4], expect_full, rtol=1e-10)
    # the last snippets are shorter (Monodepth2 keeps them): m motions -> m + 1 frames
    for m in (1, 2, 3):
        s = sum(k * k for k in range(m + 1))
        np.testing.assert_allclose(ates[n - 1 - m], np.sqrt(s * a ** 2 / (1 + a ** 2)) / (m + 1), rtol=1e-10)


def test_rotation_error_is_not_hidden_by_scale():
    gt = curved_drive()
    pred = evaluate_pose.local_poses_from_global(gt)
    pred[:, :3, :3] = pred[:, :3, :3] @ rot_y(0.1)  # every step turns 0.1 rad too far
    assert evaluate_pose.evaluate_trajectory(pred, gt).mean() > 0.05


def test_poses_file_round_trip(tmp_path):
    gt = curved_drive(4)
    np.savetxt(tmp_path / "09.txt", gt[:, :3, :].reshape(4, 12))
    np.testing.assert_allclose(evaluate_pose.read_poses_file(str(tmp_path / "09.txt")), gt, atol=1e-15)


def _odometry_layout(root, n, size=(160, 64)):
    """A tiny odometry sequence 09: random-ish frames and a known drive."""
    folder = root / "sequences" / "09" / "image_2"
    folder.mkdir(parents=True)
    rng = np.random.RandomState(0)
    base = rng.randint(0, 255, (size[1], size[0] + 4 * n, 3), dtype=np.uint8)
    for i in range(n):
        Image.fromarray(base[:, 4 * i: 4 * i + size[0]]).save(folder / f"{i:06d}.png")
    (root / "poses").mkdir()
    gt = curved_drive(n)
    np.savetxt(root / "poses" / "09.txt", gt[:, :3, :].reshape(n, 12))
    split = root / "test_files_09.txt"
    split.write_text("".join(f"9 {i} l\n" for i in range(n - 1)))
    return gt, split


def test_end_to_end_with_a_network(tmp_path):
    n = 7
    gt, split = _odometry_layout(tmp_path / "odom", n)
    h, w = 64, 128
    paddle.seed(0)
    nets = tame_weights(networks.build_nets(num_layers=18, scales=(0,)), paddle.rand([1, 3, h, w]))
    weights = tmp_path / "weights"
    networks.save_weights_folder(str(weights), nets, {"height": h, "width": w, "num_layers": 18, "scales": [0]})
    result = evaluate_pose.main(["--load_weights_folder", str(weights), "--data_path", str(tmp_path / "odom"),
                                 "--eval_split", str(split), "--num_workers", "0", "--batch_size", "4",
                                 "--save_pred_poses"])
    pred = np.load(weights / "poses_odom_9.npy")
    assert pred.shape == (n - 1, 4, 4)
    # the saved motion of the first pair is the pose network's output on (frame 0, frame 1)
    from utils.io import image_io
    from networks.layers import transformation_from_parameters
    frames = [image_io.preprocess(image_io.load_image(str(tmp_path / "odom/sequences/09/image_2" / f"{i:06d}.png")),
                                  h, w) for i in (0, 1)]
    _, loaded = networks.load_weights_folder(str(weights), parts=("pose",))
    with paddle.no_grad():
        aa, t = loaded["pose"](*(paddle.to_tensor(f) for f in frames))
        first = transformation_from_parameters(aa[:, 0], t[:, 0]).numpy()[0]
    np.testing.assert_allclose(pred[0], first, atol=1e-5)
    # independent ATE in numpy from the saved poses and the ground-truth file
    g = np.loadtxt(tmp_path / "odom/poses/09.txt").reshape(-1, 3, 4)
    g = np.concatenate([g, np.tile([[[0, 0, 0, 1.0]]], (len(g), 1, 1))], axis=1)
    ates = []
    for i in range(n - 1):
        cp, cg = np.eye(4), np.eye(4)
        xp, xg = [cp[:3, 3]], [cg[:3, 3]]
        for j in range(i, min(i + 4, n - 1)):
            cp = cp @ pred[j]
            cg = cg @ np.linalg.inv(np.linalg.inv(g[j]) @ g[j + 1])
            xp.append(cp[:3, 3])
            xg.append(cg[:3, 3])
        xp, xg = np.array(xp), np.array(xg)
        xp = xp - xp[0] + xg[0]
        s = (xg * xp).sum() / (xp ** 2).sum()
        ates.append(np.sqrt(((s * xp - xg) ** 2).sum()) / len(xg))
    assert result["ate_mean"] == pytest.approx(np.mean(ates), rel=1e-9)
    assert result["ate_std"] == pytest.approx(np.std(ates), rel=1e-9, abs=1e-12)
    saved = json.loads((weights / "pose_odom_9.json").read_text())
    assert saved["snippets"] == n - 1 and saved["ate_mean"] == pytest.approx(result["ate_mean"])


def test_bad_inputs_exit_with_one_line(tmp_path, capsys):
    weights = tmp_path / "w"
    weights.mkdir()
    with pytest.raises(SystemExit) as e:
        evaluate_pose.main(["--load_weights_folder", str(weights), "--data_path", str(tmp_path)])
    assert "poses/09.txt not found" in str(e.value.code)
    (tmp_path / "poses").mkdir()
    np.savetxt(tmp_path / "poses" / "09.txt", curved_drive(3)[:, :3, :].reshape(3, 12))
    split = tmp_path / "s.txt"
    split.write_text("9 0 l\n9 1 l\n")
    with pytest.raises(SystemExit) as e:
        evaluate_pose.main(["--load_weights_folder", str(weights), "--data_path", str(tmp_path),
                            "--eval_split", str(split)])
    assert "pose_encoder.pdparams not found" in str(e.value.code)
    assert not os.path.exists(weights / "pose_odom_9.json")
