"""utils/io/video.py with the temporal stabiliser (predict.py --temporal): a synthetic KITTI drive rendered as
a video, a stand-in network whose depth is the exact depth with per-frame errors (a smooth log-depth field
drawn afresh each frame, and a scale jitter), TAE with the drive's true poses per frame vs temporal; one
colour range for every frame; the raw depth kept; memory flat over a long generated video."""
import os
import tracemalloc

import cv2
import numpy as np
import pytest

from utils.cameras.camera import CameraChoice, camera_from_matrix
from utils.cameras.poses import camera_matrix, sequence_poses
from utils.geometry.temporal import sequence_median_errors, temporal_alignment_error
from utils.io import image_io, video
from utils.io.output_options import OutputOptions

MIN_DEPTH, MAX_DEPTH = 0.1, 100.0


@pytest.fixture(scope="session")
def drive_video(tmp_path_factory):
    """(video path, exact depths, camera-to-world poses, K) of a 20-frame synthetic drive at 416 x 128."""
    import synthetic
    root = str(tmp_path_factory.getbasetemp() / "temporal_drive")
    info = synthetic.generate(root, progress=False, seed=3, num_drives=2, frames_per_drive=20, width=416, height=128)
    drive = info["drives"][0]
    folder = os.path.join(root, drive, "image_02", "data")
    names = sorted(os.listdir(folder))
    path = str(tmp_path_factory.getbasetemp() / "temporal_drive.avi")
    if not os.path.isfile(path):
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (416, 128))
        for name in names:
            writer.write(cv2.imread(os.path.join(folder, name)))
        writer.release()
    gts = [np.load(os.path.join(root, drive, "depth", "image_02", os.path.splitext(n)[0] + ".npy")) for n in names]
    poses = sequence_poses("kitti", root, drive, range(len(names)))
    return path, gts, poses, camera_matrix(os.path.join(root, drive.split("/")[0]))


def noisy_network(gts, seed, field=0.06, jitter=0.04):
    """predict_disp of a network whose depth is frame t's exact depth (sky: MAX_DEPTH) x exp(smooth field +
    scale jitter), both drawn afresh each frame: errors that move with the picture, not with the scene."""
    rng = np.random.default_rng(seed)
    calls = [0]

    def predict_disp(image):
        gt = gts[calls[0]]
        calls[0] += 1
        h, w = gt.shape
        noise = cv2.resize(rng.normal(0, 1, (h // 16, w // 16)), (w, h), interpolation=cv2.INTER_CUBIC)
        depth = np.where(gt > 0, gt, MAX_DEPTH) * np.exp(field * noise / noise.std() + rng.normal(0, jitter))
        depth = np.clip(depth, MIN_DEPTH, MAX_DEPTH)
        return ((1 / depth - 1 / MAX_DEPTH) / (1 / MIN_DEPTH - 1 / MAX_DEPTH)).astype(np.float32)
    return predict_disp


def run(drive_video, tmp_path, temporal, seed=0, **extra):
    path, gts, _, k = drive_video
    h, w = gts[0].shape
    out = OutputOptions(str(tmp_path), 1.0, MIN_DEPTH, MAX_DEPTH, temporal=temporal, metric=True,
                        video_camera=CameraChoice(camera_from_matrix(k, w, h)), **extra)
    frames, folder, _, report = video.predict_video(path, "drive", noisy_network(gts, seed), out)
    assert frames == len(gts)
    return [np.load(os.path.join(folder, f"drive_{i:06d}_depth.npy")) for i in range(frames)], folder, report


def test_temporal_lowers_tae_by_30_percent_and_keeps_abs_rel(drive_video, tmp_path):
    _, gts, poses, k = drive_video
    masks = [g > 0 for g in gts]
    scores = {}
    for temporal in (False, True):
        depths, _, report = run(drive_video, tmp_path / str(temporal), temporal)
        scores[temporal] = (temporal_alignment_error(depths, poses, k, gts=gts, masks=masks).tae,
                            sequence_median_errors(gts, depths, masks)[0][0])
    assert report.blended > 0.5          # the motion was found on most frames
    (tae_frame, rel_frame), (tae_temporal, rel_temporal) = scores[False], scores[True]
    print(f"TAE {100 * tae_frame:.2f} % per frame, {100 * tae_temporal:.2f} % temporal; abs_rel {rel_frame:.4f}, "
          f"{rel_temporal:.4f}")
    assert tae_temporal <= 0.7 * tae_frame, scores
    assert rel_temporal <= rel_frame + 0.002, scores


def test_one_colour_range_for_every_frame_and_the_raw_depth_kept(drive_video, tmp_path):
    depths, folder, report = run(drive_video, tmp_path, True, save_raw=True)
    lo, hi = report.colour_range
    assert 0 < lo < hi and report.frames == len(depths)
    _, gts, _, _ = drive_video
    own = noisy_network(gts, 0)
    for i, depth in enumerate(depths):
        jpeg = cv2.imread(os.path.join(folder, f"drive_{i:06d}_disp.jpeg"))[..., ::-1].astype(int)
        same_range = image_io.colorize(1 / depth, "magma", (lo, hi)).astype(int)
        assert np.abs(jpeg - same_range).mean() < 3                       # JPEG's loss only
        raw = np.load(os.path.join(folder, f"drive_{i:06d}_depth_raw.npy"))
        expect = image_io.disparity_to_depth(own(None), raw.shape[::-1], 1.0, MIN_DEPTH, MAX_DEPTH)
        np.testing.assert_allclose(raw, expect, rtol=1e-6)               # as the network gave it


def test_memory_flat_over_a_long_generated_video(tmp_path):
    """Peak traced memory of 240 frames is within 25 % of 60 frames' (a bound, not a timing)."""
    peaks = {}
    for frames in (60, 240):
        path = str(tmp_path / f"long{frames}.avi")
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (96, 64))
        rng = np.random.default_rng(0)
        texture = rng.integers(0, 255, (64, 400, 3), dtype=np.uint8)
        for t in range(frames):
            writer.write(np.ascontiguousarray(np.roll(texture, -t, axis=1)[:, :96]))
        writer.release()

        def predict_disp(image, rng=rng):
            return (0.2 + 0.01 * rng.normal(0, 1, (32, 48))).astype(np.float32)
        tracemalloc.start()
        video.predict_video(path, "long", predict_disp, OutputOptions(str(tmp_path / str(frames)), temporal=True))
        peaks[frames] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peaks[240] < 1.25 * peaks[60], peaks
