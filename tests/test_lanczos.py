"""datasets/lanczos.py against PIL itself (Pillow's C resampler is the independent computation):
the device resize must give the training images PIL gives, to the bit, for every size pair the
loader meets, mixed sizes and flips in one batch, and images built to push the int32 sums."""
import numpy as np
import paddle
import pytest
from PIL import Image

from datasets import batch_to_float, collate
from datasets.batch import pad_to_common_size
from datasets.lanczos import PRECISION_BITS, lanczos_taps, resize_nhwc, resize_padded

# (input h, w) -> (output h, w): KITTI's sizes to 192 x 640 and 320 x 1024, the pyramid's halvings,
# odd and upscaling pairs (a small photo to a larger network size), another aspect ratio
PAIRS = [((375, 1242), (192, 640)), ((370, 1224), (192, 640)), ((374, 1238), (320, 1024)),
         ((192, 640), (96, 320)), ((48, 160), (24, 80)), ((37, 101), (64, 192)), ((497, 741), (96, 160))]


def pil_resize(image, size):
    return np.asarray(Image.fromarray(image).resize(size[::-1], Image.Resampling.LANCZOS))


def sample_images(h, w, rng):
    """Noise (every tap matters) and a smooth image (the usual case, with long runs of ties)."""
    noise = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(noise).resize((w // 9 + 2, h // 9 + 2)).resize((w, h), Image.BICUBIC))
    return [noise, smooth]


@pytest.mark.parametrize("src,dst", PAIRS)
def test_resize_equals_pil(src, dst):
    for image in sample_images(*src, np.random.default_rng(sum(src))):
        np.testing.assert_array_equal(resize_nhwc(paddle.to_tensor(image[None]), dst).numpy()[0],
                                      pil_resize(image, dst))


def test_extreme_images_stay_exact_in_int32():
    """Row j of the image is 255 under output pixel j's positive weights and 0 under its negative
    ones (and the reverse image): the largest and smallest sums the horizontal pass can have. They
    overflow nothing and clip as PIL clips; the vertical pass, between equal heights, is the identity."""
    for (_, w), (_, out_w) in PAIRS:
        index, weight = lanczos_taps(w, out_w)
        largest = 255 * np.where(weight > 0, weight.astype(np.int64), 0).sum(1).max() + (1 << (PRECISION_BITS - 1))
        assert largest < 2 ** 31
        rows = np.zeros((out_w, w), np.uint8)
        for j in range(out_w):
            rows[j, index[j][weight[j] > 0]] = 255
        image = np.repeat(rows[:, :, None], 3, axis=2)
        for x in (image, 255 - image):
            got = resize_nhwc(paddle.to_tensor(x[None]), (out_w, out_w)).numpy()[0]
            np.testing.assert_array_equal(got, pil_resize(x, (out_w, out_w)))
        assert (np.diagonal(got[:, :, 0]) == 0).all()   # the reverse image's most negative sums clip to 0


def test_padded_batch_of_mixed_sizes_and_flips():
    """A batch of KITTI's dates (three sizes), some mirrored: each image as PIL flips and resizes it
    alone, in the batch's order."""
    rng = np.random.default_rng(1)
    images = [sample_images(h, w, rng)[i % 2] for i, (h, w) in enumerate([(375, 1242), (370, 1224), (375, 1242),
                                                                           (376, 1241), (370, 1224)])]
    flips = [0, 1, 1, 0, 0]
    padded = pad_to_common_size(images)
    assert padded.shape == (5, 376, 1242, 3)
    assert not padded[1, 370:].any() and not padded[1, :, 1224:].any()
    out = resize_padded(paddle.to_tensor(padded), [im.shape[:2] for im in images], flips, (96, 320)).numpy()
    for got, image, flip in zip(out, images, flips):
        np.testing.assert_array_equal(got, pil_resize(np.ascontiguousarray(image[:, ::-1]) if flip else image, (96, 320)))


def test_resize_on_device_batch_of_two_sizes():
    """datasets.collate pads hand-made resize_on_device samples of two sizes; batch_to_float then
    makes every scale asked for (each from the previous one, as the loader's chain) and the float
    image, as PIL and image_io's x float32(1/255) do."""
    rng = np.random.default_rng(2)
    frames = [sample_images(375, 1242, rng)[1], sample_images(188, 621, rng)[0]]
    samples = [{("raw", 0): frame, ("raw_hw", 0): np.array(frame.shape[:2], np.int32),
                ("raw_scales", 0): np.array(3, np.int32), "raw_flip": np.array(i, np.int32),
                "resize_to": np.array([64, 192], np.int32)} for i, frame in enumerate(frames)]
    batch = batch_to_float({k: paddle.to_tensor(v) for k, v in collate(samples).items()})
    assert sorted(k for k in batch) == [("color", 0, 0), ("color", 0, 1), ("color", 0, 2)]
    for i, frame in enumerate(frames):
        expected = np.ascontiguousarray(frame[:, ::-1]) if i else frame
        for s in range(3):
            expected = pil_resize(expected, (64 >> s, 192 >> s))
            as_float = expected.transpose(2, 0, 1).astype(np.float32) * np.float32(1 / 255)
            np.testing.assert_array_equal(batch[("color", 0, s)].numpy()[i], as_float)


def group_order(sizes, flips):
    """The batch rows in the order resize_padded resizes them: grouped by (size, flip), groups in
    the order of their first row (computed here without datasets.lanczos)."""
    keys = [tuple(hw) + (bool(f),) for hw, f in zip(sizes, flips)]
    firsts = sorted(set(keys), key=keys.index)
    return [i for k in firsts for i in range(len(keys)) if keys[i] == k]


# (sizes, flips) of batches whose later rows join an earlier group, so the rows are resized out of
# batch order and must be put back: [0, 2, 1] (its own inverse) and [0, 3, 1, 2] (a 3-cycle, whose
# inverse is not itself: putting rows back with the order instead of its inverse is wrong here)
A, B, C = (37, 101), (48, 160), (40, 96)
REORDERED = [([A, A, A], [0, 1, 0]), ([A, B, A], [0, 0, 0]), ([A, B, C, A], [1, 0, 0, 1]),
             ([A, A, B, A], [0, 1, 0, 0]), ([B, A, B, A], [1, 1, 0, 1])]


@pytest.mark.parametrize("sizes,flips", REORDERED)
def test_groups_out_of_batch_order_come_back_in_it(sizes, flips):
    """Each row of the result is its own image, flipped and resized by PIL alone, whatever order
    the groups were resized in."""
    order = group_order(sizes, flips)
    assert order != sorted(order)                      # the premise: the groups are not the batch's order
    rng = np.random.default_rng(len(sizes) + sum(flips))
    images = [sample_images(h, w, rng)[i % 2] for i, (h, w) in enumerate(sizes)]
    out = resize_padded(paddle.to_tensor(pad_to_common_size(images)), sizes, flips, (24, 64)).numpy()
    for got, image, flip in zip(out, images, flips):
        expected = pil_resize(np.ascontiguousarray(image[:, ::-1]) if flip else image, (24, 64))
        np.testing.assert_array_equal(got, expected)


def test_collated_batch_out_of_group_order_keeps_each_sample_in_its_row():
    """datasets.collate + batch_to_float on four resize_on_device samples of three sizes, flips
    [1, 0, 0, 1] (resized in the order [0, 3, 1, 2]) and colour jitter on rows 0 and 2 only: row i of
    every image, colour_aug and per-sample key is sample i's, as PIL and ColorJitter make it alone."""
    from datasets.batch import ColorJitter
    sizes, flips, jittered = [A, B, C, A], [1, 0, 0, 1], [True, False, True, False]
    assert group_order(sizes, flips) == [0, 3, 1, 2]
    rng = np.random.default_rng(3)
    frames = [sample_images(h, w, rng)[i % 2] for i, (h, w) in enumerate(sizes)]
    draws = [ColorJitter(np.random.RandomState(i)).vector() if j else np.zeros(8) for i, j in enumerate(jittered)]
    samples = [{("raw", 0): frame, ("raw_hw", 0): np.array(frame.shape[:2], np.int32),
                ("raw_scales", 0): np.array(2, np.int32), "raw_flip": np.array(flip, np.int32),
                "resize_to": np.array([32, 64], np.int32), ("jitter_draw", 0, 0): draw,
                "sample_id": np.array([i], np.float32)}
               for i, (frame, flip, draw) in enumerate(zip(frames, flips, draws))]
    batch = batch_to_float({k: paddle.to_tensor(v) for k, v in collate(samples).items()})
    np.testing.assert_array_equal(batch["sample_id"].numpy()[:, 0], np.arange(4))
    for i, (frame, flip, draw) in enumerate(zip(frames, flips, draws)):
        expected = np.ascontiguousarray(frame[:, ::-1]) if flip else frame
        for s in range(2):
            expected = pil_resize(expected, (32 >> s, 64 >> s))
            as_float = expected.transpose(2, 0, 1).astype(np.float32) * np.float32(1 / 255)
            np.testing.assert_array_equal(batch[("color", 0, s)].numpy()[i], as_float)
            if s == 0:
                want = ColorJitter.from_vector(draw)(as_float.copy()) if jittered[i] else as_float
                np.testing.assert_allclose(batch[("color_aug", 0, 0)].numpy()[i], want, rtol=0, atol=1e-6)
                assert not jittered[i] or np.abs(want - as_float).max() > 0.01   # the jitter shows
