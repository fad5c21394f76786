"""calibrate.py end to end on the rendered rig (tests/support/chessboard.py): chessboard photos -> camera.json ->
undistorted / rectified frames that the folder dataset takes as they are; bad input ends in one line and writes
nothing."""
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

import calibrate
from datasets.folder import FolderDataset
from support import chessboard as cb
from test_calibration import matched, projected
from utils.cameras import calibration, folder_layout
from utils.cameras.camera import read_camera

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    return cb.stereo_rig(str(tmp_path_factory.getbasetemp() / "rig"))


def refused(argv, capsys):
    """The one-line error of a refused run (and that it exits non-zero): sys.exit's message, or the option
    parser's line on stderr (progress bars aside)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        calibrate.main(argv)
    if e.value.code == 2:
        message = capsys.readouterr().err.strip().splitlines()[-1].split("\r")[-1]
    else:
        message = str(e.value.code)
    assert message.startswith("calibrate.py: error:") and "\n" not in message, message
    return message


def corners_in(path):
    return calibration.find_corners(cv2.imread(path, cv2.IMREAD_GRAYSCALE), cb.BOARD).reshape(-1, 2)


def test_mono_photos_to_camera_json_to_undistorted_frames(rig, tmp_path, capsys):
    left, _, poses = rig
    root = tmp_path / "root"
    calibrate.main(["--images", left, "--board", "9x6", "--square", "0.025", "--out", str(root / "camera.json")])
    out = capsys.readouterr().out
    camera = read_camera(str(root / "camera.json"))        # the one camera.json reader accepts it
    record = json.loads((root / "camera.json").read_text())["calibration"]
    assert camera["fx"] == pytest.approx(cb.LEFT_K[0, 0], rel=0.005) and abs(camera["cx"] - cb.LEFT_K[0, 2]) < 1
    assert len(record["left"]["distortion"]) == 5 and record["rms_px"] < 0.5
    assert f"RMS reprojection error {record['rms_px']:.3f} px" in out and "--rectify" in out
    assert sorted(os.listdir(root)) == ["camera.json"]          # mono: no maps (built from the record when needed)

    calibrate.main(["--rectify", "--calibration", str(root / "camera.json"), "--left", left,
                    "--out", str(root / "seq")])
    frames = sorted(os.listdir(root / "seq" / "left"))
    assert frames == sorted(os.listdir(left)) and not (root / "seq" / "right").exists()
    assert folder_layout.sequences(str(root)) == ["seq"]
    assert read_camera(str(root / "seq" / "camera.json"))["fx"] == camera["fx"]
    # undistorted with K kept: the corners now sit where a pinhole with the true K (no distortion) puts them
    truth = projected(cb.LEFT_K, np.zeros(5), poses[0])
    found = corners_in(str(root / "seq" / "left" / "view00.png"))
    assert np.abs(matched(found, truth) - truth).max() < 1.0


def test_stereo_photos_to_rectified_layout_the_dataset_reads(rig, tmp_path, capsys):
    left, right, _ = rig
    root = tmp_path / "root"
    calibrate.main(["--images", left, "--right", right, "--square", "0.025", "--out", str(root / "camera.json")])
    out = capsys.readouterr().out
    camera = json.loads((root / "camera.json").read_text())
    assert camera["baseline"] == pytest.approx(cb.BASELINE, rel=0.01) and "baseline" in out
    assert camera["calibration"]["maps"] == "camera_maps.npz" and (root / "camera_maps.npz").is_file()
    # the saved maps are the record's own (so other tools can remap with them)
    from utils.cameras import rectify
    saved, built = rectify.load_maps(str(root / "camera_maps.npz"), cb.SIZE), rectify.build_maps(camera)
    assert all(np.array_equal(saved[s][i], built[s][i]) for s in ("left", "right") for i in (0, 1))

    calibrate.main(["--rectify", "--calibration", str(root / "camera.json"), "--left", left, "--right", right,
                    "--out", str(root / "drive")])
    assert sorted(os.listdir(root / "drive" / "right")) == sorted(os.listdir(root / "drive" / "left"))
    rows = [corners_in(str(root / "drive" / side / "view03.png")) for side in ("left", "right")]
    rows = [r if r[-1, 0] > r[0, 0] else r[::-1] for r in rows]   # both run left to right
    assert np.abs(rows[0][:, 1] - rows[1][:, 1]).max() < 0.5
    # the folder dataset takes the sequence as it is: its camera, stereo in metres
    data = FolderDataset(str(root), ["drive 2 l"], 64, 96, [0, -1, 1, "s"])
    item = data.get_item(0, np.random.default_rng(0))
    assert item["stereo_T"][0, 3] == pytest.approx(-camera["baseline"]) and data.metric_stereo
    assert item[("K", 0)][0, 0] == pytest.approx(camera["fx"] * 96 / cb.SIZE[0], rel=1e-6)


def test_no_paddle_and_kitti_import_in_a_fresh_process(tmp_path):
    calib = tmp_path / "calib_cam_to_cam.txt"
    calib.write_text("S_rect_02: 1.242000e+03 3.750000e+02\n"
                     "P_rect_02: 7.215377e+02 0 6.095593e+02 4.485728e+01 0 7.215377e+02 1.728540e+02 0 0 0 1 0\n")
    code = ("import sys, calibrate; calibrate.main(['--import', sys.argv[1], '--out', sys.argv[2]]); "
            "assert 'paddle' not in sys.modules, 'paddle imported'")
    run = subprocess.run([sys.executable, "-c", code, str(calib), str(tmp_path / "camera.json")], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "camera.json").read_text())["fx"] == pytest.approx(721.5377)


def test_bad_input_one_line_nothing_written(rig, tmp_path, capsys):
    left, right, _ = rig
    blank = tmp_path / "blank"
    blank.mkdir()
    for i in range(3):
        cv2.imwrite(str(blank / f"b{i}.png"), np.full((480, 640), 128, np.uint8))
    out = tmp_path / "out" / "camera.json"
    assert "no chessboard of 9 x 6 inner corners found in any of the 3 photo(s)" in refused(
        ["--images", str(blank), "--out", str(out)], capsys)
    few = tmp_path / "few"
    shutil.copytree(blank, few)
    for name in sorted(os.listdir(left))[:3]:
        shutil.copy(os.path.join(left, name), few / name)
    needed = f"3 usable views in {few}, at least {calibration.MIN_VIEWS} are needed; 3 photo(s) without a board"
    assert needed in refused(["--images", str(few), "--out", str(out)], capsys)
    orphan = tmp_path / "right"
    shutil.copytree(right, orphan)
    os.remove(orphan / "view05.png")
    assert "without a partner of the same name in the other folder (view05.png)" in refused(
        ["--images", left, "--right", str(orphan), "--square", "0.025", "--out", str(out)], capsys)
    assert "stereo calibration needs --square" in refused(["--images", left, "--right", right, "--out", str(out)],
                                                          capsys)
    assert "exclude each other" in refused(["--images", left, "--import", str(out), "--out", str(out)], capsys)
    assert not (tmp_path / "out").exists()
    # --rectify: a camera.json without a calibration record, frames of another size, an existing sequence
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"fx": 500, "fy": 500, "cx": 320, "cy": 240, "width": 640, "height": 480}))
    seq = tmp_path / "root" / "seq"
    assert "holds no calibration record" in refused(
        ["--rectify", "--calibration", str(plain), "--left", left, "--out", str(seq)], capsys)
    calibrate.main(["--images", left, "--out", str(tmp_path / "cal" / "camera.json")])
    small = tmp_path / "small"
    shutil.copytree(left, small)
    cv2.imwrite(str(small / "view11.png"), np.zeros((240, 320), np.uint8))
    assert "view11.png is 320 x 240 but the calibration is for 640 x 480" in refused(
        ["--rectify", "--calibration", str(tmp_path / "cal" / "camera.json"), "--left", str(small), "--out", str(seq)],
        capsys)
    assert not (tmp_path / "root").exists()
    assert "the calibration is of one camera" in refused(
        ["--rectify", "--calibration", str(tmp_path / "cal" / "camera.json"), "--left", left, "--right", right,
         "--out", str(seq)], capsys)
    again = ["--rectify", "--calibration", str(tmp_path / "cal" / "camera.json"), "--left", left, "--out", str(seq)]
    calibrate.main(again)
    before = os.path.getmtime(seq / "left" / "view00.png")
    assert "pass --overwrite" in refused(again, capsys)
    assert os.path.getmtime(seq / "left" / "view00.png") == before
