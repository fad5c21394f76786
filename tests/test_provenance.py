"""utils/geometry/provenance.py: the training data record of a weights folder and the caption shown beside its
depth. Demonstration weights (the synthetic scene) never claim metres; metric weights claim metres without a
caveat only for the training camera; a folder without a record says its training data is unknown."""
import pytest

from utils.geometry import provenance
from utils.geometry.provenance import DEMONSTRATION, UNKNOWN_DATA, Provenance

SYNTHETIC_OPT = {"dataset": "synthetic", "split": "synthetic", "data_path": "data/synthetic_kitti",
                 "use_stereo": True}
KITTI_STEREO = {"dataset": "kitti", "split": "eigen_zhou", "data_path": "kitti_data", "use_stereo": True}
FOLDER_MONO = {"dataset": "folder", "split": "s", "data_path": "mine", "use_stereo": False, "metric": False,
               "camera": {"fx": 500.0, "width": 640}}


def test_record_says_dataset_steps_and_how_the_scale_was_fixed():
    record = provenance.training_record(SYNTHETIC_OPT, steps=54, epoch=2)
    assert (record["dataset"], record["steps"], record["epoch"]) == ("synthetic", 54, 2)
    assert (record["depth"], record["metric_from"]) == ("metric", "KITTI stereo (x5.4)")
    assert provenance.training_record({**FOLDER_MONO, "use_stereo": True, "metric": True})["metric_from"] == \
        "stereo baseline"
    sparse = {**KITTI_STEREO, "use_stereo": False, "metric": True, "sparse_depth_weight": 0.1}
    assert provenance.training_record(sparse)["metric_from"] == "sparse depth"
    mono = provenance.training_record(FOLDER_MONO)
    assert (mono["depth"], mono["metric_from"], mono["camera"]) == ("relative", None, FOLDER_MONO["camera"])
    # KITTI layout data passed with --dataset kitti but the synthetic split is still the synthetic scene
    assert provenance.training_record({**KITTI_STEREO, "split": "synthetic"})["dataset"] == "synthetic"


def test_read_record_prefers_the_saved_one_and_knows_when_there_is_none():
    saved = {"dataset": "kitti", "description": "KITTI raw", "steps": 7}
    assert provenance.read_record({**SYNTHETIC_OPT, provenance.RECORD_KEY: saved}) is saved
    assert provenance.read_record(SYNTHETIC_OPT)["dataset"] == "synthetic"   # this project's opt.json, no record
    assert provenance.read_record({"height": 192, "width": 640}) is None      # the original layout


def test_synthetic_weights_are_demonstration_and_never_say_metres():
    demo = Provenance(provenance.training_record(SYNTHETIC_OPT), metric=True)
    assert demo.kind == "demonstration"
    for camera in provenance.CAMERA_STATES:
        assert demo.caption(camera) == DEMONSTRATION
        assert "metres" not in demo.caption(camera)


@pytest.mark.parametrize("camera, caveat", [("training", None), ("differs", "this photo's camera differs"),
                                            ("unknown", "this photo's camera is unknown")])
def test_metres_carry_the_camera_caveat_unless_the_camera_is_the_training_one(camera, caveat):
    caption = Provenance(provenance.training_record(KITTI_STEREO), metric=True).caption(camera)
    assert caption.startswith("weights trained on KITTI raw; ") and "metres" in caption
    if caveat is None:
        assert "assume" not in caption
    else:
        assert caveat in caption and "metres assume the training camera" in caption


def test_unknown_training_data_and_relative_depth():
    unknown = Provenance(None, metric=True)
    assert unknown.kind == "unknown" and unknown.caption().startswith(UNKNOWN_DATA)
    relative = Provenance(provenance.training_record(FOLDER_MONO), metric=False)
    assert relative.kind == "trained" and "unknown scale (relative" in relative.caption() and "metres" not in \
        relative.caption()
    assert "road plane" in relative.caption(ground=True)


def test_camera_state_from_the_focal_rescaling_record():
    assert provenance.camera_state(None) == "unknown"
    assert provenance.camera_state({"focal_rescale": 1.004}) == "training"
    assert provenance.camera_state({"focal_rescale": 1.3}) == "differs"
    meta = Provenance(provenance.training_record(KITTI_STEREO), True).metadata({"focal_rescale": 0.7})
    assert meta["weights"] == "trained" and "differs" in meta["caption"]
    assert meta[provenance.RECORD_KEY]["dataset"] == "kitti"
