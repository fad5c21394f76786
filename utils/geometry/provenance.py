"""What the depth of a weights folder means: the record of its training data, and the caption every script,
page and service shows beside its depth. Paddle-free (the ONNX route and the web page read it too).

The record, "training_data" in a weights folder's opt.json (written by the trainer with every weights folder,
copied into deploy.json by export.py):

    "dataset"      synthetic | kitti | folder (options.py --dataset)
    "description"  the data in words, e.g. "the synthetic street scene (python -m synthetic)"
    "data_path", "split"   where the frames came from
    "camera"       the folder layout's camera (fx, fy, cx, cy, width, height, baseline), or none (KITTI's)
    "steps", "epoch"       optimiser steps taken when the folder was written, and the epoch (from 0) it was in
    "depth"        "metric" or "relative"; "metric_from": what fixed the scale (a stereo baseline, KITTI's
                   stereo x5.4, sparse depth or velocity)

A weights folder without the record whose opt.json is this project's (it has "dataset") gets one rebuilt from
its options, without steps; one without either (the original MLDA-Net layout) has unknown training data.

The caption: weights trained on the synthetic scene are demonstration weights, whose numbers mean nothing on a
real photo; metric depth is in metres only for the camera the weights learned (a network judges distance by
apparent size): a photo whose camera is known to differ (--camera, its EXIF) or is unknown says so.
"""
from utils.geometry.depth import depth_scale

RECORD_KEY = "training_data"
DESCRIPTIONS = {
    "synthetic": "the synthetic street scene (python -m synthetic)",
    "kitti": "KITTI raw",
    "folder": "one's own camera (folder layout)",
}
DEMONSTRATION = "demonstration weights trained on the synthetic street scene \u2014 not meaningful on real photos"
UNKNOWN_DATA = "unknown training data"
CAMERA_STATES = ("training", "differs", "unknown")   # the photo's camera against the training camera
SAME_FOCAL = 0.01    # focal ratios within 1 % of 1: the photo's camera is taken as the training camera


def metric_source(opt):
    """What fixed the metric scale of training options `opt` (dict-like), or None for relative depth."""
    _, metric, _ = depth_scale(opt.get("use_stereo"), metric=opt.get("metric"))
    if not metric:
        return None
    if opt.get("sparse_depth_weight") or opt.get("velocity_weight"):
        return "sparse depth" if opt.get("sparse_depth_weight") else "velocity"
    if opt.get("metric"):
        return "stereo baseline"
    return "KITTI stereo (x5.4)"


def training_record(opt, steps=None, epoch=None):
    """The "training_data" record of training options `opt` (the trainer's, or a saved opt.json)."""
    dataset = "synthetic" if opt.get("dataset") == "synthetic" or opt.get("split") == "synthetic" \
        else opt.get("dataset", "kitti")
    source = metric_source(opt)
    record = {"dataset": dataset, "description": DESCRIPTIONS.get(dataset, dataset),
              "data_path": opt.get("data_path"), "split": opt.get("split"), "camera": opt.get("camera"),
              "steps": steps, "epoch": epoch, "depth": "metric" if source else "relative", "metric_from": source}
    return record


def read_record(opt):
    """The record of a weights folder's options (networks.load_weights_folder's opt, or deploy.json): the saved
    one, else one rebuilt from this project's opt.json, else None (unknown training data)."""
    record = opt.get(RECORD_KEY)
    if isinstance(record, dict):
        return record
    if opt.get("dataset"):
        return training_record(opt)
    return None


def camera_state(focal_metadata=None):
    """The photo's camera against the training camera, from its focal rescaling record (utils/cameras/photo.py
    FocalRescale.of's metadata; None: no camera known, taken to be the training camera)."""
    if not focal_metadata:
        return "unknown"
    return "training" if abs(focal_metadata["focal_rescale"] - 1) < SAME_FOCAL else "differs"


class Provenance:
    """The training data of the weights (`record`, None: unknown) and whether their depth is `metric` (the
    predictor's decision, utils.geometry.depth.depth_scale): `kind`, `caption(camera)`, `metadata(...)`."""

    def __init__(self, record, metric):
        self.record, self.metric = record, bool(metric)

    @property
    def kind(self):
        """demonstration (the synthetic scene), trained (real data) or unknown (no record): a short label."""
        if self.record is None:
            return "unknown"
        return "demonstration" if self.record.get("dataset") == "synthetic" else "trained"

    def units(self, camera="unknown", ground=False):
        """What the depth numbers are for a photo whose camera is `camera` (CAMERA_STATES); `ground`: scaled
        from the road plane at a given camera height (utils/geometry/ground_plane.py)."""
        if ground:
            return "approximate metres from the road plane at the given camera height"
        if not self.metric:
            return "depth up to an unknown scale (relative, no metric units)"
        if camera == "training":
            return "depth in metres"
        if camera == "differs":
            return "metres assume the training camera; this photo's camera differs (depth rescaled by its focal ratio)"
        return "metres assume the training camera; this photo's camera is unknown"

    def caption(self, camera="unknown", ground=False):
        """One line: the training data, then the units (demonstration weights: no units, they mean nothing)."""
        if self.kind == "demonstration":
            return DEMONSTRATION
        head = UNKNOWN_DATA if self.record is None else f"weights trained on {self.record.get('description')}"
        return f"{head}; {self.units(camera, ground)}"

    def metadata(self, focal_metadata=None, ground=False):
        """What <stem>_depth.json records about the weights for one photo (`focal_metadata` its focal rescaling
        record or None): the caption, the kind of weights and the record."""
        return {"caption": self.caption(camera_state(focal_metadata), ground), "weights": self.kind,
                RECORD_KEY: self.record}


def of_options(opt, metric):
    """The Provenance of a weights folder's or deploy.json's options and the predictor's metric decision."""
    return Provenance(read_record(opt), metric)


def run_line(prov, focal=None, ground=False):
    """The line predict.py and inference.py print once: the caption for the run's given camera (`focal`: their
    utils.cameras.photo.FocalRescale, None without rescaling), else for a photo of unknown camera (each photo's
    own caption, after its EXIF, is in its <stem>_depth.json); `ground`: --camera_height."""
    given = focal is not None and focal.cameras.given
    return f"depth: {prov.caption(camera_state(focal.of()[2]) if given else 'unknown', bool(ground))}"


def header_caption(prov, focal_metadata=None):
    """The caption of one photo as an HTTP header value (ASCII: the dash becomes '-')."""
    return prov.caption(camera_state(focal_metadata)).replace("\u2014", "-")
