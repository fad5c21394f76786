"""Calibrations users already have, as camera.json records (utils/cameras/record.py). Paddle-free.

    import_calibration(path, fmt, camera_id, right, image_size) -> (record, notes)
    detect_format(path)                 kitti | ros | opencv | colmap from the file's name and content

kitti   calib_cam_to_cam.txt of KITTI raw: camera `camera_id` (default 2, the left colour camera) as its
        rectified images are stored: P_rect_0N at S_rect_0N. Cameras 0/1 and 2/3 are stereo pairs; the
        baseline of a left camera (0 or 2) is the x distance between its and its partner's rectified
        centres, t = K^-1 P_rect[:, 3] (0.54 m for 2/3).
ros     camera_info as camera_calibration_parsers writes it (image_width, camera_matrix: {data: [...]},
        distortion_coefficients, rectification_matrix, projection_matrix) or as a message dump (width, K, D,
        R, P; ROS 2: k, d, r, p). The stored camera is P's (ROS's rectified image, image_rect); `right` (the
        right camera's file) adds the baseline, -P_right[0,3] / P_right[0,0] (ROS's Tx = -fx' B).
opencv  cv2.FileStorage YAML/XML: camera_matrix (or cameraMatrix, K) and distortion_coefficients (or
        distCoeffs, D), image_width/image_height (or --image_size); OpenCV's stereo sample files (M1, D1, M2,
        D2 with R, T in the same file or in `right`) are rectified with cv2.stereoRectify.
colmap  cameras.txt: SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL, OPENCV, FULL_OPENCV (their distortion
        is OpenCV's model). COLMAP puts the centre of the top-left pixel at (0.5, 0.5), the project at (0, 0):
        cx = cx_colmap - 0.5, cy = cy_colmap - 0.5.

Distortion is never dropped: the record keeps K and the coefficients, its stored camera is the undistorted
one (K itself, or ROS's P), and a note says to write those frames with calibrate.py --rectify.
"""
import os

import numpy as np

from utils.cameras.record import CalibrationError, camera_record, remaps, side

FORMATS = ("kitti", "ros", "opencv", "colmap")
# COLMAP camera models whose parameters are (focal(s), centre, OpenCV distortion): name -> reader of PARAMS
COLMAP_MODELS = {
    "SIMPLE_PINHOLE": lambda p: (p[0], p[0], p[1], p[2], []),
    "PINHOLE": lambda p: (p[0], p[1], p[2], p[3], []),
    "SIMPLE_RADIAL": lambda p: (p[0], p[0], p[1], p[2], [p[3], 0, 0, 0]),
    "RADIAL": lambda p: (p[0], p[0], p[1], p[2], [p[3], p[4], 0, 0]),
    "OPENCV": lambda p: (p[0], p[1], p[2], p[3], p[4:8]),
    "FULL_OPENCV": lambda p: (p[0], p[1], p[2], p[3], p[4:12]),
}
COLMAP_PARAMS = {"SIMPLE_PINHOLE": 3, "PINHOLE": 4, "SIMPLE_RADIAL": 4, "RADIAL": 5, "OPENCV": 8, "FULL_OPENCV": 12}


def detect_format(path):
    name = os.path.basename(path).lower()
    if name.endswith(".xml"):
        return "opencv"
    with open(path, errors="replace") as f:
        head = f.read(4096)
    if "P_rect_0" in head or "S_rect_0" in head:
        return "kitti"
    if name.startswith("cameras") and name.endswith(".txt") or "CAMERA_ID" in head:
        return "colmap"
    if head.lstrip().startswith("%YAML") or "!!opencv-matrix" in head:
        return "opencv"
    if name.endswith((".yaml", ".yml")):
        return "ros"
    raise CalibrationError(f"{path}: cannot tell its format; pass --format {'|'.join(FORMATS)}")


def import_calibration(path, fmt="auto", camera_id=None, right=None, image_size=None, alpha=0.0):
    """(camera.json record, [notes to print]) of a calibration file; CalibrationError (one line) otherwise.
    `alpha`: stereo rectification of OpenCV stereo files (calibration.rectify_rig)."""
    fmt = detect_format(path) if fmt in (None, "auto") else fmt
    if right and fmt not in ("ros", "opencv"):
        raise CalibrationError(f"--right with --import is for ROS and OpenCV files; {fmt} holds both cameras itself")
    reader = {"kitti": read_kitti, "ros": read_ros, "opencv": read_opencv, "colmap": read_colmap}[fmt]
    record, notes = reader(path, camera_id=camera_id, right=right, image_size=image_size, alpha=alpha)
    block = record["calibration"]
    if any(remaps(block[s]) for s in ("left", "right") if s in block):
        notes.append(f"{path}: the camera's own images are distorted or unrectified; camera.json describes them "
                     "undistorted" + (" and rectified" if "right" in block else "") + " (the record keeps K and the "
                     "distortion coefficients)")
    return record, notes


# ------------------------------------------------------------------------------------------------- KITTI
def _kitti_values(path):
    values = {}
    with open(path) as f:
        for line in f:
            key, _, rest = line.partition(":")
            try:
                values[key.strip()] = np.array([float(v) for v in rest.split()])
            except ValueError:
                continue   # calib_time
    return values


def read_kitti(path, camera_id=None, **_):
    n = 2 if camera_id is None else camera_id
    if n not in (0, 1, 2, 3):
        raise CalibrationError(f"--camera_id {n}: KITTI's cameras are 0-3 (2: left colour, 3: right colour)")
    values = _kitti_values(path)
    p_key, s_key = f"P_rect_0{n}", f"S_rect_0{n}"
    if p_key not in values or values[p_key].size != 12 or values.get(s_key, np.zeros(0)).size != 2:
        raise CalibrationError(f"{path}: no {p_key} (12 numbers) and {s_key} (2 numbers): not a KITTI "
                               "calib_cam_to_cam.txt, or another camera_id")
    p = values[p_key].reshape(3, 4)
    k = p[:, :3]
    size = values[s_key].round().astype(int)
    notes, right = [], None
    partner = f"P_rect_0{n ^ 1}"
    if n % 2 == 0 and partner in values and values[partner].size == 12:
        t_self = np.linalg.solve(k, p[:, 3])
        p_other = values[partner].reshape(3, 4)
        t_other = np.linalg.solve(p_other[:, :3], p_other[:, 3])
        baseline = float(t_self[0] - t_other[0])
        right = side(k, p=np.hstack([k, k @ np.array([[-baseline], [0], [0]])]))
    elif n % 2:
        notes.append(f"camera {n} is the right camera of its pair: no baseline written (for stereo import camera "
                     f"{n - 1}, whose frames go to left/ and camera {n}'s to right/)")
    record = camera_record(side(k), size, f"KITTI {os.path.basename(path)} camera {n} (rectified)", right=right)
    return record, notes


# ------------------------------------------------------------------------------------------------- ROS
def _ros_matrix(data, names, shape, path):
    for name in names:
        if name in data and data[name] is not None:
            value = data[name]
            value = value.get("data") if isinstance(value, dict) else value
            try:
                return np.asarray(value, np.float64).reshape(shape)
            except (TypeError, ValueError):
                raise CalibrationError(f"{path}: {name} is not {' x '.join(map(str, shape))} numbers") from None
    return None


def _ros_side(path):
    import yaml

    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise CalibrationError(f"{path}: not readable YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise CalibrationError(f"{path}: not a ROS camera_info YAML (expected camera_matrix, image_width, ...)")
    k = _ros_matrix(data, ("camera_matrix", "K", "k"), (3, 3), path)
    if k is None:
        raise CalibrationError(f"{path}: no camera matrix (camera_matrix: {{rows: 3, cols: 3, data: [...]}}, or K): "
                               "not a ROS camera_info file")
    model = data.get("distortion_model", "plumb_bob")
    if model not in ("plumb_bob", "rational_polynomial", None, ""):
        raise CalibrationError(f"{path}: distortion_model {model} is not OpenCV's pinhole model (plumb_bob, "
                               "rational_polynomial): undistort the images with that model's tools first")
    dist = _ros_matrix(data, ("distortion_coefficients", "D", "d"), (-1,), path)
    r = _ros_matrix(data, ("rectification_matrix", "R", "r"), (3, 3), path)
    p = _ros_matrix(data, ("projection_matrix", "P", "p"), (3, 4), path)
    if p is not None and not p[:, :3].any():
        p = None   # an all-zero P: an uncalibrated camera_info
    size = (data.get("image_width", data.get("width")), data.get("image_height", data.get("height")))
    if not all(isinstance(v, int) and v > 0 for v in size):
        raise CalibrationError(f"{path}: no image size (image_width, image_height)")
    return side(k, [] if dist is None else dist, r, p), size


def read_ros(path, right=None, **_):
    left, size = _ros_side(path)
    other = None
    if right:
        other, right_size = _ros_side(right)
        if right_size != size:
            raise CalibrationError(f"{right} is for {right_size[0]} x {right_size[1]} images, {path} for {size[0]} x "
                                   f"{size[1]}: give the two cameras of one stereo pair")
        if not -np.asarray(other["P"])[0, 3] > 0:
            raise CalibrationError(f"{right}: its P has no baseline (Tx = P[0,3] = -fx' B < 0 for the right camera): "
                                   "give the right camera's camera_info as --right")
    return camera_record(left, size, f"ROS camera_info {os.path.basename(path)}", right=other), []


# ------------------------------------------------------------------------------------------------- OpenCV
def read_opencv(path, camera_id=None, right=None, image_size=None, alpha=0.0, **_):
    import cv2

    files = [path] + ([right] if right else [])
    found = {}
    for name in files:
        try:
            fs = cv2.FileStorage(name, cv2.FILE_STORAGE_READ)
        except cv2.error as e:
            raise CalibrationError(f"{name}: not an OpenCV FileStorage YAML/XML ({str(e).strip().splitlines()[-1]})") \
                from None
        if not fs.isOpened():
            raise CalibrationError(f"{name}: not an OpenCV FileStorage YAML/XML")
        for key in ("camera_matrix", "cameraMatrix", "K", "distortion_coefficients", "distCoeffs", "dist_coeffs", "D",
                    "M1", "D1", "M2", "D2", "R", "T"):
            node = fs.getNode(key)
            if not node.empty() and key not in found:
                found[key] = node.mat()
        for key in ("image_width", "image_height"):
            node = fs.getNode(key)
            if node.isReal() or node.isInt():
                found.setdefault(key, int(node.real()))
        fs.release()
    size = image_size
    if size is None and "image_width" in found and "image_height" in found:
        size = (found["image_width"], found["image_height"])
    if size is None:
        raise CalibrationError(f"{path}: no image size (image_width, image_height): pass --image_size WxH")
    pick = lambda *keys: next((found[k] for k in keys if found.get(k) is not None), None)  # noqa: E731
    stereo = all(found.get(k) is not None for k in ("M1", "D1", "M2", "D2", "R", "T"))
    if stereo and camera_id is None:
        from utils.cameras.calibration import rectify_rig

        k1, d1, k2, d2 = (np.asarray(found[k], np.float64) for k in ("M1", "D1", "M2", "D2"))
        r1, r2, p1, p2 = rectify_rig(k1, d1, k2, d2, size, found["R"], found["T"], alpha)
        record = camera_record(side(k1, d1, r1, p1), size, f"OpenCV stereo {os.path.basename(path)}",
                               right=side(k2, d2, r2, p2), R=np.asarray(found["R"]).tolist(),
                               T=np.asarray(found["T"]).ravel().tolist())
        return record, [f"baseline {record['baseline']:.4g} in the unit of the file's T (OpenCV's stereo sample: the "
                        "unit of the square size it was given); camera.json needs metres"]
    n = camera_id or 1
    k = pick("camera_matrix", "cameraMatrix", "K", f"M{n}")
    dist = pick("distortion_coefficients", "distCoeffs", "dist_coeffs", "D", f"D{n}")
    if k is None or np.asarray(k).size != 9:
        raise CalibrationError(f"{path}: no 3 x 3 camera matrix (camera_matrix, cameraMatrix, K or M1/M2)")
    return camera_record(side(k, [] if dist is None else dist), size, f"OpenCV {os.path.basename(path)}"), []


# ------------------------------------------------------------------------------------------------- COLMAP
def read_colmap(path, camera_id=None, **_):
    cameras = {}
    with open(path) as f:
        for line in f:
            fields = line.split()
            if fields and not fields[0].startswith("#"):
                cameras[fields[0]] = fields[1:]
    if not cameras:
        raise CalibrationError(f"{path}: no cameras (lines 'CAMERA_ID MODEL WIDTH HEIGHT PARAMS...'); a binary "
                               "cameras.bin: convert it with colmap model_converter --output_type TXT")
    if camera_id is None and len(cameras) > 1:
        raise CalibrationError(f"{path} holds {len(cameras)} cameras ({', '.join(list(cameras)[:8])}): pick one "
                               "with --camera_id")
    key = next(iter(cameras)) if camera_id is None else str(camera_id)
    if key not in cameras:
        raise CalibrationError(f"{path}: no camera {key} (it holds {', '.join(list(cameras)[:8])})")
    model, *rest = cameras[key]
    if model not in COLMAP_MODELS:
        raise CalibrationError(f"{path}: camera {key} is {model}; supported: {', '.join(COLMAP_MODELS)} (OpenCV's "
                               "model); undistort with colmap image_undistorter and import its PINHOLE cameras.txt")
    try:
        width, height = int(rest[0]), int(rest[1])
        params = [float(v) for v in rest[2:]]
    except (IndexError, ValueError):
        raise CalibrationError(f"{path}: camera {key}: expected 'MODEL WIDTH HEIGHT PARAMS...'") from None
    if len(params) != COLMAP_PARAMS[model]:
        raise CalibrationError(f"{path}: camera {key} ({model}) needs {COLMAP_PARAMS[model]} parameters, has "
                               f"{len(params)}")
    fx, fy, cx, cy, dist = COLMAP_MODELS[model](params)
    k = np.array([[fx, 0, cx - 0.5], [0, fy, cy - 0.5], [0, 0, 1]])
    record = camera_record(side(k, dist), (width, height), f"COLMAP {os.path.basename(path)} camera {key} ({model})")
    return record, []
