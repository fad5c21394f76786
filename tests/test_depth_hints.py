"""precompute_depth_hints.py: fused SGM on a real stereo pair, on the synthetic KITTI, files, resuming."""
import os

import numpy as np
import pytest

import precompute_depth_hints as hints
import synthetic
from datasets import DataError, read_split
from utils.cameras.kitti_layout import HINT_INVALID_PENALTY, STEREO_BASELINE
from tests.synthetic_fixture import synthetic_kitti, synthetic_kitti_hints  # noqa: F401


def test_fused_hints_on_middlebury_motorcycle():
    """skimage's rectified pair with ground-truth disparity (inf = unknown), at its own size: the
    fused hint is within 3 px on >= 80 % of the ground-truth pixels and no worse than the best single
    SGBM run minus one point (fusion wins on coverage)."""
    from skimage import data
    left, right, disp = data.stereo_motorcycle()
    gt = np.isfinite(disp)
    fx = 0.58 * left.shape[1]
    fused = hints.hints_for_pair(left, right, "l")
    singles = hints.candidate_depths(left, right, "l", fx)
    assert singles.shape == (12,) + left.shape[:2]

    def within_3px(depth):
        d = np.where(depth > 0, fx * STEREO_BASELINE / np.maximum(depth, 1e-9), np.inf)
        return (np.abs(d - np.where(gt, disp, 0)) <= 3)[gt].mean()

    best_single = max(within_3px(d) for d in singles)
    assert within_3px(fused) >= 0.80
    assert within_3px(fused) >= best_single - 0.01
    # each fused value is one of the candidates at that pixel
    assert ((singles == fused[None]).any(0)).all()


def test_fusion_picks_the_lowest_error_and_penalises_invalid():
    depths = np.array([[[0.0, 2.0]], [[5.0, 3.0]]], np.float32)      # 2 candidates x 1 x 2 pixels
    errors = np.array([[[0.1, 0.4]], [[0.2, 0.3]]]) + HINT_INVALID_PENALTY * (depths <= 0)
    np.testing.assert_array_equal(hints.fuse(depths, errors), [[5.0, 3.0]])


def test_right_image_hints_use_flipped_pairs():
    """A right image's hint equals the left-image hint of the mirrored pair, mirrored back."""
    from skimage import data
    left, right, _ = data.stereo_motorcycle()
    left, right = left[200:296, 100:420], right[200:296, 100:420]
    direct = hints.candidate_depths(right, left, "r", 100.0)
    mirrored = hints.candidate_depths(right[:, ::-1], left[:, ::-1], "l", 100.0)[:, :, ::-1]
    np.testing.assert_array_equal(direct, mirrored)
    assert (direct > 0).mean() > 0.3


@pytest.mark.parametrize("index", [0, 1, 2])
def test_synthetic_hints_match_rendered_depth(synthetic_kitti_hints, index):
    """Hints (training units x 5.4 = metres) against the exact rendered depth: median error < 5 %."""
    info = synthetic_kitti_hints
    root = info["data_path"]
    line = sorted(read_split(os.path.join(synthetic.split_dir(root), "train_files.txt")))[index * 3]
    folder, frame, side = line.split()
    cam = "image_02" if side == "l" else "image_03"
    hint = np.load(os.path.join(info["depth_hint_path"], folder, cam, f"{int(frame):010d}.npy"))
    assert hint.shape == (1, 128, 416) and hint.dtype == np.float32
    rendered = np.load(os.path.join(root, folder, "depth", cam, f"{int(frame):010d}.npy"))
    valid = (hint[0] > 0) & (rendered > 0)
    assert valid.mean() > 0.4
    rel = np.abs(5.4 * hint[0][valid] - rendered[valid]) / rendered[valid]
    assert np.median(rel) < 0.05


def test_resumable_cli(synthetic_kitti_hints, tmp_path, capsys):
    info = synthetic_kitti_hints
    lines = sorted(read_split(os.path.join(synthetic.split_dir(info["data_path"]), "train_files.txt")))[:2]
    split = tmp_path / "split.txt"
    split.write_text("\n".join(lines) + "\n")
    out = tmp_path / "hints"
    args = ["--data_path", info["data_path"], "--filenames", str(split), "--save_path", str(out),
            "--height", "128", "--width", "416", "--num_workers", "1"]
    hints.main(args)
    assert "2 computed now" in capsys.readouterr().out
    folder, frame, side = lines[0].split()
    path = out / folder / ("image_02" if side == "l" else "image_03") / f"{int(frame):010d}.npy"
    ours = np.load(path)
    shared = np.load(os.path.join(info["depth_hint_path"], folder, path.parent.name, path.name))
    np.testing.assert_array_equal(ours, shared)            # same hints as the fixture's ensure()
    hints.main(args)
    assert "0 computed now, 2 already there" in capsys.readouterr().out
    hints.main(args + ["--overwrite"])
    assert "2 computed now" in capsys.readouterr().out
    assert not [p for p in out.rglob("*.tmp*")]


def test_parallel_workers_give_the_same_hints(synthetic_kitti_hints, tmp_path, monkeypatch):
    """Two spawned workers: the same hints as one process, and the workers exit on their own (code 0).
    A pool ended by terminate() SIGTERMs them (exit code -15), and each worker's Paddle then printed
    a 'FatalError: Termination signal' block at the end of a successful run."""
    import multiprocessing
    ctx, pools = multiprocessing.get_context("spawn"), []
    make_pool = ctx.Pool
    monkeypatch.setattr(ctx, "Pool", lambda *a, **k: pools.append(make_pool(*a, **k)) or pools[-1])
    info = synthetic_kitti_hints
    lines = sorted(read_split(os.path.join(synthetic.split_dir(info["data_path"]), "train_files.txt")))[2:4]
    needed, done = hints.compute_hints(info["data_path"], lines, str(tmp_path), 128, 416, num_workers=2,
                                       progress=False)
    assert (needed, done) == (2, 2)
    for line in lines:
        folder, frame, side = line.split()
        rel = os.path.join(folder, "image_02" if side == "l" else "image_03", f"{int(frame):010d}.npy")
        np.testing.assert_array_equal(np.load(tmp_path / rel), np.load(os.path.join(info["depth_hint_path"], rel)))
    assert len(pools) == 1 and [w.exitcode for w in pools[0]._pool] == [0, 0]


def test_missing_image_and_bad_split_are_one_line_errors(synthetic_kitti, tmp_path):
    drive = synthetic_kitti["drives"][0]
    with pytest.raises(DataError, match=r"0000000099.jpg"):
        hints.compute_hints(synthetic_kitti["data_path"], [f"{drive} 99 l"], str(tmp_path), 32, 96, progress=False)
    with pytest.raises(SystemExit) as e:
        hints.main(["--data_path", synthetic_kitti["data_path"], "--split", str(tmp_path / "none")])
    assert "error:" in str(e.value.code) and "train_files.txt" in str(e.value.code)
    assert not os.listdir(tmp_path)


def write_plane_stereo_root(root, depth=3.7, fx=400.0, baseline=0.3, width=320, height=192, frames=5):
    """One's own stereo camera (utils/cameras/folder_layout.py) looking at a textured fronto-parallel plane at
    `depth` metres: the right image is the left one shifted by fx * baseline / depth px (sub-pixel,
    bilinear). Returns the disparity in stored pixels."""
    import json
    import cv2
    from PIL import Image
    disp = fx * baseline / depth
    rng = np.random.RandomState(0)
    tex = cv2.GaussianBlur(rng.rand(height, width + 96, 3).astype(np.float32), (0, 0), 1.5)
    tex = (255 * (tex - tex.min()) / (tex.max() - tex.min())).astype(np.float32)
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    def sample(dx):
        return np.clip(cv2.remap(tex, xs + 32 + dx, ys, cv2.INTER_LINEAR), 0, 255).astype(np.uint8)

    for side, img in (("left", sample(0.0)), ("right", sample(disp))):   # right(x) = left(x + d)
        os.makedirs(os.path.join(root, "seq", side))
        for i in range(frames):
            Image.fromarray(img).save(os.path.join(root, "seq", side, f"f{i}.png"))
    with open(os.path.join(root, "camera.json"), "w") as f:
        json.dump({"fx": fx, "fy": fx, "cx": width / 2, "cy": height / 2, "width": width, "height": height,
                   "baseline": baseline}, f)
    return disp


def test_folder_hints_are_metres_of_a_known_plane(tmp_path, capsys):
    """The folder layout (found by ROOT/camera.json): hints from the camera's fx scaled to the working
    width and its baseline in metres land on the plane's depth (3.7 m) within 2 %, for the left and the
    right image, at ROOT/depth_hints/<sequence>/<left|right>/<frame>.npy, where the loader reads them."""
    from datasets import FolderDataset
    root = str(tmp_path / "own")
    write_plane_stereo_root(root)            # 32.4 px at 320 wide, 16.2 px at the working 160
    hints.main(["--data_path", root, "--height", "96", "--width", "160", "--num_workers", "1"])
    assert "2 hints in" in capsys.readouterr().out   # ROOT/splits made: train lines 'seq 1 l', 'seq 1 r'
    for side in ("left", "right"):
        hint = np.load(os.path.join(root, "depth_hints", "seq", side, "f1.npy"))
        assert hint.shape == (1, 96, 160) and hint.dtype == np.float32
        valid = hint[0] > 0
        assert valid.mean() > 0.5          # SGBM leaves the first 64 columns of its reference image empty
        assert np.median(np.abs(hint[0][valid] - 3.7)) / 3.7 < 0.02
        assert np.percentile(np.abs(hint[0][valid] - 3.7), 90) / 3.7 < 0.05
    # KITTI's convention on the same pair (fx = 0.58 W, baseline 0.1) would give 0.58 * 160 * 0.1 / 16.2 = 0.57 "m"
    data = FolderDataset(root, ["seq 1 r"], 96, 160, [0, "s"], use_depth_hints=True)
    sample = data.get_item(0, np.random.RandomState(0))
    np.testing.assert_array_equal(sample["depth_hint"],
                                  np.load(os.path.join(root, "depth_hints", "seq", "right", "f1.npy")))


def test_folder_hints_need_a_baseline(tmp_path):
    import json
    root = tmp_path / "own"
    write_plane_stereo_root(str(root))
    cam = json.loads((root / "camera.json").read_text())
    del cam["baseline"]
    (root / "camera.json").write_text(json.dumps(cam))
    with pytest.raises(SystemExit) as e:
        hints.main(["--data_path", str(root), "--num_workers", "1"])
    assert "baseline" in str(e.value.code) and "\n" not in str(e.value.code)
    assert not (root / "depth_hints").exists()
