"""datasets/kitti.py: keys and shapes, intrinsics, flips with the stereo sign, jitter, errors."""
import os
import random

import numpy as np
import paddle
import pytest
from PIL import Image

import synthetic
from datasets import (DataError, KITTIRAWDataset, MissingFileError, batch_to_float, collate, draw_color_jitter,
                      read_split)
from datasets.kitti import LANCZOS
from tests.synthetic_fixture import synthetic_kitti, synthetic_kitti_hints  # noqa: F401
from utils.io.image_io import to_chw

FRAMES = [0, -1, 1, "s"]


def _train_lines(info):
    return read_split(os.path.join(synthetic.split_dir(info["data_path"]), "train_files.txt"))


def _dataset(info, h, w, lines=None, **kw):
    kw.setdefault("use_depth_hints", "depth_hint_path" in info)
    kw.setdefault("depth_hint_path", info.get("depth_hint_path"))
    return KITTIRAWDataset(info["data_path"], lines or _train_lines(info), h, w, FRAMES, **kw)


def _seed_for(flip, jitter):
    """A seed whose RandomState's first two draws (jitter, then flip decision) are as asked."""
    for seed in range(100):
        rng = np.random.RandomState(seed)
        if (rng.uniform() > 0.5) == jitter and (rng.uniform() > 0.5) == flip:
            return seed


def _sample(ds, index, flip, jitter):
    """ds.get_item(index, rng) with an rng whose flip and jitter decisions are the ones asked (as floats)."""
    return batch_to_float(ds.get_item(index, np.random.RandomState(_seed_for(flip, jitter))))


@pytest.mark.parametrize("h,w", [(64, 192), (96, 320), (128, 416)])
def test_keys_and_shapes(synthetic_kitti_hints, h, w):
    ds = _dataset(synthetic_kitti_hints, h, w, is_train=True, depth_gt_size=(128, 416))
    sent = ds[0]
    assert "depth_hint_mask" not in sent   # the workers do not send it: batch_to_float derives it
    inputs = batch_to_float(sent)
    # what the losses and networks read: every scale of the target, scale 0 of the sources; the
    # network inputs (not the stereo partner) jittered
    made = {("color", 0, s) for s in range(4)} | {("color", f, 0) for f in FRAMES} | \
        {("color_aug", f, 0) for f in FRAMES if f != "s"}
    assert {k for k in inputs if isinstance(k, tuple) and k[0].startswith("color")} == made
    for key in made:
        x = inputs[key]
        assert x.shape == (3, h >> key[2], w >> key[2]) and x.dtype == np.float32
        assert 0 <= x.min() and x.max() <= 1
    for s in range(4):
        k = inputs[("K", s)]
        np.testing.assert_allclose(k[:2, :3], [[0.58 * (w >> s), 0, 0.5 * (w >> s)], [0, 1.92 * (h >> s), 0.5 * (h >> s)]], rtol=1e-6)
        np.testing.assert_allclose(inputs[("inv_K", s)] @ k, np.eye(4), atol=1e-5)
    assert inputs["stereo_T"].shape == (4, 4)
    assert inputs["depth_hint"].shape == inputs["depth_hint_mask"].shape == (1, h, w)
    np.testing.assert_array_equal(inputs["depth_hint_mask"], inputs["depth_hint"] > 0)
    assert inputs["depth_gt"].shape == (1, 128, 416) and (inputs["depth_gt"] > 0).mean() > 0.05
    assert len(ds) == 8


def test_scales_are_successive_lanczos_resizes(synthetic_kitti):
    ds = _dataset(synthetic_kitti, 64, 192, use_depth_hints=False)
    inputs = batch_to_float(ds[0])
    folder, frame, side = ds.lines[0]
    img = Image.open(os.path.join(synthetic_kitti["data_path"], folder, f"image_0{2 if side == 'l' else 3}", "data", f"{frame:010d}.jpg")).convert("RGB")
    for s in range(4):
        img = img.resize((192 >> s, 64 >> s), LANCZOS)
        np.testing.assert_array_equal(inputs[("color", 0, s)], to_chw(img))
    np.testing.assert_array_equal(inputs[("color_aug", 0, 0)], inputs[("color", 0, 0)])   # no jitter: eval


def test_flip_mirrors_images_hints_depth_and_stereo_sign(synthetic_kitti_hints):
    ds = _dataset(synthetic_kitti_hints, 128, 416, is_train=True, depth_gt_size=(128, 416))
    for index in range(2):
        side = ds.lines[index][2]
        plain, flipped = _sample(ds, index, False, False), _sample(ds, index, True, False)
        for f in FRAMES:
            np.testing.assert_allclose(flipped[("color", f, 0)], plain[("color", f, 0)][:, :, ::-1], atol=1.5 / 255)
        np.testing.assert_array_equal(flipped["depth_hint"], plain["depth_hint"][:, :, ::-1])   # hints at 128 x 416
        np.testing.assert_array_equal(flipped["depth_gt"], plain["depth_gt"][:, :, ::-1])
        sign = -1 if side == "l" else 1
        assert plain["stereo_T"][0, 3] == pytest.approx(0.1 * sign)
        assert flipped["stereo_T"][0, 3] == pytest.approx(-0.1 * sign)


def test_stereo_sign_warps_the_partner_onto_the_image(synthetic_kitti_hints):
    """With the exact rendered depth (in training units) and stereo_T, the partner warps onto the
    target, flipped or not; the opposite sign does not."""
    from losses import reprojection_loss, warp_image
    info = synthetic_kitti_hints
    ds = _dataset(info, 128, 416, is_train=True, use_depth_hints=False)
    for index in range(2):
        folder, frame, side = ds.lines[index]
        depth = np.load(os.path.join(info["data_path"], folder, "depth", f"image_0{2 if side == 'l' else 3}", f"{frame:010d}.npy"))
        for flip in (False, True):
            x = _sample(ds, index, flip, False)
            d = (np.where(depth > 0, depth, 1000.0) / 5.4).astype(np.float32)   # metres -> training units
            d = paddle.to_tensor(np.ascontiguousarray(d[:, ::-1] if flip else d)[None, None])
            t = lambda a: paddle.to_tensor(a[None])
            wrong = x["stereo_T"].copy()
            wrong[0, 3] *= -1
            errs = []
            for stereo_t in (x["stereo_T"], wrong):
                warped = warp_image(t(x[("color", "s", 0)]), d, t(x[("K", 0)]), t(x[("inv_K", 0)]), t(stereo_t))
                errs.append(float(reprojection_loss(warped, t(x[("color", 0, 0)])).mean()))
            assert errs[0] < 0.6 * errs[1]


def test_colour_jitter_one_draw_for_every_frame_and_scale(synthetic_kitti):
    ds = _dataset(synthetic_kitti, 64, 192, is_train=True, use_depth_hints=False)
    seed = _seed_for(flip=False, jitter=True)
    inputs = batch_to_float(ds.get_item(1, np.random.RandomState(seed)))
    rng = np.random.RandomState(seed)
    rng.uniform(), rng.uniform()                 # the two decisions, then the jitter's parameters
    jitter = draw_color_jitter(rng)
    folder, frame, side = ds.lines[1]
    for f in (0, -1, "s"):
        s_side = {"l": "r", "r": "l"}[side] if f == "s" else side
        fr = frame if f == "s" else frame + f
        img = Image.open(ds.image_path(folder, fr, s_side)).convert("RGB")
        for s in range(4 if f == 0 else 1):   # the losses read the target at every scale, the others at 0
            img = img.resize((192 >> s, 64 >> s), LANCZOS)
            np.testing.assert_array_equal(inputs[("color", f, s)], to_chw(img))
            if s == 0 and f != "s":        # the network inputs (depth: 0, pose: 0 and -1) are jittered
                np.testing.assert_array_equal(inputs[("color_aug", f, s)], jitter(to_chw(img)))
            else:
                assert ("color_aug", f, s) not in inputs
        assert ("color", f, 1) in inputs if f == 0 else ("color", f, 1) not in inputs
    assert np.abs(inputs[("color_aug", 0, 0)] - inputs[("color", 0, 0)]).mean() > 1e-3


def test_augmentation_comes_from_the_given_rng_only(synthetic_kitti):
    """get_item(i, rng) is a function of rng's state; ds[i] neither reads nor changes global state."""
    ds = _dataset(synthetic_kitti, 64, 192, is_train=True, use_depth_hints=False)
    a = ds.get_item(0, np.random.RandomState(7))
    random.seed(1)
    np.random.seed(1)
    b = ds.get_item(0, np.random.RandomState(7))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    flips = {}
    for seed in range(12):                       # decisions follow the seed, both ways happen
        rng = np.random.RandomState(seed)
        jittered, flipped = rng.uniform() > 0.5, rng.uniform() > 0.5
        x = batch_to_float(ds.get_item(0, np.random.RandomState(seed)))
        assert (np.abs(x[("color_aug", 0, 0)] - x[("color", 0, 0)]).max() > 0) == jittered
        flips[seed] = flipped
        assert x["stereo_T"][0, 3] == pytest.approx((-1 if ds.lines[0][2] == "l" else 1) * (-1 if flipped else 1) * 0.1)
    assert len(set(flips.values())) == 2
    state, np_state = random.getstate(), np.random.get_state()
    ds[0]
    assert random.getstate() == state and np.array_equal(np.random.get_state()[1], np_state[1])


def _jitter_step_by_step(jitter, x):
    """The jitter's steps applied one after the other in its order (numpy, no clipping in between)."""
    luma = np.array([0.299, 0.587, 0.114])[:, None, None]
    x = x.astype(np.float64)
    for name in jitter.order:
        f = jitter.factors[name]
        grey = (x * luma).sum(0, keepdims=True)
        if name == "brightness":
            x = f * x
        elif name == "saturation":
            x = f * x + (1 - f) * grey
        elif name == "contrast":
            x = f * x + (1 - f) * grey.mean()
        else:   # hue: rotate the chroma of YIQ, keeping luma (Y)
            yiq = np.einsum("ij,jhw->ihw", [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], x)
            c, s = np.cos(2 * np.pi * f), np.sin(2 * np.pi * f)
            yiq[1], yiq[2] = c * yiq[1] - s * yiq[2], s * yiq[1] + c * yiq[2]
            x = np.einsum("ij,jhw->ihw", np.linalg.inv([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]]), yiq)
    return np.clip(x, 0, 1)


def test_jitter_is_the_composition_of_its_steps():
    x = np.random.default_rng(0).uniform(0, 1, (3, 8, 10)).astype(np.float32)
    rng = np.random.RandomState(0)
    orders = set()
    for _ in range(12):
        jitter = draw_color_jitter(rng)
        orders.add(tuple(jitter.order))
        f = jitter.factors
        assert 0.8 <= f["brightness"] <= 1.2 and 0.8 <= f["contrast"] <= 1.2 and 0.8 <= f["saturation"] <= 1.2
        assert -0.1 <= f["hue"] <= 0.1
        np.testing.assert_allclose(jitter(x), _jitter_step_by_step(jitter, x), atol=1e-5)
    assert len(orders) > 1
    # grey pixels stay grey under hue and saturation; hue keeps the luma
    grey = np.full((3, 2, 2), 0.4, np.float32)
    jitter = draw_color_jitter(rng, 0, 0, 0.2, 0.1)
    np.testing.assert_allclose(jitter(grey), grey, atol=1e-6)
    jitter = draw_color_jitter(rng, 0, 0, 0, 0.1)
    luma = np.array([0.299, 0.587, 0.114])
    inner = np.full((3, 4, 4), 0.5, np.float32) + 0.1 * x[:, :4, :4]
    np.testing.assert_allclose(np.einsum("c,chw->hw", luma, jitter(inner)), np.einsum("c,chw->hw", luma, inner), atol=1e-5)


def test_png_falls_back_to_jpg(synthetic_kitti):
    a = _dataset(synthetic_kitti, 64, 192, use_depth_hints=False, img_ext=".jpg")[0]
    b = _dataset(synthetic_kitti, 64, 192, use_depth_hints=False, img_ext=".png")[0]
    np.testing.assert_array_equal(a[("color", 1, 0)], b[("color", 1, 0)])


def test_dataloader_batches(synthetic_kitti):
    ds = _dataset(synthetic_kitti, 64, 192, use_depth_hints=False, is_train=True, depth_gt_size=(128, 416))
    batch = batch_to_float(next(iter(paddle.io.DataLoader(ds, batch_size=2, num_workers=0))))
    assert batch[("color_aug", -1, 0)].shape == [2, 3, 64, 192] and batch[("color", "s", 0)].shape == [2, 3, 64, 192]
    assert batch["depth_gt"].shape == [2, 1, 128, 416] and batch["stereo_T"].shape == [2, 4, 4]


def test_workers_send_uint8_and_batches_become_the_same_floats(synthetic_kitti):
    """Samples carry uint8 images and jitter parameters (no float image to copy between loader
    processes); batch_to_float on a Paddle batch gives, bit for bit, the per-sample numpy floats
    (stacked), for jittered and plain samples alike, and leaves a converted batch unchanged."""
    ds = _dataset(synthetic_kitti, 64, 192, use_depth_hints=False, is_train=True)
    seeds = [_seed_for(flip=False, jitter=True), _seed_for(flip=True, jitter=False), _seed_for(flip=True, jitter=True)]
    raw = [ds.get_item(i, np.random.RandomState(seed)) for i, seed in enumerate(seeds)]
    for f in FRAMES:
        for s in range(4 if f == 0 else 1):
            assert raw[0][("color", f, s)].dtype == np.uint8 and raw[0][("color", f, s)].shape == (3, 64 >> s, 192 >> s)
            assert ("color_aug", f, s) not in raw[0]
            assert raw[0][("jitter", f, s)].shape == (3, 4) if s == 0 and f != "s" else ("jitter", f, s) not in raw[0]
    floats = [batch_to_float(dict(x)) for x in raw]
    batch = {k: paddle.to_tensor(np.stack([x[k] for x in raw])) for k in raw[0]}
    batch = batch_to_float(batch)
    assert set(batch) == set(floats[0]) and not any(k[0] == "jitter" for k in batch if isinstance(k, tuple))
    for key in floats[0]:
        np.testing.assert_array_equal(batch[key].numpy(), np.stack([x[key] for x in floats]))
    assert batch_to_float(batch)[("color", 0, 0)] is batch[("color", 0, 0)]


def test_resize_on_device_gives_the_workers_images(synthetic_kitti):
    """With resize_on_device a sample carries each frame as decoded, unflipped, and nothing resized;
    batch_to_float then makes, from a numpy sample and from a DataLoader batch (collate_fn=collate,
    2 workers), the images of the default path to the bit and its colour_aug to 1e-6 (the contrast
    step's mean is summed in another order), with flips and jitters drawn."""
    plain = _dataset(synthetic_kitti, 64, 192, use_depth_hints=False, is_train=True)
    full = _dataset(synthetic_kitti, 64, 192, use_depth_hints=False, is_train=True)
    full.resize_on_device = True
    seeds = [_seed_for(flip=False, jitter=True), _seed_for(flip=True, jitter=False), _seed_for(flip=True, jitter=True)]
    sample = full.get_item(0, np.random.RandomState(seeds[2]))
    folder, frame, side = full.lines[0]
    with Image.open(full.image_path(folder, frame - 1, side)) as img:
        np.testing.assert_array_equal(sample[("raw", -1)], np.asarray(img.convert("RGB")))
    assert not any(k[0] in ("color", "jitter") for k in sample if isinstance(k, tuple))

    class Seeded(paddle.io.Dataset):
        def __init__(self, ds):
            self.ds = ds

        def __len__(self):
            return len(seeds)

        def __getitem__(self, i):
            return self.ds.get_item(i, np.random.RandomState(seeds[i]))

    expected = [batch_to_float(plain.get_item(i, np.random.RandomState(seed))) for i, seed in enumerate(seeds)]
    singles = [batch_to_float(full.get_item(i, np.random.RandomState(seed))) for i, seed in enumerate(seeds)]
    batch = batch_to_float(next(iter(paddle.io.DataLoader(Seeded(full), batch_size=3, num_workers=2,
                                                          collate_fn=collate))))
    assert set(batch) == set(expected[0]) == set(singles[0])
    for key in expected[0]:
        want = np.stack([x[key] for x in expected])
        for got in (batch[key].numpy(), np.stack([x[key] for x in singles])):
            if key[0] == "color_aug":
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
            else:
                np.testing.assert_array_equal(got, want)


def test_errors_name_the_file(synthetic_kitti, tmp_path, capsys):
    info = synthetic_kitti
    drive = info["drives"][0]
    with pytest.raises(DataError, match="split line 2: 'oops 3'"):
        _dataset(info, 64, 192, lines=[f"{drive} 1 l", "oops 3"], use_depth_hints=False)
    bad = tmp_path / "train_files.txt"
    bad.write_text(f"{drive} 1 l\n{drive} x l\n")
    with pytest.raises(DataError, match=r"train_files.txt:2"):
        read_split(str(bad))
    lines = [f"{drive} 0 l", f"{drive} 1 l", f"{drive} 6 r"]     # frames 0 and 6 (the last) lack a neighbour
    with pytest.raises(MissingFileError, match=r"frame -1: .*image_02.data.0000000000.jpg.*split line 1"):
        _dataset(info, 64, 192, lines=lines, use_depth_hints=False)
    ds = _dataset(info, 64, 192, lines=lines, use_depth_hints=False, skip_missing=True)
    assert len(ds) == 1 and ds.num_skipped == 2
    assert capsys.readouterr().out.count("skipped 2 of 3") == 1
    with pytest.raises(MissingFileError, match=r"depth hint: .*nowhere.*0000000001.npy"):
        _dataset(info, 64, 192, lines=lines[1:2], use_depth_hints=True, depth_hint_path=str(tmp_path / "nowhere"))
    # a data root without the date's calibration files
    root = tmp_path / "kitti"
    (root / drive.split("/")[0]).mkdir(parents=True)
    os.symlink(os.path.join(info["data_path"], drive), root / drive)
    with pytest.raises(MissingFileError, match="calib_cam_to_cam.txt"):
        KITTIRAWDataset(str(root), lines[1:2], 64, 192, FRAMES, load_depth=True)
    assert not KITTIRAWDataset(str(root), lines[1:2], 64, 192, FRAMES, load_depth=False).load_depth
