"""Session fixtures with the synthetic KITTI of the data-pipeline tests; other tests may reuse them:

    from tests.synthetic_fixture import synthetic_kitti, synthetic_kitti_hints  # noqa: F401

synthetic_kitti: synthetic.generate's info dict (info["data_path"] is the root; splits in
synthetic.split_dir(root)) for 2 drives x 7 frames at 416 x 128: train = drive 1, frames 1-4,
both sides (8 lines); val = drive 1, frame 5, both sides (2 lines, so that Trainer.validate and the
best folder run); test = drive 2, left, frames 0-6.
synthetic_kitti_hints: the same, plus fused depth hints of every train/val line at 128 x 416 in
<root>/depth_hints (info["depth_hint_path"]).
"""
import os

import pytest

from tests.support.shared import shared_folder

SETTINGS = dict(seed=0, num_drives=2, frames_per_drive=7, width=416, height=128)   # 7 frames: val = frame 5


@pytest.fixture(scope="session")
def synthetic_kitti(tmp_path_factory):
    import synthetic

    def build(folder):
        synthetic.generate(folder, progress=False, **SETTINGS)

    # built once for all of the run's processes; generate() then reuses it (the same settings) for the info
    return synthetic.generate(shared_folder(tmp_path_factory, "synthetic_kitti_data", build), progress=False,
                              **SETTINGS)


@pytest.fixture(scope="session")
def synthetic_kitti_hints(synthetic_kitti, tmp_path_factory):
    import precompute_depth_hints

    def build(_):
        precompute_depth_hints.ensure(synthetic_kitti["data_path"], progress=False)

    shared_folder(tmp_path_factory, "synthetic_kitti_hints", build)   # into the dataset's folder, once
    return dict(synthetic_kitti, depth_hint_path=os.path.join(synthetic_kitti["data_path"], "depth_hints"))
