"""utils/cameras/poses.py: pose files read and refused; KITTI devkit's oxts-to-pose rule against the
geometry of the sphere; the synthetic KITTI's oxts taken through its calibration chain give its exact
camera-2 poses; both layouts' sequence poses; and exact depth with those poses has a TAE of the
rounding only, where the wrong convention or no motion does not."""
import os

import numpy as np
import pytest

import synthetic
from tests.synthetic_fixture import synthetic_kitti  # noqa: F401
from utils.cameras.poses import (EARTH_RADIUS, PoseError, camera_matrix, imu_to_camera, kitti_pose_file,
                                 oxts_camera_poses, oxts_to_imu_poses, read_pose_file, rotation_xyz,
                                 sequence_poses)
from utils.geometry.temporal import temporal_alignment_error


def _write(path, rows):
    with open(path, "w") as f:
        f.write("".join(" ".join(f"{v:.12g}" for v in row) + "\n" for row in rows))


def test_pose_file_round_trip_and_refusals(tmp_path):
    pose = np.eye(4)
    pose[:3, :3] = rotation_xyz(0.1, -0.2, 0.3)
    pose[:3, 3] = (1.0, 2.0, 3.0)
    path = tmp_path / "poses.txt"
    _write(path, [np.eye(4)[:3].ravel(), pose[:3].ravel()])
    with open(path, "a") as f:
        f.write("\n")                                              # a trailing blank line is fine
    assert np.allclose(read_pose_file(path), [np.eye(4), pose])
    _write(path, [np.arange(11)])
    with pytest.raises(PoseError, match=r"poses.txt:1: expected 12 numbers"):
        read_pose_file(path)
    _write(path, [np.eye(4)[:3].ravel(), (2 * np.eye(4))[:3].ravel()])
    with pytest.raises(PoseError, match=r"poses.txt:2: the 3 x 3 part is not a rotation"):
        read_pose_file(path)
    with pytest.raises(PoseError, match="missing pose file"):
        read_pose_file(tmp_path / "absent.txt")


def _record(lat, lon, alt=0.0, roll=0.0, pitch=0.0, yaw=0.0):
    return [lat, lon, alt, roll, pitch, yaw] + [0.0] * 24


def test_oxts_poses_follow_the_sphere():
    """At the equator the Mercator scale is 1: a longitude step of d degrees is r d pi / 180 metres east
    exactly, a small latitude step r d pi / 180 north to third order; altitude is up; orientation
    Rz(yaw) Ry(pitch) Rx(roll); everything relative to the first record, in its own axes."""
    d = 1e-3
    records = [_record(0, 0, 10.0, yaw=np.pi / 2), _record(0, d, 12.0, yaw=np.pi / 2), _record(d, 0, 10.0, yaw=np.pi / 2)]
    poses = oxts_to_imu_poses(records)
    step = EARTH_RADIUS * np.radians(d)
    assert np.allclose(poses[0], np.eye(4))
    # the first IMU faces north (yaw 90 degrees): east is its -y (right), north its +x (forward)
    assert np.allclose(poses[1][:3, 3], (0.0, -step, 2.0), atol=1e-9)
    assert np.allclose(poses[2][:3, 3], (step, 0.0, 0.0), atol=1e-6)
    turned = oxts_to_imu_poses([_record(0, 0), _record(0, 0, roll=0.1, pitch=0.2, yaw=0.3)])
    rx = np.array([[1, 0, 0], [0, np.cos(0.1), -np.sin(0.1)], [0, np.sin(0.1), np.cos(0.1)]])
    ry = np.array([[np.cos(0.2), 0, np.sin(0.2)], [0, 1, 0], [-np.sin(0.2), 0, np.cos(0.2)]])
    rz = np.array([[np.cos(0.3), -np.sin(0.3), 0], [np.sin(0.3), np.cos(0.3), 0], [0, 0, 1]])
    assert np.allclose(turned[1][:3, :3], rz @ ry @ rx)
    # at 49 degrees north the scale is cos(49 degrees) of the first frame's latitude (yaw 0: facing east)
    north = oxts_to_imu_poses([_record(49, 8.4), _record(49, 8.4 + d)])
    assert np.allclose(north[1][:3, 3], (np.cos(np.radians(49)) * step, 0.0, 0.0), rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("drive_index", [0, 1])
def test_synthetic_oxts_through_the_calibration_give_the_exact_poses(synthetic_kitti, drive_index):
    root = synthetic_kitti["data_path"]
    drive = synthetic_kitti["drives"][drive_index]
    exact = read_pose_file(kitti_pose_file(root, drive))
    from_oxts = oxts_camera_poses(os.path.join(root, drive), os.path.join(root, drive.split("/")[0]))
    assert len(exact) == len(from_oxts) == synthetic_kitti["frames_per_drive"]
    assert np.abs(from_oxts[:, :3, 3] - exact[:, :3, 3]).max() < 1e-6        # metres
    assert np.abs(from_oxts[:, :3, :3] - exact[:, :3, :3]).max() < 1e-9
    # a subset of frames: world = the first of them
    sub = oxts_camera_poses(os.path.join(root, drive), os.path.join(root, drive.split("/")[0]), frames=[2, 4])
    assert np.allclose(sub, np.linalg.inv(exact[2]) @ exact[[2, 4]], atol=1e-6)


def test_calibration_chain_and_camera_matrix(synthetic_kitti):
    date_dir = os.path.join(synthetic_kitti["data_path"], synthetic_kitti["drives"][0].split("/")[0])
    k = synthetic.intrinsics(synthetic_kitti["width"], synthetic_kitti["height"])
    assert np.allclose(camera_matrix(date_dir), k)                  # the loader's 0-based K
    # camera 3 sits 0.54 m right of camera 2: the same IMU point is 0.54 m further left in camera 3
    c2, c3 = imu_to_camera(date_dir, 2), imu_to_camera(date_dir, 3)
    assert np.allclose((c3 @ np.linalg.inv(c2))[:3, 3], (-synthetic.BASELINE, 0, 0))


def test_missing_calibration_is_one_line(tmp_path):
    with pytest.raises(PoseError, match="calib_imu_to_velo.txt"):
        imu_to_camera(str(tmp_path))


def test_sequence_poses_of_both_layouts(synthetic_kitti, tmp_path):
    root = synthetic_kitti["data_path"]
    drive = synthetic_kitti["drives"][1]
    exact = read_pose_file(kitti_pose_file(root, drive))
    assert np.allclose(sequence_poses("kitti", root, drive, [1, 3]), exact[[1, 3]])
    # without the pose file (KITTI raw), the oxts: same poses, world = the first frame asked for
    copy = tmp_path / "kitti"
    date = drive.split("/")[0]
    os.makedirs(copy / drive)
    os.symlink(os.path.join(root, drive, "oxts"), copy / drive / "oxts")
    for name in os.listdir(os.path.join(root, date)):
        if name.endswith(".txt"):
            os.symlink(os.path.join(root, date, name), copy / date / name)
    assert np.allclose(sequence_poses("kitti", str(copy), drive, [1, 3]), np.linalg.inv(exact[1]) @ exact[[1, 3]],
                       atol=1e-6)
    folder = synthetic.generate_folder(str(tmp_path / "folder"), num_sequences=1, frames=4, width=48, height=36,
                                       progress=False)
    poses = sequence_poses("folder", folder["data_path"], "seq1", [0, 2])
    assert np.allclose(poses[0], np.eye(4)) and poses[1][2, 3] > 1.0        # driving forward (z), ~1 m a frame
    path = os.path.join(folder["data_path"], "seq1", "poses.txt")
    with open(path) as f:
        lines = f.readlines()
    with open(path, "w") as f:
        f.writelines(lines[:3])
    with pytest.raises(PoseError, match="3 poses for 4 frames"):
        sequence_poses("folder", folder["data_path"], "seq1", [0])


def test_exact_depth_and_read_poses_have_a_rounding_tae(synthetic_kitti):
    """The synthetic drive's exact depth with its poses (file or oxts): TAE of the half-pixel rounding
    only; the same depth with world-to-camera matrices taken for poses, or with no motion, is far off."""
    root = synthetic_kitti["data_path"]
    drive = synthetic_kitti["drives"][1]
    n = synthetic_kitti["frames_per_drive"]
    depths = [np.load(os.path.join(root, drive, "depth", "image_02", f"{i:010d}.npy")) for i in range(n)]
    masks = [d > 0 for d in depths]
    k = synthetic.intrinsics(synthetic_kitti["width"], synthetic_kitti["height"])
    poses = sequence_poses("kitti", root, drive, range(n))
    exact = temporal_alignment_error(depths, poses, k, masks=masks, align="none").tae
    from_oxts = temporal_alignment_error(depths, oxts_camera_poses(os.path.join(root, drive), os.path.join(
        root, drive.split("/")[0])), k, masks=masks, align="none").tae
    assert exact < 0.015 and from_oxts == pytest.approx(exact, abs=1e-6)
    wrong = temporal_alignment_error(depths, np.linalg.inv(poses), k, masks=masks, align="none").tae
    still = temporal_alignment_error(depths, np.tile(np.eye(4), (n, 1, 1)), k, masks=masks, align="none").tae
    assert wrong > 5 * exact and still > 5 * exact
