"""Camera poses of a sequence's frames, Paddle-free: every reader returns an N x 4 x 4 float64 array of
camera-to-world matrices (a point X in the camera of frame i is at P[i] @ [X, 1] in the world), with the
camera axes x right, y down, z forward (KITTI's and this project's convention).

Sources:
    pose file    one frame a line, 12 numbers: the row-major 3 x 4 [R | t] camera-to-world matrix
                 (the synthetic KITTI's poses/<drive>.txt, KITTI odometry's poses/<nn>.txt, the folder
                 layout's optional <sequence>/poses.txt); read_pose_file
    KITTI raw    the GPS/IMU records of <drive>/oxts/ and the date's calibration files: oxts_camera_poses

KITTI raw's oxts give the IMU's pose as KITTI's devkit (convertOxtsToPose.m) defines it:
    s = cos(lat_0)                         Mercator scale, from the first frame's latitude
    t = (s r lon pi / 180,  s r log(tan(pi (90 + lat) / 360)),  alt)      r = 6378137 m (east, north, up)
    R = Rz(yaw) Ry(pitch) Rx(roll)         IMU axes x forward, y left, z up
and every pose is taken relative to the first frame's. The camera follows through the calibration chain
    X_cam = T_cam_rect0 R_rect_00 T_velo_to_cam T_imu_to_velo X_imu
where T_cam_rect0 is the rectified camera's offset from camera 0: translation K^-1 P_rect_0c[:, 3]
(P_rect_0c = K [I | t]). With I_i the IMU-to-world pose of frame i and C that chain (IMU -> camera), the
camera's pose is C I_0^-1 I_i C^-1: camera-to-world with world = the camera at the first frame read.
"""
import os

import numpy as np

from utils.cameras.folder_layout import frame_names, poses_path
from utils.cameras.kitti_calibration import read_calib_file
from utils.sensors.oxts import OXTS_DIR, OxtsError, oxts_path, read_oxts

POSE_NUMBERS = 12
EARTH_RADIUS = 6378137.0     # metres, the devkit's (WGS84 equatorial radius)
ROTATION_TOLERANCE = 1e-3    # |R^T R - I| and |det R - 1| above this: not a rotation
IMU_CALIB_FILE = "calib_imu_to_velo.txt"


class PoseError(ValueError):
    """A pose file or calibration that cannot give poses; the message is one line naming the file."""


def read_pose_file(path):
    """N x 4 x 4 camera-to-world matrices of a pose file (module docstring); blank lines are skipped.
    PoseError for a missing file, a line without 12 numbers, or a 3 x 3 part that is not a rotation."""
    fix = "one frame a line: the 12 numbers of the row-major 3 x 4 camera-to-world matrix [R | t]"
    try:
        with open(path) as f:
            lines = [(n, line.split()) for n, line in enumerate(f, 1) if line.strip()]
    except FileNotFoundError:
        raise PoseError(f"missing pose file {path} ({fix})") from None
    poses = np.tile(np.eye(4), (len(lines), 1, 1))
    for i, (number, words) in enumerate(lines):
        try:
            values = np.array(words, dtype=np.float64)
        except ValueError:
            values = np.empty(0)
        if values.size != POSE_NUMBERS or not np.isfinite(values).all():
            raise PoseError(f"{path}:{number}: expected {POSE_NUMBERS} numbers ({fix})")
        poses[i, :3] = values.reshape(3, 4)
        if not is_rotation(poses[i, :3, :3]):
            raise PoseError(f"{path}:{number}: the 3 x 3 part is not a rotation ({fix})")
    if not len(poses):
        raise PoseError(f"{path}: no pose in the file ({fix})")
    return poses


def is_rotation(r, tol=ROTATION_TOLERANCE):
    """True when r is orthonormal with determinant +1 (within tol)."""
    return bool(np.abs(r.T @ r - np.eye(3)).max() < tol and abs(np.linalg.det(r) - 1) < tol)


def rotation_xyz(roll, pitch, yaw):
    """Rz(yaw) Ry(pitch) Rx(roll): the IMU's orientation in east-north-up (the devkit's convention)."""
    cr, sr, cp, sp, cy, sy = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx


def oxts_to_imu_poses(records):
    """N x 4 x 4 IMU-to-world poses of oxts records (N x 30: lat, lon, alt, roll, pitch, yaw, ...), by the
    devkit's rule (module docstring), relative to the first record's pose (which becomes the identity)."""
    records = np.asarray(records, np.float64)
    scale = np.cos(np.radians(records[0, 0]))
    poses = np.tile(np.eye(4), (len(records), 1, 1))
    for pose, (lat, lon, alt, roll, pitch, yaw) in zip(poses, records[:, :6]):
        pose[:3, 3] = (scale * EARTH_RADIUS * np.radians(lon),
                       scale * EARTH_RADIUS * np.log(np.tan(np.radians(90 + lat) / 2)), alt)
        pose[:3, :3] = rotation_xyz(roll, pitch, yaw)
    return np.linalg.inv(poses[0]) @ poses


def _rigid(calib, path):
    """4 x 4 [R | T] of a calibration file's 'R' (9 numbers) and 'T' (3 numbers)."""
    if any(k not in calib or isinstance(calib[k], str) or calib[k].size != n for k, n in (("R", 9), ("T", 3))):
        raise PoseError(f"{path}: missing or malformed entry 'R' (9 numbers) or 'T' (3 numbers)")
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = calib["R"].reshape(3, 3), calib["T"]
    return m


def imu_to_camera(calib_dir, cam=2):
    """4 x 4 transform from IMU coordinates to rectified camera `cam` coordinates (module docstring),
    from calib_imu_to_velo.txt, calib_velo_to_cam.txt and calib_cam_to_cam.txt in `calib_dir`."""
    files = {name: os.path.join(calib_dir, name)
             for name in (IMU_CALIB_FILE, "calib_velo_to_cam.txt", "calib_cam_to_cam.txt")}
    try:
        calib = {name: read_calib_file(path) for name, path in files.items()}
    except (FileNotFoundError, ValueError) as e:
        raise PoseError(str(e)) from None
    cam_to_cam = calib["calib_cam_to_cam.txt"]
    r_key, p_key = "R_rect_00", f"P_rect_0{cam}"
    for key, size in ((r_key, 9), (p_key, 12)):
        if key not in cam_to_cam or isinstance(cam_to_cam[key], str) or cam_to_cam[key].size != size:
            raise PoseError(f"{files['calib_cam_to_cam.txt']}: missing or malformed entry '{key}'")
    rect = np.eye(4)
    rect[:3, :3] = cam_to_cam[r_key].reshape(3, 3)
    p = cam_to_cam[p_key].reshape(3, 4)
    offset = np.eye(4)
    offset[:3, 3] = np.linalg.solve(p[:, :3], p[:, 3])
    velo_to_cam = _rigid(calib["calib_velo_to_cam.txt"], files["calib_velo_to_cam.txt"])
    imu_to_velo = _rigid(calib[IMU_CALIB_FILE], files[IMU_CALIB_FILE])
    return offset @ rect @ velo_to_cam @ imu_to_velo


def camera_matrix(calib_dir, cam=2):
    """3 x 3 K of rectified camera `cam` in 0-based pixels of the stored images: P_rect_0c's left 3 x 3
    with the principal point moved by -1 (KITTI's calibration is 1-based; utils.cameras.kitti_calibration)."""
    path = os.path.join(calib_dir, "calib_cam_to_cam.txt")
    try:
        p = read_calib_file(path).get(f"P_rect_0{cam}")
    except (FileNotFoundError, ValueError) as e:
        raise PoseError(str(e)) from None
    if p is None or isinstance(p, str) or p.size != 12:
        raise PoseError(f"{path}: missing or malformed entry 'P_rect_0{cam}'")
    k = p.reshape(3, 4)[:, :3].copy()
    k[:2, 2] -= 1
    return k


def oxts_camera_poses(drive_dir, calib_dir, frames=None, cam=2):
    """N x 4 x 4 camera-to-world poses of camera `cam` (2: left colour) of a KITTI raw drive, from its oxts
    records (<drive_dir>/oxts/data/) and calibration: world = the camera at the first of `frames` (all
    frames of oxts/data when None). PoseError / utils.sensors.oxts.OxtsError name a missing or malformed file."""
    if frames is None:
        folder = os.path.join(drive_dir, OXTS_DIR, "data")
        if not os.path.isdir(folder):
            raise OxtsError(f"missing oxts folder: {folder}")
        frames = sorted(int(os.path.splitext(n)[0]) for n in os.listdir(folder) if n.endswith(".txt"))
    imu = oxts_to_imu_poses([read_oxts(oxts_path(drive_dir, f)) for f in frames])
    chain = imu_to_camera(calib_dir, cam)
    return chain @ imu @ np.linalg.inv(chain)


def kitti_pose_file(data_path, folder):
    """<data_path>/poses/<drive>.txt: the synthetic KITTI's exact camera-2 poses (KITTI raw has none)."""
    return os.path.join(data_path, "poses", os.path.basename(os.path.normpath(folder)) + ".txt")


def sequence_poses(layout, data_path, folder, frames):
    """N x 4 x 4 camera-to-world poses of the left camera at `frames` (frame indices) of one sequence:
    layout "kitti" (KITTI raw or the synthetic KITTI; `folder` = '<date>/<drive>'): the drive's pose file
    (kitti_pose_file) when there is one, else its oxts and the date's calibration; layout "folder"
    (`folder` = the sequence): <data_path>/<sequence>/poses.txt, line i = frame i of left/ in natural order.
    PoseError / utils.sensors.oxts.OxtsError when they are missing or do not cover the frames."""
    frames = [int(f) for f in frames]
    if layout == "kitti":
        path = kitti_pose_file(data_path, folder)
        if not os.path.isfile(path):
            calib_dir = os.path.join(data_path, os.path.normpath(folder).split(os.sep)[0])
            return oxts_camera_poses(os.path.join(data_path, folder), calib_dir, frames)
    elif layout == "folder":
        path = poses_path(data_path, folder)
        count = len(frame_names(data_path, folder))
        poses = read_pose_file(path)
        if len(poses) != count:
            raise PoseError(f"{path}: {len(poses)} poses for {count} frames in left/ (one line per frame)")
        return poses[frames]
    else:
        raise ValueError(f"layout must be 'kitti' or 'folder', not {layout!r}")
    poses = read_pose_file(path)
    if max(frames) >= len(poses):
        raise PoseError(f"{path}: {len(poses)} poses, no line for frame {max(frames)}")
    return poses[frames]
