"""export_gt_depth.py and utils/io/ground_truth.py: gt_depths.npz from velodyne scans and from annotated
depth pngs."""
import os

import numpy as np
import pytest

import export_gt_depth
import synthetic
from datasets import read_split
from tests.synthetic_fixture import synthetic_kitti  # noqa: F401
from utils.io import ground_truth
from utils.sensors.velodyne import generate_depth_map


def test_velodyne_and_annotated_ground_truth(synthetic_kitti, tmp_path):
    root = synthetic_kitti["data_path"]
    split = synthetic.split_dir(root)
    lines = read_split(os.path.join(split, "test_files.txt"))
    out = tmp_path / "velo.npz"
    export_gt_depth.main(["--data_path", root, "--split", split, "--output", str(out)])
    maps = np.load(out, allow_pickle=True)["data"]
    assert maps.dtype == object and len(maps) == len(lines)
    folder, frame, _ = lines[2].split()
    scan = os.path.join(root, folder, "velodyne_points", "data", f"{int(frame):010d}.bin")
    want = generate_depth_map(os.path.join(root, folder.split("/")[0]), scan, cam=2, vel_depth=True)
    assert maps[2].dtype == np.float32
    np.testing.assert_array_equal(maps[2], want)
    # annotated (eigen_benchmark style): the rendered depth quantised to 1/256 m
    out = tmp_path / "annotated.npz"
    ground_truth.export_gt_depth(root, split, source="annotated", output=str(out), progress=False)
    dense = np.load(out, allow_pickle=True)["data"]
    rendered = np.load(os.path.join(root, folder, "depth", "image_02", f"{int(frame):010d}.npy"))
    np.testing.assert_allclose(dense[2], rendered, atol=1 / 512 + 1e-6)


def test_errors(synthetic_kitti, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        export_gt_depth.main(["--data_path", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "no such folder" in err and len(err.strip().splitlines()) == 1
    split = tmp_path / "split"
    split.mkdir()
    (split / "test_files.txt").write_text(f"{synthetic_kitti['drives'][1]} 42 l\n")
    with pytest.raises(SystemExit, match=r"1 ground-truth files missing, first: .*0000000042.bin"):
        export_gt_depth.main(["--data_path", synthetic_kitti["data_path"], "--split", str(split)])
    assert not (split / "gt_depths.npz").exists()
