"""utils/cameras/kitti_layout.py: KITTI's paths, camera constants and split files; the Paddle-free modules
and scripts load no Paddle."""
import os

import numpy as np
import pytest

from utils.cameras import kitti_layout as kl


def test_kitti_layout_paths_camera_and_splits(tmp_path):
    """The one home of KITTI's paths, camera constants and split files."""
    d = "2011_09_26/2011_09_26_drive_0001_sync"
    assert kl.image_path("/k", d, 7, "r", ".png") == f"/k/{d}/image_03/data/0000000007.png"
    assert kl.velodyne_path("/k", d, 7) == f"/k/{d}/velodyne_points/data/0000000007.bin"
    assert kl.annotated_depth_path("/k", d, 7, "l") == f"/k/{d}/proj_depth/groundtruth/image_02/0000000007.png"
    assert kl.hint_path("/h", d, 7, "r") == f"/h/{d}/image_03/0000000007.npy"
    assert kl.calib_dir("/k", d) == "/k/2011_09_26"
    # the first extension that exists, the other one as fallback, None when neither does
    assert kl.find_image("/k", d, 7, "l", ".jpg", exists=lambda p: p.endswith(".png")).endswith("0000000007.png")
    assert kl.find_image("/k", d, 7, "l", ".png", exists=lambda p: True).endswith(".png")
    assert kl.find_image("/k", d, 7, "l", exists=lambda p: False) is None
    k = kl.intrinsics(640, 192)
    np.testing.assert_allclose(k, [[0.58 * 640, 0, 320, 0], [0, 1.92 * 192, 96, 0], [0, 0, 1, 0], [0, 0, 0, 1]], rtol=1e-6)
    assert [kl.stereo_T(s, f)[0, 3] for s in "lr" for f in (False, True)] == pytest.approx([-0.1, 0.1, 0.1, -0.1])
    assert kl.STEREO_SCALE_FACTOR == pytest.approx(0.54 / kl.STEREO_BASELINE)
    assert kl.split_folder("eigen") == os.path.join(kl.SPLITS_ROOT, "eigen") and kl.split_folder(str(tmp_path)) == str(tmp_path)
    assert kl.gt_source("eigen_benchmark") == "annotated" and kl.gt_source("eigen") == "velodyne"
    (tmp_path / "test_files.txt").write_text(f"{d} 3 l\n\n{d} 4\n")
    with pytest.raises(kl.LayoutError, match=r"test_files.txt:3"):
        kl.read_split(str(tmp_path / "test_files.txt"))
    with pytest.raises(kl.MissingFileError):
        kl.read_split(str(tmp_path / "none.txt"))
    from datasets import DataError
    assert DataError is kl.LayoutError   # callers catching DataError catch the layout's errors


def test_data_scripts_import_without_paddle():
    """The layout and the Paddle-free scripts' modules load no Paddle (nor networks/datasets):
    precompute_depth_hints.py imports Paddle only where it scores candidates with the training loss."""
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ("import sys; import utils.cameras.kitti_layout, utils.sensors.velodyne, utils.geometry.metrics, "
            "export_gt_depth, precompute_depth_hints; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('paddle', 'networks', 'datasets', 'losses')]; assert not bad, bad")
    run = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
