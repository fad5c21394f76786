"""Reading photos and writing depth predictions: the one implementation shared by
predict.py (Paddle dynamic graph) and inference.py (Paddle Inference), so both write the same files.

Reading
    list_images(path) -> [file, ...]     a file, or a folder's images natural-sorted (not recursive)
    load_image(path_or_array) -> PIL RGB  any common format; greyscale, 16-bit, CMYK, palette and
                                          RGBA/LA (composited onto white) converted; EXIF orientation
                                          honoured; an unreadable file raises ImageLoadError; also a
                                          file's bytes, and max_pixels refuses larger images before
                                          decoding them (ImageTooLargeError)
    to_chw(image)                        RGB PIL image / H x W x 3 uint8 -> float32 3 x H x W in [0, 1]
    preprocess(image, height, width)     PIL Lanczos resize, then to_chw: float32 1 x 3 x H x W
    network_size_problem(value)          why `value` cannot be a network input height/width, or None
    output_stems(paths)                  file stems, made unique when two inputs share one

Writing, for one image with network output `disp` (the scale-0 sigmoid disparity, H x W):
    write_prediction(output_dir, stem, disp, original_size, scale_factor=5.4, colormap="magma",
                     save_png16=False, min_depth=0.1, max_depth=100.0) writes
      <stem>_disp.npy    float32 H x W, `disp` itself (network resolution, values in (0, 1))
      <stem>_disp.jpeg   colour-mapped disparity at the photo's size (Monodepth2's look: range
                         from the minimum to the 95th percentile, colormap magma by default)
      <stem>_depth.npy   float32 at the photo's size: `disp` resized bilinearly (cv2 INTER_LINEAR),
                         then depth = scale_factor / (1/max_depth + (1/min_depth - 1/max_depth) disp)
                         (disp_to_depth): metres with the stereo factor 5.4 for stereo-trained
                         weights, relative depth with 1 (the callers decide: utils.geometry.depth.depth_scale)
      <stem>_depth.png   (save_png16) KITTI-style uint16 PNG of depth x 256, clipped to 1..65535
                         (so depths above 255.99 m saturate)
      <stem>_points.ply  (points=(rgb, (fx, fy, cx, cy))) the depth back-projected with that camera at
                         the photo's size, coloured by the photo: binary PLY (utils.geometry.pointcloud)
      <stem>_depth.json  (metadata={...}) how the depth was scaled: {"depth_scale_factor": the factor used,
                         ...metadata}, e.g. the focal rescaling of metric depth (utils/cameras/photo.py)
    encode_prediction(disp, original_size, kinds, ...) -> {kind: bytes}: those files' contents (all
    but the PLY), the one encoder of the writer and of the HTTP service (serve.py), plus "disp_png"
    (the colour map of <stem>_disp.jpeg as a lossless PNG).
    Files are written to temporary names (utils.io.fileio.atomic_write) and renamed only once all of
    them are written.

`original_size` is (width, height), as PIL's `Image.size`.
"""
import io
import json
import os

import cv2
import numpy as np
from natsort import natsorted, ns
from PIL import Image, ImageOps, UnidentifiedImageError

from utils.cameras.kitti_layout import STEREO_SCALE_FACTOR
from utils.geometry import pointcloud
from utils.io.fileio import atomic_write



def network_size_problem(value):
    """The one rule of a network input height or width: a multiple of 32 (the encoder halves it five
    times) and at least 64 (the deepest level's reflection padding needs two pixels). Returns what
    is wrong, or None."""
    if value < 64 or value % 32:
        return "must be a multiple of 32 and at least 64 (e.g. 192 x 640)"
    return None


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
                    ".pbm", ".gif", ".jfif")
# Files this module writes that are images themselves: skipped when listing a folder, so that
# predicting into the input folder twice does not treat earlier outputs as photos.
OUTPUT_SUFFIXES = ("_disp.jpeg", "_depth.png", "_depth.mp4", "_depth.avi")
COLORMAPS = {
    "magma": cv2.COLORMAP_MAGMA, "inferno": cv2.COLORMAP_INFERNO, "plasma": cv2.COLORMAP_PLASMA,
    "viridis": cv2.COLORMAP_VIRIDIS, "cividis": cv2.COLORMAP_CIVIDIS, "turbo": cv2.COLORMAP_TURBO,
    "jet": cv2.COLORMAP_JET, "bone": cv2.COLORMAP_BONE, "hot": cv2.COLORMAP_HOT, "gray": None,
}
KITTI_PNG_SCALE = 256.0


class ImageLoadError(ValueError):
    """A path that is not a readable image; the message is one line naming the file."""


class ImageTooLargeError(ImageLoadError):
    """An image of more pixels than the caller's max_pixels (found before its pixels are decoded)."""


def list_images(path):
    """`path` itself if it is a file, else the images in folder `path`, natural-sorted
    (img2 before img10), case-insensitive extensions, this module's own outputs skipped."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise ImageLoadError(f"{path}: no such file or folder")
    names = [n for n in os.listdir(path)
             if n.lower().endswith(IMAGE_EXTENSIONS) and not n.lower().endswith(OUTPUT_SUFFIXES)
             and os.path.isfile(os.path.join(path, n))]
    if not names:
        raise ImageLoadError(f"{path}: folder holds no images (looked for "
                             f"{', '.join(IMAGE_EXTENSIONS)})")
    return [os.path.join(path, n) for n in natsorted(names, alg=ns.IGNORECASE)]


def output_stems(paths):
    """Output stem per input path: the file name without extension; where several inputs share
    a stem (photo.jpg and photo.png), each of them gets its extension appended (photo_jpg)."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    counts = {}
    for s in stems:
        counts[s.lower()] = counts.get(s.lower(), 0) + 1
    out = []
    for p, s in zip(paths, stems):
        if counts[s.lower()] > 1:
            s = s + "_" + os.path.splitext(p)[1].lstrip(".").lower()
        out.append(s)
    return out


def _to_8bit(array):
    """Integer or float single-channel data to uint8: 16-bit range divided by 257, float in
    [0, 1] times 255, anything wider normalised by its maximum."""
    a = np.asarray(array)
    if a.dtype == np.uint8:
        return a
    a = a.astype(np.float64)
    peak = a.max() if a.size else 0.0
    if np.issubdtype(np.asarray(array).dtype, np.floating) and peak <= 1.0:
        a = a * 255.0
    elif peak > 65535:
        a = a * (255.0 / peak)
    elif peak > 255:
        a = a / 257.0
    return np.clip(np.round(a), 0, 255).astype(np.uint8)


def _to_rgb(img):
    """Any PIL mode to 8-bit RGB; transparency composited onto white."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return Image.fromarray(_to_8bit(np.asarray(img)), mode="L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def load_image(source, max_pixels=None):
    """An RGB PIL image from a file path, a file's bytes, a PIL image or a numpy array (H x W, H x W x 3
    or H x W x 4; uint8, uint16 or float in [0, 1]). Files: EXIF orientation applied. Raises
    ImageLoadError (one line naming the file) for a missing, corrupt or truncated file, and
    ImageTooLargeError for a file of more than `max_pixels` pixels (checked before decoding)."""
    if isinstance(source, Image.Image):
        return _to_rgb(ImageOps.exif_transpose(source))
    if isinstance(source, np.ndarray):
        a = source
        if a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 1):
            return Image.fromarray(_to_8bit(a.reshape(a.shape[:2])), mode="L").convert("RGB")
        if a.ndim == 3 and a.shape[2] in (3, 4):
            chans = np.stack([_to_8bit(a[..., c]) if a.dtype != np.uint8 else a[..., c]
                              for c in range(a.shape[2])], axis=-1)
            return _to_rgb(Image.fromarray(chans, mode="RGB" if a.shape[2] == 3 else "RGBA"))
        raise ImageLoadError(f"array of shape {a.shape}: expected H x W, H x W x 3 or H x W x 4")
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode(io.BytesIO(source), "upload", max_pixels)
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise ImageLoadError(f"{path}: no such image file")
    return _decode(path, path, max_pixels)


def _decode(file, name, max_pixels=None):
    try:
        with Image.open(file) as img:
            if max_pixels and img.width * img.height > max_pixels:
                raise ImageTooLargeError(f"{name}: {img.width} x {img.height} is more than {max_pixels} pixels")
            img.load()  # decode now: truncated files fail here, not later
            img = ImageOps.exif_transpose(img)
            return _to_rgb(img).copy()
    except Image.DecompressionBombError as e:   # PIL's own limit, far above any photo
        raise ImageTooLargeError(f"{name}: {str(e).split(', could')[0]}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        if isinstance(e, ImageLoadError):
            raise
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        reason = reason.replace(f" {file!r}", "") if isinstance(file, io.BytesIO) else reason
        raise ImageLoadError(f"{name}: cannot read image ({reason})") from None


def to_chw(image):
    """RGB PIL image or H x W x 3 uint8 array -> C-contiguous float32 3 x H x W in [0, 1]
    (pixel x float32(1/255), in place: the training loader's hot path). The one conversion of the
    training loader, evaluation, prediction and deployment."""
    chw = np.asarray(image).transpose(2, 0, 1).astype(np.float32, order="C")
    return np.multiply(chw, np.float32(1 / 255), out=chw)


def preprocess(image, height, width):
    """RGB PIL image -> float32 array 1 x 3 x height x width in [0, 1] (PIL Lanczos resize,
    as the training loader and the evaluation protocol do)."""
    return to_chw(image.resize((width, height), Image.LANCZOS))[None]


def _as_map(disp):
    d = np.asarray(disp, dtype=np.float32)
    d = d.reshape(d.shape[-2:]) if d.ndim > 2 else d
    if d.ndim != 2:
        raise ValueError(f"disparity must be H x W (or 1 x 1 x H x W), got shape {np.shape(disp)}")
    return d


def resize_map(values, original_size):
    """H x W float map to (width, height) = original_size with cv2 bilinear (half-pixel)."""
    width, height = int(original_size[0]), int(original_size[1])
    return cv2.resize(_as_map(values), (width, height), interpolation=cv2.INTER_LINEAR)


def disparity_to_depth(disp, original_size, scale_factor=STEREO_SCALE_FACTOR, min_depth=0.1, max_depth=100.0):
    """Sigmoid disparity (network resolution) -> depth at the photo's size: bilinear resize, then
    disp_to_depth, times scale_factor (5.4 = metres for stereo-trained weights). float32."""
    from utils.geometry.depth import disp_to_depth

    _, depth = disp_to_depth(resize_map(disp, original_size).astype(np.float64), min_depth, max_depth)
    return (scale_factor * np.asarray(depth)).astype(np.float32)


def colorize(disp, colormap="magma", value_range=None):
    """H x W disparity -> uint8 H x W x 3 RGB. Normalised from the minimum to the 95th percentile
    (clipped above), as Monodepth2's predictions are shown, or over `value_range` = (lo, hi) (clipped
    both sides: a video's one colour scale, utils.geometry.stabilise); "gray" gives a grey image."""
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colormap {colormap!r}; choose one of {', '.join(COLORMAPS)}")
    d = _as_map(disp).astype(np.float64)
    vmin, vmax = (float(d.min()), float(np.percentile(d, 95))) if value_range is None else map(float, value_range)
    t = np.clip((d - vmin) / (vmax - vmin), 0.0, 1.0) if vmax > vmin else np.zeros_like(d)
    grey = np.minimum(t * 256.0, 255.0).astype(np.uint8)  # matplotlib's 256-entry lookup
    if COLORMAPS[colormap] is None:
        return np.repeat(grey[..., None], 3, axis=2)
    return cv2.applyColorMap(grey, COLORMAPS[colormap])[..., ::-1].copy()  # BGR -> RGB


def prediction_colours(disp, original_size, colormap="magma", depth=None, colour_range=None):
    """The colour map of <stem>_disp.jpeg: the disparity at the photo's size (colorize), or with `depth` its
    inverse over `colour_range` (a video's one range, utils.geometry.stabilise)."""
    if depth is None:
        return colorize(resize_map(_as_map(disp), original_size), colormap)
    return colorize(1.0 / np.maximum(depth, 1e-6), colormap, colour_range)


def depth_to_png16(depth):
    """Depth in metres -> KITTI's uint16 encoding (depth x 256); 0 is reserved for 'no depth',
    so valid depths are clipped to 1..65535."""
    return np.clip(np.round(np.asarray(depth, np.float64) * KITTI_PNG_SCALE), 1, 65535).astype(np.uint16)


def prediction_paths(output_dir, stem, save_png16=False, save_ply=False, metadata=False):
    """{kind: path} of the files write_prediction writes for `stem` (see the module docstring)."""
    base = os.path.join(output_dir, stem)
    paths = {"disp_npy": base + "_disp.npy", "disp_jpeg": base + "_disp.jpeg", "depth_npy": base + "_depth.npy"}
    if save_png16:
        paths["depth_png"] = base + "_depth.png"
    if save_ply:
        paths["points_ply"] = base + "_points.ply"
    if metadata:
        paths["depth_json"] = base + "_depth.json"
    return paths


def _write_all(items):
    """atomic_write of each (path, write(tmp)) nested in the previous one's: every temporary file
    is written before the first rename, so an error leaves all earlier files as they were."""
    if items:
        (path, write), rest = items[0], items[1:]
        atomic_write(path, lambda tmp: (write(tmp), _write_all(rest)))


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _image_bytes(rgb, image_format, **params):
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=image_format, **params)
    return buffer.getvalue()


def _png16_bytes(depth):
    ok, data = cv2.imencode(".png", depth_to_png16(depth))
    if not ok:
        raise OSError("cv2 could not encode the 16-bit PNG")
    return data.tobytes()


ENCODED_KINDS = ("disp_npy", "disp_jpeg", "disp_png", "depth_npy", "depth_png", "depth_json")


def depth_record(scale_factor, metadata=None):
    """The <stem>_depth.json record: the depth scale factor used, then `metadata` (e.g. the focal
    rescaling of metric depth)."""
    return {"depth_scale_factor": scale_factor, **(metadata or {})}


def encode_prediction(disp, original_size, kinds, scale_factor=STEREO_SCALE_FACTOR, colormap="magma", min_depth=0.1,
                      max_depth=100.0, metadata=None, depth=None, colour_range=None):
    """{kind: bytes} for `kinds` of ENCODED_KINDS: the contents of the files write_prediction writes
    (module docstring; "depth_json" records scale_factor and `metadata`), and "disp_png", the colour
    map of <stem>_disp.jpeg as a lossless RGB PNG. `depth`, `colour_range`: as write_prediction's."""
    disp = _as_map(disp)
    encoders = {
        "depth_json": lambda: (json.dumps(depth_record(scale_factor, metadata), indent=1) + "\n").encode(),
        "disp_npy": lambda: _npy_bytes(disp.astype(np.float32)),
        "disp_jpeg": lambda: _image_bytes(colored(), "JPEG", quality=95),
        "disp_png": lambda: _image_bytes(colored(), "PNG"),
        "depth_npy": lambda: _npy_bytes(depth_map()),
        "depth_png": lambda: _png16_bytes(depth_map()),
    }
    cache = {} if depth is None else {"depth": depth}

    def depth_map():
        if "depth" not in cache:
            cache["depth"] = disparity_to_depth(disp, original_size, scale_factor, min_depth, max_depth)
        return cache["depth"]

    def colored():
        if "colored" not in cache:
            cache["colored"] = prediction_colours(disp, original_size, colormap, depth_map() if colour_range else None,
                                                  colour_range)
        return cache["colored"]

    return {kind: encoders[kind]() for kind in kinds}


def _write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)


def write_prediction(output_dir, stem, disp, original_size, scale_factor=STEREO_SCALE_FACTOR, colormap="magma",
                     save_png16=False, min_depth=0.1, max_depth=100.0, points=None, metadata=None, depth=None,
                     colour_range=None):
    """Write the per-image outputs (see the module docstring) and return {kind: path} with kinds
    "disp_npy", "disp_jpeg", "depth_npy", with save_png16 "depth_png", with `points` = (H x W x 3
    uint8 colours at the photo's size, (fx, fy, cx, cy) at that size) "points_ply" and with `metadata`
    (a JSON-serialisable dict) "depth_json". `depth` (H x W at the photo's size): the depth to write
    instead of the disparity's (a video's aligned frame), coloured as 1 / depth over `colour_range`."""
    paths = prediction_paths(output_dir, stem, save_png16, points is not None, bool(metadata))
    if depth is None and points is not None:
        depth = disparity_to_depth(_as_map(disp), original_size, scale_factor, min_depth, max_depth)
    encoded = encode_prediction(disp, original_size, [k for k in paths if k != "points_ply"], scale_factor,
                                colormap, min_depth, max_depth, metadata, depth, colour_range)
    writers = {kind: (lambda f, data=data: _write_bytes(f, data)) for kind, data in encoded.items()}
    if points is not None:
        writers["points_ply"] = lambda f: pointcloud.write_ply(f, *pointcloud.cloud(depth, points[0], points[1]))
    os.makedirs(output_dir, exist_ok=True)
    _write_all([(path, writers[kind]) for kind, path in paths.items()])
    return paths
