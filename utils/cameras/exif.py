"""A photo's focal length in pixels from its EXIF (read by Pillow: Image.getexif(), its Exif IFD 0x8769). Paddle-free.

Tags (Exif 2.3):
    FocalLengthIn35mmFilm 0xA405   the 35 mm equivalent focal length f35 in mm (an integer; 0 = unknown)
    FocalLength           0x920A   the lens's focal length f in mm
    FocalPlaneXResolution 0xA20E   sensor pixels per FocalPlaneResolutionUnit along the image's x (0xA20F: y);
    FocalPlaneResolutionUnit 0xA210   2 inch (the default), 3 cm, 4 mm, 5 micrometre
    PixelXDimension 0xA002, PixelYDimension 0xA003   the image size those resolutions describe
    Orientation 0x0112 (IFD0)      5-8: the photo is shown turned by 90 degrees (image_io.load_image turns it)

35 mm equivalent. f35 is the focal length that gives a 36 x 24 mm frame the photo's angle of view across
the diagonal (CIPA DCG-001; what cameras and phones write, and what Exiftool's FocalLength35efl assumes).
A pinhole of focal length f px sees half the image diagonal D/2 px under atan(D / 2f); the 35 mm frame's half
diagonal, 43.27/2 mm, under atan(43.27 / 2 f35). Equal angles:
    fx = fy = f35 * sqrt(W^2 + H^2) / sqrt(36^2 + 24^2)         W x H: the photo's size in pixels
For a 3:2 photo this is f35 * W / 36 (the long sides match); for a 4:3 photo it is f35 * W / 34.6, and the
long-side formula f35 * W / 36 would be 4 % short. A photo cropped after it was taken breaks either.
Focal plane (used when there is no f35): fx = f [mm] x the sensor's pixels per mm along the photo's x (its y
resolution for a photo turned by 90 degrees), times W / PixelXDimension for a photo resized since.
The principal point is taken at the centre, cx = W / 2, cy = H / 2 (the folder layout's centred point).
"""
import math
import os
import warnings

from utils.cameras.camera import check_camera

EXIF_IFD = 0x8769
ORIENTATION = 0x0112
FOCAL_35 = 0xA405
FOCAL = 0x920A
PLANE_X, PLANE_Y, PLANE_UNIT = 0xA20E, 0xA20F, 0xA210
PIXEL_X, PIXEL_Y = 0xA002, 0xA003
MM_PER_UNIT = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}
FILM_DIAGONAL_MM = math.hypot(36.0, 24.0)   # 43.27 mm
MAX_FOCAL_MM = 5000.0   # longer than any lens: a value above it is a broken tag, not a telephoto


class ExifError(ValueError):
    """A photo whose EXIF is present but cannot be read, or holds a focal length that is not one; one line."""


def _fix(name):
    return f"remove its EXIF (e.g. exiftool -all= {name}) or give the camera (--camera camera.json)"


def read_tags(source):
    """{tag: value} of IFD0 and the Exif IFD of a photo (a path or a PIL image); {} when it has no EXIF.
    ExifError when an EXIF block is there but does not parse (no TIFF header, or Pillow warns it is corrupt)."""
    from PIL import Image, UnidentifiedImageError

    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "the photo"
    with warnings.catch_warnings(record=True) as caught:   # Pillow warns of corrupt EXIF, from open() on
        warnings.simplefilter("always")
        try:
            image = Image.open(source) if isinstance(source, (str, os.PathLike)) else source
        except (OSError, UnidentifiedImageError):
            return {}   # not an image at all: image_io.load_image says so
        try:
            raw = image.info.get("exif")
            exif = image.getexif()
            tags = dict(exif)
            tags.update(exif.get_ifd(EXIF_IFD))
        except Exception as e:  # noqa: BLE001  (Pillow raises many types on broken EXIF)
            raise ExifError(f"{name}: its EXIF cannot be read ({type(e).__name__}: {e}); {_fix(name)}") from None
        finally:
            if image is not source:
                image.close()
    corrupt = [str(w.message).strip() for w in caught if "exif" in str(w.message).lower()]
    tiff = raw[6:] if raw and raw.startswith(b"Exif\x00\x00") else raw
    if raw and not corrupt and tiff[:4] not in (b"II*\x00", b"MM\x00*"):
        corrupt = ["no TIFF header"]   # Pillow reads such a block as no tags, silently
    if corrupt:
        raise ExifError(f"{name}: corrupt EXIF ({corrupt[0]}); {_fix(name)}")
    tags.pop(EXIF_IFD, None)
    return tags


def _number(tags, tag, label, name):
    """A tag's value as a float, None when absent or 0 (EXIF's 'unknown'); ExifError when it is no focal value."""
    if tag not in tags:
        return None
    try:
        value = float(tags[tag])
    except (TypeError, ValueError, ZeroDivisionError):
        raise ExifError(f"{name}: EXIF {label} is {tags[tag]!r}, not a number; {_fix(name)}") from None
    if value == 0:
        return None
    if not 0 < value < math.inf:
        raise ExifError(f"{name}: EXIF {label} is {value:g}; {_fix(name)}")
    return value


def focal_from_tags(tags, width, height, name="the photo"):
    """(fx in pixels, how it was found) of a W x H photo (as shown, EXIF orientation applied), or None when the
    tags hold no focal length. The module docstring gives both rules."""
    f35 = _number(tags, FOCAL_35, "FocalLengthIn35mmFilm", name)
    if f35 is not None:
        if f35 > MAX_FOCAL_MM:
            raise ExifError(f"{name}: EXIF FocalLengthIn35mmFilm is {f35:g} mm; {_fix(name)}")
        fx = f35 * math.hypot(width, height) / FILM_DIAGONAL_MM
        return fx, f"35 mm equivalent focal length {f35:g} mm"
    focal = _number(tags, FOCAL, "FocalLength", name)
    turned = tags.get(ORIENTATION) in (5, 6, 7, 8)
    plane = _number(tags, PLANE_Y if turned else PLANE_X, "FocalPlaneResolution", name)
    if focal is None or plane is None or focal > MAX_FOCAL_MM:
        return None
    try:
        unit_mm = MM_PER_UNIT[int(tags.get(PLANE_UNIT, 2))]
    except (KeyError, TypeError, ValueError):
        return None   # 1 = no absolute unit: no sensor size
    recorded = _number(tags, PIXEL_Y if turned else PIXEL_X, "PixelXDimension", name)
    fx = focal * plane / unit_mm * (width / recorded if recorded else 1.0)
    return fx, f"focal length {focal:g} mm and focal-plane resolution {plane / unit_mm:.4g} px/mm"


def exif_camera(source, width, height):
    """(camera dict of utils/cameras/camera.py, checked there; description) of a W x H photo from its EXIF, or None
    without a focal length in it. `source`: the photo's path or PIL image. Raises ExifError for corrupt EXIF."""
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "the photo"
    found = focal_from_tags(read_tags(source), width, height, name)
    if found is None:
        return None
    fx, how = found
    camera = check_camera({"fx": fx, "fy": fx, "cx": width / 2, "cy": height / 2, "width": width, "height": height},
                          f"{name}: EXIF")
    return camera, f"EXIF {how}: fx {fx:.1f} px at {width} x {height}, centred"
