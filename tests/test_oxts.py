"""utils/sensors/oxts.py and the synthetic KITTI's oxts/ (velocity supervision): the distance travelled between two
frames, read back from the synthetic GPS/IMU records and timestamps, equals the true distance
between the camera-2 centres of the drive's poses; KITTI's timestamp format to the nanosecond;
the dataset's ("travel", f) keys; missing records are named."""
import os
from datetime import datetime, timezone

import numpy as np
import pytest

from datasets import KITTIRAWDataset, MissingFileError, read_split
from synthetic import split_dir
from synthetic.scene import CAM2_OFFSET
from tests.synthetic_fixture import SETTINGS, synthetic_kitti  # noqa: F401
from utils.sensors.oxts import OXTS_FIELDS, DriveOxts, OxtsError, parse_timestamp, read_oxts, speed


def _centres(info, drive):
    """(camera-2 centres, camera-0 centres) of every frame, from poses/<drive>.txt (3 x 4 camera-2-to-
    world per line); camera 0, the synthetic vehicle's reference point, is CAM2_OFFSET along camera 2's
    x axis away."""
    poses = np.loadtxt(os.path.join(info["data_path"], "poses", os.path.basename(drive) + ".txt")).reshape(-1, 3, 4)
    return poses[:, :, 3], poses[:, :, 3] - CAM2_OFFSET * poses[:, :, 0]


@pytest.mark.parametrize("drive_index", [0, 1])
def test_synthetic_oxts_give_the_true_travelled_distance(synthetic_kitti, drive_index):
    """Between neighbouring frames: the vehicle's (camera 0's) displacement within 0.1 %; camera 2's,
    which the pose network sees, within 0.5 % (it sits 6 cm beside the vehicle's reference and turns
    with it, as KITTI's cameras sit beside its IMU)."""
    drive = synthetic_kitti["drives"][drive_index]
    oxts = DriveOxts(os.path.join(synthetic_kitti["data_path"], drive))
    cam2, cam0 = _centres(synthetic_kitti, drive)
    n = SETTINGS["frames_per_drive"]
    for a in range(n):
        for b in (a - 1, a + 1):
            if 0 <= b < n:
                assert oxts.travel(a, b) == pytest.approx(np.linalg.norm(cam0[b] - cam0[a]), rel=1e-3), (a, b)
                assert oxts.travel(a, b) == pytest.approx(np.linalg.norm(cam2[b] - cam2[a]), rel=5e-3), (a, b)
    # two frames apart: still the chord within 0.5 % (the path barely bends in 0.2 s)
    assert oxts.travel(1, 3) == pytest.approx(np.linalg.norm(cam0[3] - cam0[1]), rel=5e-3)
    assert oxts.travel(2, 1) == oxts.travel(1, 2) > 0.5     # symmetric; the car moves ~1 m per frame


def test_synthetic_oxts_files_have_kittis_format(synthetic_kitti):
    drive = os.path.join(synthetic_kitti["data_path"], synthetic_kitti["drives"][0])
    values = read_oxts(os.path.join(drive, "oxts", "data", f"{3:010d}.txt"))
    assert values.shape == (len(OXTS_FIELDS),) == (30,)
    assert abs(values[0] - 49.0) < 0.01 and abs(values[1] - 8.4) < 0.01           # lat, lon near the origin
    vf, vl, vu = values[8:11]
    assert vf > 5 and abs(vl) < 1e-9 and abs(vu) < 0.1 * vf    # driving forward along the path's tangent
    assert speed(values) == pytest.approx(np.hypot(values[6], values[7]), rel=1e-3)  # |(vf, vl, vu)| = |(vn, ve)|
    with open(os.path.join(drive, "oxts", "timestamps.txt")) as f:
        stamps = f.read().splitlines()
    assert len(stamps) == SETTINGS["frames_per_drive"]
    times = [parse_timestamp(s) for s in stamps]
    assert np.allclose(np.diff(times), 0.1036, atol=1e-6)


def test_timestamp_keeps_nanoseconds():
    t = parse_timestamp("2011-09-26 13:02:25.964389445\n")
    whole = datetime(2011, 9, 26, 13, 2, 25, tzinfo=timezone.utc).timestamp()
    assert t - whole == pytest.approx(0.964389445, abs=1e-6)
    assert parse_timestamp("2011-09-26 13:02:26.067000000") - t == pytest.approx(0.102610555, abs=1e-6)


def test_dataset_travel_keys_and_missing_oxts(synthetic_kitti, tmp_path):
    root = synthetic_kitti["data_path"]
    lines = read_split(os.path.join(split_dir(root), "train_files.txt"))[:3]
    ds = KITTIRAWDataset(root, lines, 64, 192, [0, -1, 1], load_travel=True, load_depth=False)
    for i, line in enumerate(lines):
        folder, frame, _ = line.split()
        centres, _ = _centres(synthetic_kitti, folder)
        item = ds.get_item(i, np.random.default_rng(0))
        for f in (-1, 1):
            assert item[("travel", f)].shape == (1,) and item[("travel", f)].dtype == np.float32
            true = np.linalg.norm(centres[int(frame) + f] - centres[int(frame)])
            assert item[("travel", f)][0] == pytest.approx(true, rel=5e-3)
    assert ("travel", -1) not in KITTIRAWDataset(root, lines, 64, 192, [0, -1, 1], load_depth=False).get_item(
        0, np.random.default_rng(0))
    # a dataset without oxts (generated before they existed, or not downloaded) names the file
    drive = lines[0].split()[0]
    os.rename(os.path.join(root, drive, "oxts"), os.path.join(root, drive, "oxts_away"))
    try:
        with pytest.raises(MissingFileError, match="oxts"):
            KITTIRAWDataset(root, lines[:1], 64, 192, [0, -1, 1], load_travel=True, load_depth=False)
        with pytest.raises(OxtsError, match="missing oxts"):
            DriveOxts(os.path.join(root, drive)).travel(0, 1)
    finally:
        os.rename(os.path.join(root, drive, "oxts_away"), os.path.join(root, drive, "oxts"))
