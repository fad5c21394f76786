"""utils/geometry/motion.py: the camera motion between two frames of a synthetic drive, found from the frames
and the first frame's exact depth, against the drive's true poses; scaled depth gives a scaled translation;
no motion for the first frame, a size change or a blank frame."""
import os

import numpy as np
import pytest

from tests.synthetic_fixture import synthetic_kitti  # noqa: F401
from utils.cameras.poses import camera_matrix, sequence_poses
from utils.geometry.motion import FrameMotion
from utils.geometry.temporal import relative_pose
from utils.io.image_io import load_image


def _frames(info, n=3):
    root = info["data_path"]
    drive = info["drives"][-1]
    folder = os.path.join(root, drive, "image_02", "data")
    names = sorted(os.listdir(folder))[:n]
    rgbs = [np.asarray(load_image(os.path.join(folder, name))) for name in names]
    depths = [np.load(os.path.join(root, drive, "depth", "image_02", os.path.splitext(name)[0] + ".npy")) for name in names]
    depths = [np.where(d > 0, d, 0.0) for d in depths]
    return rgbs, depths, sequence_poses("kitti", root, drive, range(n)), camera_matrix(os.path.join(root, drive.split("/")[0]))


def _angle(r):
    return np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1)))


@pytest.mark.parametrize("scale", [1.0, 0.2])
def test_motion_of_a_synthetic_drive_matches_its_poses(synthetic_kitti, scale):  # noqa: F811
    rgbs, depths, poses, k = _frames(synthetic_kitti)
    motion = FrameMotion()
    assert motion(rgbs[0], depths[0] * scale, k) is None          # the first frame has no motion
    for t in (1, 2):
        found = motion(rgbs[t], depths[t] * scale, k)
        assert found is not None
        transform, used_k = found
        true = relative_pose(poses[t - 1], poses[t])
        np.testing.assert_array_equal(used_k, k)
        assert _angle(transform[:3, :3] @ true[:3, :3].T) < 0.3                      # degrees
        # driving forward, the translation along the axis is the weakest part (a 416 x 128 frame): 15 %
        assert np.linalg.norm(transform[:3, 3] - scale * true[:3, 3]) < 0.15 * scale * np.linalg.norm(true[:3, 3])


def test_no_motion_after_a_size_change_or_on_a_blank_frame(synthetic_kitti):  # noqa: F811
    rgbs, depths, _, k = _frames(synthetic_kitti, 2)
    motion = FrameMotion()
    motion(rgbs[0], depths[0], k)
    assert motion(rgbs[1][:, :-8], depths[1][:, :-8], k) is None
    assert motion(np.zeros_like(rgbs[1]), depths[1], k) is None
