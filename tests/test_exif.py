"""utils/cameras/exif.py on photos whose EXIF this test writes with Pillow: the focal length in pixels against the
35 mm equivalent's definition (equal diagonal angles of view) and against the focal-plane resolution."""
import math

import pytest
from PIL import Image

from utils.cameras import exif


def photo(path, size=(400, 300), ifd0=None, exif_ifd=None, raw=None):
    """A JPEG of `size` with the given IFD0 and Exif-IFD tags (or raw EXIF bytes)."""
    image = Image.new("RGB", size, (90, 120, 150))
    if raw is not None:
        image.save(path, exif=raw)
        return str(path)
    tags = Image.Exif()
    for tag, value in (ifd0 or {}).items():
        tags[tag] = value
    sub = tags.get_ifd(exif.EXIF_IFD)
    for tag, value in (exif_ifd or {}).items():
        sub[tag] = value
    image.save(path, exif=tags)
    return str(path)


def half_diagonal_angle(fx, width, height):
    return math.atan(math.hypot(width, height) / 2 / fx)


def test_35mm_equivalent_gives_the_film_frame_s_diagonal_angle(tmp_path):
    path = photo(tmp_path / "a.jpg", (400, 300), {0x010F: "Phone"}, {exif.FOCAL_35: 26})
    camera, note = exif.exif_camera(path, 400, 300)
    # the definition: the photo's diagonal angle of view is that of a 36 x 24 mm frame behind a 26 mm lens
    assert half_diagonal_angle(camera["fx"], 400, 300) == pytest.approx(math.atan(math.hypot(36, 24) / 2 / 26))
    assert (camera["fy"], camera["cx"], camera["cy"]) == (camera["fx"], 200, 150) and "35 mm equivalent" in note
    # a 4:3 photo: the long-side formula f35 / 36 * W would be 4 % short; a 3:2 photo: both agree
    assert camera["fx"] / (26 / 36 * 400) == pytest.approx(1.25 * 36 / math.hypot(36, 24))
    three_two = photo(tmp_path / "b.jpg", (360, 240), None, {exif.FOCAL_35: 50})
    assert exif.exif_camera(three_two, 360, 240)[0]["fx"] == pytest.approx(50 / 36 * 360)
    # shown turned by 90 degrees (Orientation 6): the same focal length, the centre of the turned photo
    turned = photo(tmp_path / "c.jpg", (400, 300), {exif.ORIENTATION: 6}, {exif.FOCAL_35: 26})
    camera_t, _ = exif.exif_camera(turned, 300, 400)
    assert camera_t["fx"] == pytest.approx(camera["fx"]) and (camera_t["cx"], camera_t["cy"]) == (150, 200)


def test_focal_length_with_the_focal_plane_resolution(tmp_path):
    # 4.25 mm lens, 1000 px/cm on the sensor (100 px/mm), recorded for an 800 x 600 image now stored at 400 x 300
    tags = {exif.FOCAL: 4.25, exif.PLANE_X: 1000.0, exif.PLANE_Y: 1000.0, exif.PLANE_UNIT: 3,
            exif.PIXEL_X: 800, exif.PIXEL_Y: 600}
    camera, note = exif.exif_camera(photo(tmp_path / "a.jpg", exif_ifd=tags), 400, 300)
    assert camera["fx"] == pytest.approx(4.25 * 100 * 400 / 800) and "focal-plane" in note
    # an unknown 35 mm value (0) falls back to it; a focal length alone (no sensor size) gives nothing
    assert exif.exif_camera(photo(tmp_path / "b.jpg", exif_ifd={**tags, exif.FOCAL_35: 0}), 400, 300)[0]["fx"] == \
        pytest.approx(212.5)
    assert exif.exif_camera(photo(tmp_path / "c.jpg", exif_ifd={exif.FOCAL: 4.25}), 400, 300) is None
    assert exif.exif_camera(photo(tmp_path / "d.jpg"), 400, 300) is None                 # no EXIF at all


def test_corrupt_exif_is_one_line(tmp_path):
    broken = photo(tmp_path / "a.jpg", raw=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff" + b"\x01" * 20)
    with pytest.raises(exif.ExifError) as e:
        exif.exif_camera(broken, 400, 300)
    assert "corrupt EXIF" in str(e.value) and "\n" not in str(e.value) and broken in str(e.value)
    garbage = photo(tmp_path / "b.jpg", raw=b"Exif\x00\x00" + b"\xde\xad" * 10)
    with pytest.raises(exif.ExifError, match="corrupt EXIF"):
        exif.exif_camera(garbage, 400, 300)
    nonsense = photo(tmp_path / "c.jpg", exif_ifd={exif.FOCAL_35: 60000})
    with pytest.raises(exif.ExifError, match="FocalLengthIn35mmFilm is 60000 mm"):
        exif.exif_camera(nonsense, 400, 300)
