"""Pose evaluation with Monodepth2's odometry protocol (absolute trajectory error, ATE).

    python evaluate_pose.py --load_weights_folder WEIGHTS --data_path kitti_odom --eval_split odom_9

Layout (KITTI odometry colour images and ground-truth poses):
    <data_path>/sequences/09/image_2/000000.png ...   (.jpg also read)
    <data_path>/poses/09.txt                          (one 3 x 4 camera-to-world matrix per line)
splits/odom/test_files_09.txt holds "9 <frame> l" for frames 0 .. N-2 (1590 lines for 09, 1200 for 10).

For every line i the pose network sees concat(frame i, frame i+1) and predicts T_i =
transformation_from_parameters(axisangle[:, 0], translation[:, 0]), the motion from frame i to
frame i+1; the ground truth is inv(inv(G_i) G_{i+1}) from the global poses G. For each i, the
snippet of up to 4 consecutive motions (5 frames) from i is chained into camera positions for the
prediction and the ground truth, the prediction is moved to start at the ground truth's first
position and scaled by the least-squares factor, and ATE = sqrt(sum |error|^2) / frames
(Monodepth2's exact formula, so the numbers compare with its table). Reported: mean and std.
"""
import utils  # noqa: F401  (first import: silences Paddle's import-time ccache warning)
import options
options.check_before_imports("evaluate_pose", __name__)
import json
import os
import sys

import numpy as np
import paddle
from tqdm import tqdm

import networks
from networks.layers import transformation_from_parameters
from utils.io import image_io
from utils.io.fileio import atomic_write, atomic_write_text
from utils.system import RuntimeSetupError, setup_runtime

ROOT = os.path.dirname(os.path.abspath(__file__))
TRACK_LENGTH = 5


def read_poses_file(path):
    """KITTI poses file -> N x 4 x 4 float64 camera-to-world matrices."""
    rows = np.loadtxt(path, dtype=np.float64, ndmin=2)
    if rows.shape[1] != 12:
        raise ValueError(f"{path}: expected 12 numbers per line (a 3 x 4 pose), got {rows.shape[1]}")
    poses = np.tile(np.eye(4), (len(rows), 1, 1))
    poses[:, :3, :] = rows.reshape(-1, 3, 4)
    return poses


def local_poses_from_global(global_poses):
    """Camera-to-world poses G_0..G_{N-1} -> the N-1 frame-to-frame motions inv(inv(G_i) G_{i+1})."""
    return np.stack([np.linalg.inv(np.linalg.inv(global_poses[i]) @ global_poses[i + 1])
                     for i in range(len(global_poses) - 1)])


def dump_xyz(transforms):
    """Chain source-to-target motions from the identity; the camera positions, one per frame."""
    cam_to_world = np.eye(4)
    xyzs = [cam_to_world[:3, 3]]
    for t in transforms:
        cam_to_world = cam_to_world @ t
        xyzs.append(cam_to_world[:3, 3])
    return np.array(xyzs)


def compute_ate(gt_xyz, pred_xyz):
    """ATE of one snippet: align the starts, scale the prediction by least squares,
    sqrt(sum of squared position errors) / number of frames (Monodepth2)."""
    pred = pred_xyz + (gt_xyz[0] - pred_xyz[0])[None]
    scale = np.sum(gt_xyz * pred) / max(np.sum(pred ** 2), 1e-12)
    return float(np.sqrt(np.sum((pred * scale - gt_xyz) ** 2)) / gt_xyz.shape[0])


def evaluate_trajectory(pred_local_poses, gt_global_poses, track_length=TRACK_LENGTH):
    """ATE of every snippet: pred_local_poses[i] is the predicted motion from frame i to i+1
    (N-1 of them for N global poses). Returns an array of N-1 errors."""
    pred = np.asarray(pred_local_poses, dtype=np.float64)
    gt_local = local_poses_from_global(np.asarray(gt_global_poses, dtype=np.float64))
    if len(pred) != len(gt_local):
        raise ValueError(f"{len(pred)} predicted motions for {len(gt_local) + 1} ground-truth poses "
                         f"(need one per consecutive pair, {len(gt_local)})")
    n = track_length - 1
    return np.array([compute_ate(dump_xyz(gt_local[i:i + n]), dump_xyz(pred[i:i + n]))
                     for i in range(len(gt_local))])


def frame_path(data_path, sequence, frame, png=True):
    """<data_path>/sequences/<ss>/image_2/<ffffff>.png (or .jpg, whichever exists)."""
    folder = os.path.join(data_path, "sequences", f"{sequence:02d}", "image_2")
    exts = (".png", ".jpg") if png else (".jpg", ".png")
    paths = [os.path.join(folder, f"{frame:06d}{e}") for e in exts]
    return next((p for p in paths if os.path.isfile(p)), paths[0])


class FramePairs(paddle.io.Dataset):
    """Split lines "<seq> <frame> l" -> concat(frame, frame + 1), 6 x H x W in [0, 1]."""

    def __init__(self, data_path, lines, height, width, png=True):
        self.items = []
        for line in lines:
            seq, frame = int(line.split()[0]), int(line.split()[1])
            self.items.append((frame_path(data_path, seq, frame, png), frame_path(data_path, seq, frame + 1, png)))
        self.height, self.width = height, width

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return np.concatenate([image_io.preprocess(image_io.load_image(p), self.height, self.width)[0]
                               for p in self.items[i]], axis=0)


@paddle.no_grad()
def predict_poses(pose_net, loader):
    """Predicted motion frame i -> i+1 for every pair (B x 6 x H x W, frame i first): N x 4 x 4 float64."""
    poses = []
    for pairs in tqdm(loader, desc="pose", unit="batch"):
        axisangle, translation = pose_net(pairs[:, :3], pairs[:, 3:])
        poses.append(transformation_from_parameters(axisangle[:, 0], translation[:, 0]).numpy())
    return np.concatenate(poses).astype(np.float64)


def sequence_of_split(eval_split):
    try:
        name, seq = eval_split.split("_")
        assert name == "odom"
        return int(seq)
    except (ValueError, AssertionError):
        sys.exit(f"evaluate_pose.py: error: --eval_split {eval_split}: expected odom_9 or odom_10")


def main(argv=None):
    opt = options.parse("evaluate_pose", argv)
    try:
        setup_runtime(opt.device, opt.num_threads)
    except RuntimeSetupError as e:
        sys.exit(f"evaluate_pose.py: error: {e}")
    if os.path.isfile(opt.eval_split):  # a split file of one's own: the sequence is in its lines
        split_file = opt.eval_split
        with open(split_file) as f:
            first = f.readline().split()
        sequence = int(first[0]) if first and first[0].isdigit() else sequence_of_split(opt.eval_split)
    else:
        sequence = sequence_of_split(opt.eval_split)
        split_file = os.path.join(ROOT, "splits", "odom", f"test_files_{sequence:02d}.txt")
    poses_file = os.path.join(opt.data_path, "poses", f"{sequence:02d}.txt")
    for f, what in ((split_file, "the odometry split file"), (poses_file, "the ground-truth poses")):
        if not os.path.isfile(f):
            sys.exit(f"evaluate_pose.py: error: {f} not found ({what}; see the layout in evaluate_pose.py)")
    with open(split_file) as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    try:
        gt_global = read_poses_file(poses_file)
        wopt, nets = networks.load_weights_folder(opt.load_weights_folder, parts=("pose",))
    except (ValueError, networks.CheckpointError) as e:
        sys.exit(f"evaluate_pose.py: error: {e}")
    dataset = FramePairs(opt.data_path, lines, int(wopt.height), int(wopt.width), opt.png)
    missing = [p for pair in dataset.items for p in pair if not os.path.isfile(p)]
    if missing:
        sys.exit(f"evaluate_pose.py: error: {missing[0]} not found ({len(missing)} frame file(s) missing)")
    if len(lines) != len(gt_global) - 1:
        sys.exit(f"evaluate_pose.py: error: {split_file} has {len(lines)} lines but {poses_file} has "
                 f"{len(gt_global)} poses (need one line per consecutive pair)")
    loader = paddle.io.DataLoader(dataset, batch_size=opt.batch_size, shuffle=False, num_workers=opt.num_workers)
    pred = predict_poses(nets["pose"], loader)
    ates = evaluate_trajectory(pred, gt_global)
    print(f"\n   Trajectory error: {ates.mean():0.3f}, std: {ates.std():0.3f}\n")
    result = {"split": split_file, "ate_mean": float(ates.mean()), "ate_std": float(ates.std()),
              "snippets": int(len(ates)), "weights": os.path.abspath(opt.load_weights_folder)}
    tag = f"odom_{sequence}"
    out = os.path.join(opt.load_weights_folder, f"pose_{tag}.json")
    atomic_write_text(out, json.dumps(result, indent=2))
    if opt.save_pred_poses:
        atomic_write(os.path.join(opt.load_weights_folder, f"poses_{tag}.npy"), lambda p: np.save(p, pred))
    return result


if __name__ == "__main__":
    main()
