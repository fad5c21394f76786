"""utils/cameras/folder_layout.py and datasets/folder.py: K at every scale against camera.json (numpy), the
stereo transform in metres, depth maps (.npy and .png), stale and missing cameras refused in one line,
the split rule, and the synthetic generator's folder layout (its baseline checked photometrically)."""
import json
import os
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

import synthetic
import trainer
from datasets import DataError, FolderDataset, MissingFileError, train_val_datasets
from utils.cameras import folder_layout
from utils.cameras.camera import read_camera

FRAMES = [0, -1, 1, "s"]
# a sequence with its own, off-centre camera of the same image size (the loader does not check optics)
OWN_CAMERA = {"fx": 70.0, "fy": 55.0, "cx": 20.0, "cy": 30.0, "width": 96, "height": 72, "baseline": 0.3}


@pytest.fixture(scope="module")
def folder_root(tmp_path_factory):
    """3 sequences x 5 frames at 96 x 72 (generated), then seq2 given its own camera.json."""
    base = tmp_path_factory.getbasetemp() / "synthetic_folder_data"
    info = synthetic.generate_folder(str(base), num_sequences=3, frames=5, width=96, height=72, progress=False)
    root = tmp_path_factory.mktemp("folder") / "root"
    shutil.copytree(info["data_path"], root)
    (root / "seq2" / "camera.json").write_text(json.dumps(OWN_CAMERA))
    return dict(info, root=str(root))


def _numpy_K(cam, w, h, flip):
    """K of camera.json at w x h, written out independently of folder_layout."""
    fx, fy, cx, cy = cam["fx"] * w / cam["width"], cam["fy"] * h / cam["height"], \
        cam["cx"] * w / cam["width"], cam["cy"] * h / cam["height"]
    return np.array([[fx, 0, w - 1 - cx if flip else cx, 0], [0, fy, cy, 0], [0, 0, 1, 0], [0, 0, 0, 1]])


class FixedRng:
    """An rng whose draws make a training get_item flip (or not) without colour jitter (jitter, then flip)."""

    def __init__(self, flip):
        self.values = [0.0, 1.0 if flip else 0.0]

    def uniform(self, *args):
        return self.values.pop(0)


def test_camera_from_the_generator_is_not_kittis(folder_root):
    cam = read_camera(os.path.join(folder_root["data_path"], "camera.json"))
    assert (cam["width"], cam["height"]) == (96, 72)                       # 4:3, KITTI is 3.3:1
    assert cam["fx"] == cam["fy"] == 72.0 and cam["baseline"] == 0.12      # KITTI: 0.58 W, 1.92 H, 0.54 m
    assert cam["fx"] != 0.58 * 96 and cam["fy"] != 1.92 * 72


@pytest.mark.parametrize("h,w", [(64, 64), (64, 160)])
def test_K_at_every_scale_from_camera_json_with_flips(folder_root, h, w):
    root = folder_root["root"]
    default = json.load(open(os.path.join(root, "camera.json")))
    ds = FolderDataset(root, ["seq1 2 l", "seq2 1 r"], h, w, FRAMES, is_train=True)
    assert ds.camera == read_camera(os.path.join(root, "camera.json"))
    for index, cam, side in ((0, default, "l"), (1, OWN_CAMERA, "r")):
        for flip in (False, True):
            item = ds.get_item(index, FixedRng(flip))
            for s in range(4):
                expected = _numpy_K(cam, w // 2 ** s, h // 2 ** s, flip)
                np.testing.assert_allclose(item[("K", s)], expected, rtol=1e-6)
                np.testing.assert_allclose(item[("inv_K", s)], np.linalg.inv(expected), rtol=1e-5, atol=1e-7)
                assert item[("color", 0, s)].shape[-2:] == (h // 2 ** s, w // 2 ** s)
            # t_x = -baseline for a left image, +baseline for a right one, negated when mirrored (metres)
            sign = (-1 if side == "l" else 1) * (-1 if flip else 1)
            expected_t = np.eye(4)
            expected_t[0, 3] = sign * cam["baseline"]
            np.testing.assert_allclose(item["stereo_T"], expected_t)
    assert ds.metric_stereo


def test_depth_maps_npy_and_png_in_metres_flipped_with_the_image(folder_root, tmp_path):
    root = folder_root["root"]
    ds = FolderDataset(root, ["seq1 2 l", "seq1 2 r"], 64, 64, [0], is_train=True)
    assert ds.load_depth and ds.depth_gt_size == (72, 96)
    stored = np.load(os.path.join(root, "seq1", "depth", "000002.npy"))
    np.testing.assert_array_equal(ds.get_item(0, FixedRng(False))["depth_gt"][0], stored)
    np.testing.assert_array_equal(ds.get_item(0, FixedRng(True))["depth_gt"][0], stored[:, ::-1])
    assert not ds.get_item(1, FixedRng(False))["depth_gt"].any()           # a right image: no ground truth
    # the same map as KITTI's uint16 metres x 256 png
    png_root = tmp_path / "png"
    shutil.copytree(os.path.join(root, "seq1"), png_root / "seq1")
    shutil.copy(os.path.join(root, "camera.json"), png_root)
    os.remove(png_root / "seq1" / "depth" / "000002.npy")
    Image.fromarray(np.round(stored * 256).astype(np.uint16)).save(png_root / "seq1" / "depth" / "000002.png")
    got = FolderDataset(str(png_root), ["seq1 2 l"], 64, 64, [0]).get_item(0, FixedRng(False))["depth_gt"][0]
    np.testing.assert_allclose(got, stored, atol=1 / 512)


def test_mono_layout_without_right_images_or_depth(folder_root, tmp_path):
    root = tmp_path / "mono"
    os.makedirs(root / "walk" / "left")
    for i in (1, 2, 10):   # natural order: 1, 2, 10 (not 1, 10, 2)
        shutil.copy(os.path.join(folder_root["root"], "seq1", "left", f"00000{i % 5}.png"),
                    root / "walk" / "left" / f"f{i}.png")
    cam = dict(folder_root["camera"])
    del cam["baseline"]
    (root / "camera.json").write_text(json.dumps(cam))
    ds = FolderDataset(str(root), ["walk 1 l"], 64, 64, [0, -1, 1])
    item = ds.get_item(0, FixedRng(False))
    assert "stereo_T" not in item and "depth_gt" not in item and not ds.metric_stereo
    assert ds.find_image("walk", 2, "l").endswith("f10.png")
    with pytest.raises(MissingFileError, match="right"):       # stereo asked of a mono layout
        FolderDataset(str(root), ["walk 1 l"], 64, 64, FRAMES)


def _one_line(excinfo, *names):
    message = str(excinfo.value)
    assert "\n" not in message
    for name in names:
        assert name in message
    return message


def test_missing_and_invalid_camera_are_one_line_naming_the_file(folder_root, tmp_path):
    root = tmp_path / "nocam"
    shutil.copytree(os.path.join(folder_root["root"], "seq1"), root / "seq1")
    with pytest.raises(MissingFileError) as e:
        FolderDataset(str(root), ["seq1 1 l"], 64, 64, [0])
    _one_line(e, str(root / "camera.json"), '"fx"')
    (root / "camera.json").write_text('{"fx": 72, "fy": 72, "cx": 48}')
    with pytest.raises(DataError) as e:
        FolderDataset(str(root), ["seq1 1 l"], 64, 64, [0])
    _one_line(e, "camera.json", "width, height")
    # train.py turns it into '<script>: error: ...' (Trainer.make_datasets, without building networks)
    opt = SimpleNamespace(data_path=str(root), split="eigen_zhou", height=64, width=64, png=False,
                          use_depth_hints=False, depth_hint_path=None, val_max_images=0, dataset="folder",
                          get=lambda k, d=None: d)
    with pytest.raises(SystemExit) as e:
        trainer.Trainer.make_datasets(SimpleNamespace(opt=opt, frame_ids=[0]))
    assert str(e.value).startswith("train.py: error: ") and "\n" not in str(e.value)
    assert not os.path.exists(root / "splits" / "train_files.txt.tmp")


def test_stale_camera_after_resizing_is_refused(folder_root, tmp_path):
    root = tmp_path / "stale"
    shutil.copytree(os.path.join(folder_root["root"], "seq1"), root / "seq1")
    shutil.copy(os.path.join(folder_root["root"], "camera.json"), root)
    left = root / "seq1" / "left"
    # every image resized (the first one is checked when the dataset is made)
    for name in os.listdir(left):
        Image.open(left / name).resize((48, 36)).save(left / name)
    with pytest.raises(DataError) as e:
        FolderDataset(str(root), ["seq1 1 l"], 64, 64, [0])
    _one_line(e, str(left / "000000.png"), str(root / "camera.json"), "48 x 36", "96 x 72")
    # only a later frame resized: refused when that frame is read
    shutil.rmtree(root / "seq1")
    shutil.copytree(os.path.join(folder_root["root"], "seq1"), root / "seq1")
    Image.open(left / "000003.png").resize((48, 36)).save(left / "000003.png")
    ds = FolderDataset(str(root), ["seq1 3 l"], 64, 64, [0])
    with pytest.raises(DataError) as e:
        ds.get_item(0, FixedRng(False))
    _one_line(e, str(left / "000003.png"), "camera.json")


def test_split_rule():
    # 3+ sequences: whole sequences, last = test (every frame, left), the one before = val
    s = folder_layout.make_splits({"a": 5, "b": 4, "c": 6, "d": 3}, stereo={"a"})
    assert s["train"] == ["a 1 l", "a 1 r", "a 2 l", "a 2 r", "a 3 l", "a 3 r", "b 1 l", "b 2 l"]
    assert s["val"] == ["c 1 l", "c 2 l", "c 3 l", "c 4 l"] and s["test"] == ["d 0 l", "d 1 l", "d 2 l"]
    # 2 sequences: test = the last; val = the last ceil(10 %) frames of the first, neighbours inside
    s = folder_layout.make_splits({"a": 30, "b": 4})
    assert s["train"] == [f"a {i} l" for i in range(1, 26)] and s["val"] == ["a 28 l"]
    assert s["test"] == [f"b {i} l" for i in range(4)]
    # 1 sequence of 40: the last 4 frames test, the 4 before val, train frames' neighbours all in train
    s = folder_layout.make_splits({"a": 40})
    assert s["test"] == [f"a {i} l" for i in range(36, 40)] and s["val"] == ["a 33 l", "a 34 l"]
    assert s["train"] == [f"a {i} l" for i in range(1, 31)]
    s = folder_layout.make_splits({"a": 12})     # 2 frames each for val and test: no val frame has both neighbours
    assert s["val"] == [] and s["test"] == ["a 10 l", "a 11 l"] and s["train"][-1] == "a 6 l"
    with pytest.raises(DataError, match="too few frames"):
        folder_layout.make_splits({"a": 4})


def test_splits_written_once_and_the_users_own_kept(folder_root, tmp_path):
    root = tmp_path / "splits"
    for seq in ("seq1", "seq2", "seq3"):
        shutil.copytree(os.path.join(folder_root["data_path"], seq), root / seq)
    shutil.copy(os.path.join(folder_root["data_path"], "camera.json"), root)
    folder = folder_layout.ensure_splits(str(root))
    assert sorted(os.listdir(folder)) == ["test_files.txt", "train_files.txt", "val_files.txt"]
    assert (root / "splits" / "test_files.txt").read_text().split("\n")[0] == "seq3 0 l"
    (root / "splits" / "train_files.txt").write_text("seq2 2 r\n")
    train, val = train_val_datasets(str(root), "ignored", 64, 64, FRAMES, dataset="folder")
    assert train.lines == [("seq2", 2, "r")] and val.lines[0] == ("seq2", 1, "l")
    # the factory's dataset names: each layout's own class, KITTI's sensors refused here, a typo named
    assert isinstance(train, FolderDataset) and train.depth_gt_size == (72, 96) and train.num_skipped == 0
    with pytest.raises(DataError, match="velodyne rings or oxts"):
        train_val_datasets(str(root), "ignored", 64, 64, FRAMES, dataset="folder", lidar_beams=16)
    with pytest.raises(DataError, match="'kiti': not one of kitti, synthetic, folder"):
        train_val_datasets(str(root), "ignored", 64, 64, FRAMES, dataset="kiti")


def test_synthetic_right_image_is_the_left_shifted_by_the_real_baseline(folder_root):
    """Pixel (u, v) of the left image at depth z is at u - fx b / z in the right one: with the written
    baseline (0.12 m) the images agree far better than with KITTI's 0.54 m."""
    root, cam = folder_root["data_path"], folder_root["camera"]
    left = np.asarray(Image.open(os.path.join(root, "seq1", "left", "000002.png")), np.float32)
    right = np.asarray(Image.open(os.path.join(root, "seq1", "right", "000002.png")), np.float32)
    depth = np.load(os.path.join(root, "seq1", "depth", "000002.npy"))
    v, u = np.nonzero(depth > 0)

    def error(baseline):
        ur = np.round(u - cam["fx"] * baseline / depth[v, u]).astype(int)
        ok = ur >= 0
        return np.abs(right[v[ok], ur[ok]] - left[v[ok], u[ok]]).mean()

    assert error(cam["baseline"]) < 0.6 * error(0.54)


def test_synthetic_command_line_writes_the_folder_layout(tmp_path):
    import subprocess
    import sys
    out = tmp_path / "cli"
    run = subprocess.run([sys.executable, "-m", "synthetic", "--layout", "folder", "--out", str(out), "--drives", "1",
                          "--frames", "3", "--height", "24", "--width", "32"], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert run.returncode == 0, run.stderr
    assert "--dataset folder" in run.stdout
    cam = read_camera(str(out / "camera.json"))
    assert (cam["width"], cam["height"], cam["baseline"]) == (32, 24, 0.12)
    for side in ("left", "right"):
        assert folder_layout.frame_names(str(out), "seq1", "l" if side == "left" else "r") == \
            ["000000.jpg", "000001.jpg", "000002.jpg"]
    assert np.load(out / "seq1" / "depth" / "000002.npy").shape == (24, 32)
