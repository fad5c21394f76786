"""utils/io/output_options.py: the options of the photo/video output path built from a run's command line:
which check of the velodyne scan applies, and whether point clouds are written."""
from types import SimpleNamespace

import pytest

from utils.io.output_options import OutputOptions


def run(**given):
    opt = dict(eval_mono=False, camera_height=None, colormap="magma", save_png16=False, save_ply=False,
               video_layout="auto", velo_filename="scan.bin", calib_path="calib", temporal=True, save_raw=False,
               camera=None)
    return SimpleNamespace(**{**opt, **given})


@pytest.mark.parametrize("metric,given,median", [
    (True, {}, False),                          # metric weights: their own factor is checked
    (False, {}, True),                          # relative depth has no scale: median scaling
    (True, {"eval_mono": True}, True),          # --eval_mono asks for median scaling
    (False, {"camera_height": 1.65}, False),    # the ground plane's factor is checked
])
def test_velodyne_check_scaling(metric, given, median):
    predictor = SimpleNamespace(scale_factor=5.4, metric=metric, min_depth=0.1, max_depth=100.0)
    out = OutputOptions.from_run(run(**given), predictor, "camera", "out", "predict.py")
    assert out.velodyne == ("scan.bin", "calib", median)
    assert (out.output_dir, out.scale_factor, out.progress) == ("out", 5.4, "predict.py")
    assert out.camera_height == given.get("camera_height")


def test_point_clouds_only_with_save_ply():
    predictor = SimpleNamespace(scale_factor=1.0, metric=False, min_depth=0.1, max_depth=100.0)
    out = OutputOptions.from_run(run(velo_filename=None, camera_height=1.65), predictor, "camera", "out", None)
    assert out.velodyne is None and out.camera == "camera" and out.ply_camera is None
    out = OutputOptions.from_run(run(save_ply=True), predictor, "camera", "out", None)
    assert out.ply_camera == "camera"
