"""Undistorted, rectified frames in the folder layout from a calibration record (utils/cameras/record.py).
Paddle-free.

    build_maps(record)                    {side: (map1, map2)} by cv2.initUndistortRectifyMap(K, dist, R, P)
    save_maps(path, maps, size) / load_maps(path, size)   the maps as .npz (left_map1, left_map2, ...)
    maps_of(record, folder)               the record's saved maps file when it names one, else build_maps
    rectify_sequence(record, maps, left, right, out, overwrite)   ROOT/<sequence>/left|right/ and its camera.json

Frames are remapped with bilinear interpolation (cv2.remap); pixels that fall outside the source image
are black (a stereo calibration with alpha 0 has none). Names are kept; a right frame takes its left
partner's name, as the layout pairs them.
"""
import contextlib
import os

import cv2
import numpy as np
from tqdm import tqdm

from utils.cameras.calibration import pair_names
from utils.cameras.record import CalibrationError, layout_camera, write_camera
from utils.io.fileio import atomic_folder, atomic_write

SIDES = ("left", "right")
OUT_EXTS = (".png", ".jpg", ".jpeg")   # what the folder layout reads; other inputs are written as .png


def build_maps(record):
    """{side: (map1, map2)} for each side of the record (fixed-point CV_16SC2 maps, cv2's fast remap)."""
    block = record["calibration"]
    size = tuple(int(v) for v in block["image_size"])
    maps = {}
    for name in SIDES:
        if name in block:
            k, dist, r, p = (np.asarray(block[name][key], np.float64) for key in ("K", "distortion", "R", "P"))
            maps[name] = cv2.initUndistortRectifyMap(k, dist, r, p[:, :3], size, cv2.CV_16SC2)
    return maps


def save_maps(path, maps, size):
    """The maps as a compressed .npz beside camera.json, written atomically."""
    arrays = {"image_size": np.asarray(size, np.int64)}
    for name, (m1, m2) in maps.items():
        arrays[f"{name}_map1"], arrays[f"{name}_map2"] = m1, m2
    atomic_write(path, lambda tmp: np.savez_compressed(tmp, **arrays))


def load_maps(path, size):
    """{side: (map1, map2)} of a saved .npz; CalibrationError when missing or made for another image size."""
    try:
        with np.load(path) as f:
            saved = tuple(int(v) for v in f["image_size"])
            maps = {n: (f[f"{n}_map1"], f[f"{n}_map2"]) for n in SIDES if f"{n}_map1" in f}
    except (OSError, KeyError, ValueError) as e:
        raise CalibrationError(f"{path}: not readable rectification maps ({str(e).splitlines()[0]}); run "
                               "calibrate.py again") from None
    if saved != tuple(size):
        raise CalibrationError(f"{path} holds maps for {saved[0]} x {saved[1]} images, the calibration is for "
                               f"{size[0]} x {size[1]}: run calibrate.py again")
    return maps


def maps_of(record, folder):
    """The maps named by the record (its "maps" file beside the camera.json in `folder`), else built from it."""
    name = record["calibration"].get("maps")
    if name:
        return load_maps(os.path.join(folder, name), record["calibration"]["image_size"])
    return build_maps(record)


def _out_name(name, stem=None):
    base, ext = os.path.splitext(name)
    return (stem or base) + (ext if ext.lower() in OUT_EXTS else ".png")


def _remap_into(path, maps, size, folder, out_name):
    data = np.fromfile(path, np.uint8) if os.path.isfile(path) else np.zeros(0, np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise CalibrationError(f"{path}: not a readable image")
    if (image.shape[1], image.shape[0]) != tuple(size):
        raise CalibrationError(f"{path} is {image.shape[1]} x {image.shape[0]} but the calibration is for {size[0]} x "
                               f"{size[1]} images: rectify photos of the calibrated camera at its size")
    out = cv2.remap(image, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    ext = os.path.splitext(out_name)[1]
    ok, encoded = cv2.imencode(ext, out, [cv2.IMWRITE_JPEG_QUALITY, 95] if ext.lower() != ".png" else [])
    if not ok:
        raise CalibrationError(f"cannot encode {out_name}")
    encoded.tofile(os.path.join(folder, out_name))


def rectify_sequence(record, maps, left, right, out, overwrite=False, calibration_path=None, progress="rectifying"):
    """Write the remapped frames of `left` (and `right`, paired by file name) as out/left/ and out/right/ with
    out/camera.json (the record's stored camera) and, where absent, the same as out/../camera.json so that
    the parent is a folder-layout ROOT. All frames are written to temporary folders renamed only when
    every frame is done: an error leaves nothing. Returns (frames per side, the camera written)."""
    size = tuple(int(v) for v in record["calibration"]["image_size"])
    if right and "right" not in maps:
        raise CalibrationError("the calibration is of one camera: --right needs a stereo calibration "
                               "(calibrate.py --images LEFT --right RIGHT)")
    names = {os.path.basename(p): p for p in left}
    pairs = [(n, None) for n in names]
    if right:
        right_paths = {os.path.basename(p): p for p in right}
        pairs = pair_names(list(names), list(right_paths))
    busy = [s for s in SIDES[:1 + bool(right)] if os.path.exists(os.path.join(out, s))]
    if busy and not overwrite:
        raise CalibrationError(f"{os.path.join(out, busy[0])} exists: pass --overwrite to replace it, or choose "
                               "another --out")
    made = [os.path.abspath(out)]          # the folders this call creates, deepest first
    while not os.path.exists(os.path.dirname(made[-1])):
        made.append(os.path.dirname(made[-1]))
    made = [m for m in made if not os.path.exists(m)]
    os.makedirs(out, exist_ok=True)
    try:
        with atomic_folder(os.path.join(out, "left")) as left_tmp, \
                (atomic_folder(os.path.join(out, "right")) if right else contextlib.nullcontext()) as right_tmp:
            for l_name, r_name in tqdm(pairs, desc=progress, unit="frame", disable=progress is None or len(pairs) < 2):
                _remap_into(names[l_name], maps["left"], size, left_tmp, _out_name(l_name))
                if r_name is not None:
                    _remap_into(right_paths[r_name], maps["right"], size, right_tmp,
                                _out_name(r_name, os.path.splitext(l_name)[0]))
    except BaseException:
        for folder in made:
            if not os.listdir(folder):
                os.rmdir(folder)
        raise
    note = f"rectified by calibrate.py from {calibration_path}" if calibration_path else None
    camera = layout_camera(record, note)
    if not right:
        camera.pop("baseline", None)
    write_camera(os.path.join(out, "camera.json"), camera)
    root_camera = os.path.join(os.path.dirname(os.path.abspath(out)), "camera.json")
    if not os.path.exists(root_camera):
        write_camera(root_camera, camera)
    return len(pairs), camera
