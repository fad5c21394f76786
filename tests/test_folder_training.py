"""--dataset folder in training, on the synthetic non-KITTI camera (4:3, fx = fy = 0.75 W, baseline 0.3 m).

* The stereo loss the trainer minimises (losses.warp_image + reprojection_loss on the loader's K and
  stereo_T) is lowest at the true depth in metres with the true camera.json, and at 0.58 / 0.75 of it
  with KITTI's intrinsics forced on the same images (fx = 0.58 W, fy = 1.92 H): stereo training with the
  real camera learns metres without any scaling, KITTI's camera makes every depth 23 % short.
* train.py --dataset folder runs end to end and its opt.json records the camera and "metric".
"""
import json
import os

import cv2
import numpy as np
import paddle
import pytest

import datasets
import synthetic
import train
from losses.reprojection import reprojection_loss, warp_image
from networks.layers import SSIM

BASELINE = 0.3


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """The generated folder dataset and a copy (symlinked sequences) whose camera.json is KITTI's."""
    base = tmp_path_factory.getbasetemp()
    info = synthetic.generate_folder(str(base / "synthetic_folder_train"), num_sequences=3, frames=6, width=128,
                                     height=96, baseline=BASELINE, progress=False)
    kitti = tmp_path_factory.mktemp("kitti_camera")
    for seq in info["sequences"]:
        os.symlink(os.path.join(info["data_path"], seq), kitti / seq)
    (kitti / "camera.json").write_text(json.dumps(dict(info["camera"], fx=0.58 * 128, fy=1.92 * 96)))
    return dict(info, kitti=str(kitti))


def best_depth_scale(root, scales):
    """The c minimising the stereo reprojection loss of c x (true depth) over a few left frames at 64 x 64."""
    ds = datasets.FolderDataset(root, ["seq1 2 l", "seq2 3 l", "seq3 1 l"], 64, 64, [0, "s"])
    ssim = SSIM()
    losses = np.zeros(len(scales))
    for i in range(len(ds)):
        item = datasets.batch_to_float({k: paddle.to_tensor(v[None]) for k, v in
                                        ds.get_item(i, np.random.default_rng(0)).items()})
        gt = cv2.resize(item["depth_gt"].numpy()[0, 0], (64, 64), interpolation=cv2.INTER_NEAREST)
        gt[gt <= 0] = 60.0   # sky: far away
        for j, c in enumerate(scales):
            depth = paddle.to_tensor((c * gt)[None, None].astype(np.float32))
            pred = warp_image(item[("color", "s", 0)], depth, item[("K", 0)], item[("inv_K", 0)], item["stereo_T"])
            losses[j] += float(reprojection_loss(pred, item[("color", 0, 0)], ssim).mean())
    return scales[int(np.argmin(losses))]


def test_stereo_loss_is_lowest_at_metric_depth_only_with_the_true_camera(roots):
    scales = np.round(np.arange(0.5, 1.55, 0.05), 2)
    assert abs(best_depth_scale(roots["data_path"], scales) - 1.0) <= 0.05
    assert abs(best_depth_scale(roots["kitti"], scales) - 0.58 / 0.75) <= 0.05


@pytest.mark.slow
def test_train_py_on_the_folder_layout_records_camera_and_metric(roots, tmp_path):
    log_dir = tmp_path / "runs"
    train.main(["--dataset", "folder", "--data_path", roots["data_path"], "--log_dir", str(log_dir),
                "--height", "64", "--width", "64", "--batch_size", "2", "--num_workers", "0", "--weights_init",
                "scratch", "--frame_ids", "0", "--use_stereo", "--max_steps", "2", "--seed", "0"])
    saved = json.loads((log_dir / "mlda" / "models" / "best" / "opt.json").read_text())
    assert saved["dataset"] == "folder" and saved["metric"] is True
    assert saved["camera"] == roots["camera"] and saved["camera"]["baseline"] == BASELINE
    best = json.loads((log_dir / "mlda" / "models" / "best" / "best.json").read_text())
    assert np.isfinite(best["abs_rel"])     # validated against the val sequence's depth maps
    assert os.path.isfile(os.path.join(roots["data_path"], "splits", "train_files.txt"))
