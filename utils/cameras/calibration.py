"""Chessboard calibration with OpenCV (Zhang's method as cv2.calibrateCamera implements it), mono and stereo,
to camera.json records (utils/cameras/record.py). Paddle-free.

    board: (columns, rows) of inner corners (record.parse_board)
    board_points(board, square)           N x 3 float32 corners on the board plane z = 0 in metres, row by row
    find_corners(grey, board)             N x 1 x 2 float32 sub-pixel corners, or None when no board is found
    detect(paths, board)                  Detections: the corners of every photo where the board was found
    pair_names(left, right)               [(left name, right name)] matched by file name
    calibrate_mono(corners, size, ...)    Mono: K, distortion, RMS reprojection error (pixels), per-view RMS
    mono_record(...) / stereo_record(...) the camera.json dicts (stereo: rectified cameras, baseline in metres)

The RMS reprojection error is sqrt(mean over every corner of |projected - detected|^2), cv2's own measure.
A board whose inner-corner counts differ in parity (9 x 6) has one ordering of its corners, so left and
right views of one board pair up corner by corner.
"""
import os
import re
from dataclasses import dataclass, field

import cv2
import numpy as np
from tqdm import tqdm

from utils.cameras.record import CalibrationError, camera_record, side

# Fewer usable views than this are refused. Zhang's method needs 3 views of a plane for the 4 intrinsics; the
# 5 distortion coefficients and the noise of hand-held photos need more. 10-20 views tilted in different
# directions, covering the corners of the image, give a calibration within a fraction of a per cent.
MIN_VIEWS = 6
DETECT_SIDE = 1280      # the board is searched in a copy at most this long (long side); corners refined at full size
SUBPIX_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4)


def board_points(board, square):
    """The inner corners on the board plane z = 0, in metres, row by row (OpenCV's order), float32 N x 3."""
    cols, rows = board
    grid = np.mgrid[0:cols, 0:rows].T.reshape(-1, 2) * float(square)
    return np.hstack([grid, np.zeros((len(grid), 1))]).astype(np.float32)


def find_corners(grey, board):
    """Sub-pixel inner corners (N x 1 x 2 float32, pixel centres at integers) of `board` in a uint8 grey image,
    or None. Searched (findChessboardCorners, else the more tolerant findChessboardCornersSB) in a copy whose
    long side is at most DETECT_SIDE, then refined with cornerSubPix at full size in a window under half the
    corner spacing (a wider one could reach the next corner)."""
    scale = min(1.0, DETECT_SIDE / max(grey.shape))
    small = grey if scale == 1.0 else cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK
    found, corners = cv2.findChessboardCorners(small, board, flags=flags)
    if not found:
        found, corners = cv2.findChessboardCornersSB(small, board, flags=cv2.CALIB_CB_NORMALIZE_IMAGE)
        if not found:
            return None
    corners = ((corners.reshape(-1, 1, 2).astype(np.float64) + 0.5) / scale - 0.5).astype(np.float32)
    grid = corners.reshape(board[1], board[0], 2)
    spacing = min(np.linalg.norm(np.diff(grid, axis=a), axis=2).min() for a in (0, 1))
    win = int(np.clip(0.4 * spacing, 2, 11))
    return cv2.cornerSubPix(grey, corners, (win, win), (-1, -1), SUBPIX_CRITERIA)


def read_grey(path):
    """uint8 grey image (EXIF orientation applied, as cv2.imread does), or None when unreadable."""
    try:
        data = np.fromfile(path, np.uint8)   # not cv2.imread: paths with non-ASCII characters
    except OSError:
        return None
    return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None


@dataclass
class Detections:
    """Corners {file name: N x 1 x 2} where the board was found, `skipped` [(name, reason)], image `size` (w, h)."""
    folder: str
    corners: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    size: tuple = None


def detect(paths, board, progress="finding corners"):
    """find_corners on every photo; photos of another size than the first refuse the set (CalibrationError)."""
    found = Detections(folder=os.path.dirname(paths[0]) if paths else "")
    for path in tqdm(paths, desc=progress, unit="photo", disable=progress is None or len(paths) < 2):
        name = os.path.basename(path)
        grey = read_grey(path)
        if grey is None:
            found.skipped.append((name, "not a readable image"))
            continue
        size = (grey.shape[1], grey.shape[0])
        if found.size is None:
            found.size = size
        elif size != found.size:
            raise CalibrationError(f"{path} is {size[0]} x {size[1]} but the photos before it are {found.size[0]} x "
                                   f"{found.size[1]}: calibrate one image size and orientation at a time")
        corners = find_corners(grey, board)
        if corners is None:
            found.skipped.append((name, "no board found"))
        else:
            found.corners[name] = corners
    return found


def _stem_key(name):
    return os.path.splitext(name)[0]


def _number_key(name):
    digits = re.findall(r"\d+", _stem_key(name))
    return int(digits[-1]) if digits else None


def pair_names(left, right):
    """[(left name, right name)] of two folders' file names, matched by name without extension; where no name
    is shared at all (left01.png / right01.png), by the last number in the name. Every name must find its
    partner: CalibrationError listing those that do not."""
    for key in (_stem_key, _number_key):
        lk, rk = {key(n): n for n in left}, {key(n): n for n in right}
        if None in lk or None in rk or len(lk) != len(left) or len(rk) != len(right) or not set(lk) & set(rk):
            continue
        alone = sorted(set(lk) ^ set(rk), key=str)
        if alone:
            names = [lk.get(k) or rk.get(k) for k in alone]
            raise CalibrationError(f"{len(names)} photo(s) without a partner of the same name in the other folder "
                                   f"({', '.join(names[:5])}{' ...' if len(names) > 5 else ''}): left and right "
                                   "photos pair up by file name")
        return [(lk[k], rk[k]) for k in lk]
    raise CalibrationError("the left and right photos share no file names (nor numbers in their names): name each "
                           "pair alike, e.g. left/0001.png and right/0001.png")


@dataclass
class Mono:
    k: np.ndarray
    dist: np.ndarray
    rms: float
    view_rms: dict


def calibrate_mono(corners, size, board, square):
    """cv2.calibrateCamera on {name: corners} (k1, k2, p1, p2, k3) -> Mono, with each view's RMS error."""
    names = list(corners)
    obj = board_points(board, square)
    rms, k, dist, rvecs, tvecs = cv2.calibrateCamera([obj] * len(names), [corners[n] for n in names], size, None, None)
    view_rms = {}
    for name, rvec, tvec in zip(names, rvecs, tvecs):
        projected = cv2.projectPoints(obj, rvec, tvec, k, dist)[0]
        view_rms[name] = float(np.sqrt(np.mean(np.sum((projected - corners[name]) ** 2, axis=2))))
    return Mono(k, dist.ravel(), float(rms), view_rms)


def check_views(count, what, folder, skipped):
    if count < MIN_VIEWS:
        why = f"; {len(skipped)} photo(s) without a board found" if skipped else ""
        raise CalibrationError(f"{count} usable {what} in {folder}, at least {MIN_VIEWS} are needed{why}: check "
                               "--board (inner corners COLSxROWS, e.g. 9x6 for 10 x 7 squares) and take more photos of "
                               "the whole board, tilted in different directions")


def _board_text(board, square):
    return f"chessboard {board[0]}x{board[1]} inner corners, squares {square:g} m"


def mono_record(detections, board, square):
    """The camera.json record of a mono calibration (the stored camera: K; images undistorted with K kept)."""
    check_views(len(detections.corners), "views", detections.folder, detections.skipped)
    mono = calibrate_mono(detections.corners, detections.size, board, square)
    return camera_record(side(mono.k, mono.dist), detections.size, _board_text(board, square), rms_px=mono.rms,
                         views=len(mono.view_rms), view_rms_px=mono.view_rms,
                         skipped=[f"{n}: {why}" for n, why in detections.skipped])


def _same_order(left, right):
    """Right corners in the left ones' order: a board seen by both cameras runs the same way in both images."""
    if np.dot((left[-1] - left[0]).ravel(), (right[-1] - right[0]).ravel()) < 0:
        return right[::-1].copy()
    return right


def rectify_rig(k1, d1, k2, d2, size, r, t, alpha=0.0):
    """(R1, R2, P1, P2) of cv2.stereoRectify (zero disparity at infinity; `alpha` 0 keeps only valid pixels, 1
    every source pixel) for a rig whose right camera sees X_right = r X_left + t; CalibrationError for a rig
    the folder layout cannot hold (stacked vertically, or left and right swapped)."""
    t = np.asarray(t, np.float64).reshape(3, 1)
    k1, d1, k2, d2, r = (np.asarray(a, np.float64) for a in (k1, d1, k2, d2, r))
    r1, r2, p1, p2, _, _, _ = cv2.stereoRectify(k1, d1, k2, d2, size, r, t, flags=cv2.CALIB_ZERO_DISPARITY,
                                                alpha=alpha)
    if abs(p2[1, 3]) > abs(p2[0, 3]):
        raise CalibrationError("the cameras are stacked vertically (T = "
                               f"{np.round(t.ravel(), 4).tolist()} m): the folder layout needs a side-by-side pair")
    if p2[0, 3] > 0:
        raise CalibrationError("the right camera is on the left (T = "
                               f"{np.round(t.ravel(), 4).tolist()} m): swap the left and right inputs")
    return r1, r2, p1, p2


def stereo_record(left, right, pairs, board, square, alpha=0.0):
    """The camera.json record of a stereo rig (Detections of each side, their name pairs): each camera
    calibrated on its own views (cv2.calibrateCamera), then R, T by cv2.stereoCalibrate (intrinsics fixed),
    rectified by rectify_rig. The stored camera is the rectified left one, "baseline" in metres; the record
    holds the rows check "rectified_row_error_px" (mean, max |y_left - y_right| of the rectified corners)."""
    if left.size != right.size:
        raise CalibrationError(f"left photos are {left.size[0]} x {left.size[1]}, right ones {right.size[0]} x "
                               f"{right.size[1]}: a stereo pair needs one image size")
    both = [(l, r) for l, r in pairs if l in left.corners and r in right.corners]
    check_views(len(both), "stereo pairs (board found in both photos)", f"{left.folder} and {right.folder}",
                [n for n, _ in left.skipped] + [n for n, _ in right.skipped])
    size = left.size
    mono_l = calibrate_mono(left.corners, size, board, square)
    mono_r = calibrate_mono(right.corners, size, board, square)
    obj = board_points(board, square)
    pts_l = [left.corners[l] for l, _ in both]
    pts_r = [_same_order(left.corners[l], right.corners[r]) for l, r in both]
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-6)
    rms, _, _, _, _, r, t, _, _ = cv2.stereoCalibrate([obj] * len(both), pts_l, pts_r, mono_l.k, mono_l.dist,
                                                      mono_r.k, mono_r.dist, size, flags=cv2.CALIB_FIX_INTRINSIC,
                                                      criteria=criteria)
    r1, r2, p1, p2 = rectify_rig(mono_l.k, mono_l.dist, mono_r.k, mono_r.dist, size, r, t, alpha)
    rows = np.concatenate([np.abs(rectified_points(a, mono_l.k, mono_l.dist, r1, p1)[:, 1]
                                  - rectified_points(b, mono_r.k, mono_r.dist, r2, p2)[:, 1])
                           for a, b in zip(pts_l, pts_r)])
    return camera_record(
        side(mono_l.k, mono_l.dist, r1, p1), size, _board_text(board, square),
        right=side(mono_r.k, mono_r.dist, r2, p2),
        rms_px=float(rms), left_rms_px=mono_l.rms, right_rms_px=mono_r.rms, views=len(both),
        R=r.tolist(), T=t.ravel().tolist(), alpha=alpha, rectified_row_error_px=[float(rows.mean()), float(rows.max())],
        skipped=[f"left {n}: {why}" for n, why in left.skipped] + [f"right {n}: {why}" for n, why in right.skipped])


def rectified_points(points, k, dist, r, p):
    """N x 2 pixel positions of distorted image points after undistortion, rotation r and projection p."""
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-10)
    return cv2.undistortPoints(np.asarray(points, np.float64).reshape(-1, 1, 2), np.asarray(k, np.float64),
                               np.asarray(dist, np.float64), R=np.asarray(r, np.float64),
                               P=np.asarray(p, np.float64), criteria=criteria)[:, 0]
