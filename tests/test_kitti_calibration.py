"""utils/cameras/kitti_calibration.py: KITTI's calibration files parsed, a missing one named."""
import numpy as np
import pytest

from utils.cameras.kitti_calibration import read_calib_dir, read_calib_file


def test_read_calib_file_parses_numbers_and_keeps_strings(tmp_path):
    path = tmp_path / "calib_velo_to_cam.txt"
    path.write_text("calib_time: 15-Mar-2012 11:37:16\nR: 1 0 0 0 1 0 0 0 1\nT: -4.069766e-03 -7.631618e-02 -2.717806e-01\n")
    calib = read_calib_file(str(path))
    assert calib["calib_time"] == "15-Mar-2012 11:37:16"
    np.testing.assert_allclose(calib["T"], [-4.069766e-03, -7.631618e-02, -2.717806e-01])
    with pytest.raises(FileNotFoundError, match="calib_cam_to_cam.txt"):
        read_calib_dir(str(tmp_path))
