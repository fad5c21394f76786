"""utils/io/image_io.py: listing, robust loading, preprocessing, colour maps and the written files."""
import io
import json
import os
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from utils.io import image_io
from utils.io.image_io import ImageLoadError


def _save(path, array, mode=None, **kw):
    Image.fromarray(array, mode=mode).save(path, **kw) if mode else Image.fromarray(array).save(path, **kw)
    return str(path)


def test_list_images_natural_order_and_filters(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    for name in ["img10.png", "img2.jpg", "IMG1.JPG", "old_disp.jpeg", "old_depth.png"]:
        _save(tmp_path / name, rgb)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub.png").mkdir()
    got = [os.path.basename(p) for p in image_io.list_images(str(tmp_path))]
    assert got == ["IMG1.JPG", "img2.jpg", "img10.png"]
    assert image_io.list_images(str(tmp_path / "img2.jpg")) == [str(tmp_path / "img2.jpg")]


def test_list_images_errors_name_the_path(tmp_path):
    with pytest.raises(ImageLoadError, match="holds no images"):
        image_io.list_images(str(tmp_path))
    with pytest.raises(ImageLoadError, match="no such file"):
        image_io.list_images(str(tmp_path / "missing"))


def test_output_stems_disambiguates_shared_stems():
    assert image_io.output_stems(["a/x.jpg", "a/x.PNG", "a/y.png"]) == ["x_jpg", "x_png", "y"]


def test_load_greyscale_16bit_cmyk_rgba(tmp_path):
    grey = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    img = image_io.load_image(_save(tmp_path / "g.png", grey, "L"))
    a = np.asarray(img)
    assert img.mode == "RGB" and a.shape == (6, 8, 3) and (a == grey[..., None]).all()

    sixteen = np.array([[0, 257 * 100, 65535]], np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "s.png")
    assert Image.open(tmp_path / "s.png").mode.startswith("I")
    assert np.asarray(image_io.load_image(str(tmp_path / "s.png")))[0, :, 1].tolist() == [0, 100, 255]

    cmyk = Image.new("CMYK", (5, 3), (0, 255, 255, 0))  # pure red in CMYK
    cmyk.save(tmp_path / "c.jpg")
    red = np.asarray(image_io.load_image(str(tmp_path / "c.jpg"))).astype(int)
    assert red.shape == (3, 5, 3) and (red[..., 0] > 230).all() and (red[..., 1:] < 25).all()

    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)  # opaque: kept
    rgba[1, 1] = (10, 20, 30, 0)    # transparent: white background
    out = np.asarray(image_io.load_image(_save(tmp_path / "a.png", rgba, "RGBA")))
    assert out[0, 0].tolist() == [10, 20, 30] and out[1, 1].tolist() == [255, 255, 255]


def test_exif_orientation_is_honoured(tmp_path):
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[0, 0] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(stored).save(tmp_path / "r.png", exif=exif)
    shown = np.asarray(image_io.load_image(str(tmp_path / "r.png")))
    assert (shown == np.rot90(stored, k=-1)).all() and shown.shape == (40, 20, 3)


def test_corrupt_and_truncated_files_raise_clear_errors(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"this is not a jpeg")
    with pytest.raises(ImageLoadError, match="bad.jpg: cannot read image"):
        image_io.load_image(str(bad))
    good = _save(tmp_path / "good.png", np.random.RandomState(0).randint(0, 255, (64, 64, 3), dtype=np.uint8))
    data = open(good, "rb").read()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="cut.png"):
        image_io.load_image(str(tmp_path / "cut.png"))
    with pytest.raises(ImageLoadError, match="no such image"):
        image_io.load_image(str(tmp_path / "missing.png"))


def test_load_from_arrays():
    f = np.full((3, 4, 3), 0.5, np.float32)
    assert np.asarray(image_io.load_image(f))[0, 0].tolist() == [128, 128, 128]
    g16 = np.full((3, 4), 65535, np.uint16)
    assert np.asarray(image_io.load_image(g16)).min() == 255


def test_preprocess_shape_range_and_channel_order():
    img = Image.new("RGB", (100, 50), (255, 0, 128))
    x = image_io.preprocess(img, 32, 64)
    assert x.shape == (1, 3, 32, 64) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, 5, 7], [1.0, 0.0, 128 / 255], atol=1e-6)
    ramp = Image.fromarray(np.tile(np.arange(0, 256, 2, dtype=np.uint8), (16, 1)), "L").convert("RGB")
    y = image_io.preprocess(ramp, 8, 64)[0, 0]
    assert 0.0 <= y.min() and y.max() <= 1.0 and (np.diff(y[4, 2:-2]) > 0).all()


def test_to_chw_is_every_pixel_over_255_in_channel_order():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    x = image_io.to_chw(Image.fromarray(rgb))
    assert x.shape == (3, 5, 7) and x.dtype == np.float32 and x.flags["C_CONTIGUOUS"]
    # float32 v x float32(1 / 255), element by element (the loader's bits); within an ulp of v / 255
    np.testing.assert_array_equal(x, np.float32(1 / 255) * rgb.transpose(2, 0, 1).astype(np.float32))
    np.testing.assert_allclose(x, rgb.transpose(2, 0, 1) / 255.0, rtol=1e-7, atol=0)
    np.testing.assert_array_equal(image_io.to_chw(rgb), x)
    np.testing.assert_array_equal(image_io.preprocess(Image.fromarray(rgb), 5, 7)[0], x)  # same size: no resampling


def test_colorize_endpoints_and_percentile_clip():
    d = np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10)
    grey = image_io.colorize(d, "gray")
    assert grey[0, 0].tolist() == [0, 0, 0] and grey[-1, -1].tolist() == [255, 255, 255]
    # everything above the 95th percentile saturates
    assert (grey.reshape(-1, 3)[96:] == 255).all()
    magma = image_io.colorize(d).astype(int)
    # matplotlib's magma: first entry (0, 0, 4), last (252, 253, 191)
    assert np.abs(magma[0, 0] - [0, 0, 4]).max() <= 3
    assert np.abs(magma[-1, -1] - [252, 253, 191]).max() <= 3
    assert (image_io.colorize(np.ones((4, 4))) == image_io.colorize(np.zeros((4, 4)))).all()
    with pytest.raises(ValueError, match="unknown colormap"):
        image_io.colorize(d, "nope")


def test_colorize_over_a_fixed_range():
    """A video's one range: the same value gets the same colour in every frame, whatever else is there."""
    d = np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10)
    grey = image_io.colorize(d, "gray", value_range=(0.2, 0.6))[..., 0].ravel().astype(int)
    expected = np.minimum(np.clip((d.ravel() - 0.2) / 0.4, 0, 1) * 256.0, 255).astype(int)
    assert (grey == expected).all() and grey[0] == 0 and grey[-1] == 255
    other = image_io.colorize(np.where(d > 0.5, d, 0.9), "gray", value_range=(0.2, 0.6))[..., 0].ravel()
    assert (other[d.ravel() > 0.5] == grey[d.ravel() > 0.5]).all()


def test_write_prediction_files_and_values(tmp_path):
    disp = np.full((8, 16), 0.25, np.float32)
    disp[:, 8:] = 0.75
    paths = image_io.write_prediction(str(tmp_path), "photo", disp, (40, 30), save_png16=True)
    assert sorted(os.listdir(tmp_path)) == ["photo_depth.npy", "photo_depth.png", "photo_disp.jpeg",
                                            "photo_disp.npy"]
    saved = np.load(paths["disp_npy"])
    assert saved.dtype == np.float32 and (saved == disp).all()
    depth = np.load(paths["depth_npy"])
    assert depth.dtype == np.float32 and depth.shape == (30, 40)
    # independent: left and right thirds are far from the step, so constant after resizing
    expect = lambda d: 5.4 / (1 / 100 + (1 / 0.1 - 1 / 100) * d)  # noqa: E731
    np.testing.assert_allclose(depth[:, :15], expect(0.25), rtol=1e-5)
    np.testing.assert_allclose(depth[:, 25:], expect(0.75), rtol=1e-5)
    png = cv2.imread(paths["depth_png"], cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint16 and png.shape == (30, 40)
    np.testing.assert_allclose(png / 256.0, depth, atol=0.5 / 256 + 1e-6)
    assert image_io.depth_to_png16(np.array([0.001, 10.0, 300.0])).tolist() == [1, 2560, 65535]
    jpeg = Image.open(paths["disp_jpeg"])
    assert jpeg.format == "JPEG" and jpeg.size == (40, 30)


def test_write_prediction_leaves_nothing_on_failure(tmp_path):
    with pytest.raises(ValueError, match="unknown colormap"):
        image_io.write_prediction(str(tmp_path), "x", np.zeros((4, 4)), (4, 4), colormap="nope")
    assert os.listdir(tmp_path) == []


def test_load_from_file_bytes_and_pixel_limit(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (30, 50, 3), dtype=np.uint8)
    path = _save(tmp_path / "a.png", rgb)
    data = open(path, "rb").read()
    assert np.array_equal(np.asarray(image_io.load_image(data)), np.asarray(image_io.load_image(path)))
    assert image_io.load_image(data, max_pixels=30 * 50).size == (50, 30)
    with pytest.raises(image_io.ImageTooLargeError, match="50 x 30 is more than 1499 pixels"):
        image_io.load_image(data, max_pixels=30 * 50 - 1)
    # PNGs of a few bytes claiming 9000 x 9000 and 40000 x 40000 pixels: refused from their header,
    # before 243 MB / 4.8 GB of pixels are decoded (the second by PIL's own bomb limit, also without max_pixels)
    header = open(_save(tmp_path / "b.png", np.zeros((8, 8), np.uint8)), "rb").read()
    for side, max_pixels, words in ((9000, 10 ** 7, "9000 x 9000 is more than"), (40000, None, "exceeds limit")):
        ihdr = side.to_bytes(4, "big") * 2 + header[24:29]   # IHDR: width, height, the rest as it was
        huge = header[:16] + ihdr + zlib.crc32(b"IHDR" + ihdr).to_bytes(4, "big") + header[33:]
        with pytest.raises(image_io.ImageTooLargeError, match=words):
            image_io.load_image(huge, max_pixels=max_pixels)
    with pytest.raises(ImageLoadError) as e:
        image_io.load_image(b"no image here")
    assert str(e.value) == "upload: cannot read image (cannot identify image file)"


def test_encode_prediction_is_the_bytes_of_the_written_files(tmp_path):
    disp = np.random.default_rng(1).uniform(0.01, 0.99, (8, 16)).astype(np.float32)
    record = {"focal_rescale": 1.25, "photo_camera": "its EXIF"}
    paths = image_io.write_prediction(str(tmp_path), "x", disp, (40, 20), 6.75, "turbo", save_png16=True,
                                      metadata=record)
    encoded = image_io.encode_prediction(disp, (40, 20), list(paths) + ["disp_png"], 6.75, "turbo", metadata=record)
    assert set(paths) == set(image_io.ENCODED_KINDS) - {"disp_png"}
    for kind, path in paths.items():
        assert encoded[kind] == open(path, "rb").read(), kind
    assert json.loads(encoded["depth_json"]) == {"depth_scale_factor": 6.75, **record}
    colour = np.asarray(Image.open(io.BytesIO(encoded["disp_png"])))
    expect = image_io.colorize(image_io.resize_map(disp, (40, 20)), "turbo")
    assert np.array_equal(colour, expect)
    png = cv2.imread(paths["depth_png"], cv2.IMREAD_UNCHANGED)
    depth = np.load(paths["depth_npy"])
    assert png.dtype == np.uint16 and np.array_equal(png, np.clip(np.round(depth.astype(np.float64) * 256), 1, 65535))
