"""Chessboard photos rendered with a known camera, for the calibration tests: every pixel's ray is cast
through the lens model (OpenCV's distortion, inverted to 1e-10 px) onto the board plane and the board's
texture is sampled there, so corners land where cv2.projectPoints puts them. Small and seeded."""
import functools

import cv2
import numpy as np

TEXELS = 24   # texture pixels per board square; the texture is blurred by one texel (anti-aliasing)


def camera_matrix(fx, fy, cx, cy):
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float64)


def board_points(board, square):
    """Inner corners (cols x rows) on the board plane z = 0, row by row, as OpenCV orders them."""
    cols, rows = board
    grid = np.mgrid[0:cols, 0:rows].T.reshape(-1, 2).astype(np.float64) * square
    return np.hstack([grid, np.zeros((len(grid), 1))])


@functools.lru_cache(maxsize=4)
def board_texture(board):
    """Grey texture of the whole board: (cols + 1) x (rows + 1) squares and a one-square white margin.
    Texel (i, j) covers board x in [(i / TEXELS) - 2, ...) squares, i.e. the margin starts at -2 squares."""
    cols, rows = board
    w, h = (cols + 5) * TEXELS, (rows + 5) * TEXELS
    sq = np.indices((h, w))[::-1] // TEXELS - 2          # square index of each texel (x, y), -2 .. n + 2
    inside = (sq[0] >= -1) & (sq[0] <= cols - 1) & (sq[1] >= -1) & (sq[1] <= rows - 1)
    tex = np.where(inside & ((sq[0] + sq[1]) % 2 == 0), 25, 230).astype(np.float32)
    return cv2.GaussianBlur(tex, (0, 0), 1.0)


@functools.lru_cache(maxsize=8)
def pixel_rays(k_bytes, dist_bytes, w, h):
    """(h w) x 3 ray directions (x, y, 1) of every pixel centre through the lens (K, dist as raw float64 bytes)."""
    k, dist = np.frombuffer(k_bytes).reshape(3, 3), np.frombuffer(dist_bytes)
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    pix = np.stack([u.ravel(), v.ravel()], 1).reshape(-1, 1, 2)
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
    ray = cv2.undistortPoints(pix, k, dist, criteria=crit).reshape(-1, 2)
    return np.hstack([ray, np.ones((len(ray), 1))]).astype(np.float32)


def render(k, dist, rvec, tvec, size, board, square, rng, noise=2.0, background=110):
    """uint8 grey image (size = (width, height)) of the board seen from pose (rvec, tvec) through K, dist."""
    w, h = size
    ray = pixel_rays(np.asarray(k, np.float64).tobytes(), np.asarray(dist, np.float64).tobytes(), w, h)
    rot = cv2.Rodrigues(np.asarray(rvec, np.float64))[0].astype(np.float32)
    t = np.asarray(tvec, np.float32).reshape(3)
    normal = rot[:, 2]
    s = (normal @ t) / (ray @ normal)                      # ray length to the board plane
    local = (ray * s[:, None] - t) @ rot                   # board coordinates (x, y, ~0)
    tx = (local[:, 0] / square + 2) * TEXELS - 0.5         # texel centres at integer coordinates
    ty = (local[:, 1] / square + 2) * TEXELS - 0.5
    behind = s <= 0
    tx[behind], ty[behind] = -1e6, -1e6
    img = cv2.remap(board_texture(board), tx.reshape(h, w).astype(np.float32), ty.reshape(h, w).astype(np.float32),
                    cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=background)
    img = img + rng.normal(0, noise, img.shape).astype(np.float32)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def poses(count, rng, distance=(0.45, 0.7), tilt_deg=35, board=(9, 6), square=0.025, spread=(0.2, 0.15)):
    """`count` board poses (rvec, tvec) facing the camera, tilted up to tilt_deg about x and y, the board's
    centre near the optical axis at the given distances."""
    cols, rows = board
    centre = np.array([(cols - 1) * square / 2, (rows - 1) * square / 2, 0])
    out = []
    for i in range(count):
        ax, ay = np.radians(rng.uniform(-tilt_deg, tilt_deg, 2))
        az = np.radians(rng.uniform(-15, 15))
        rot = cv2.Rodrigues(np.array([ax, 0, 0]))[0] @ cv2.Rodrigues(np.array([0, ay, 0]))[0] \
            @ cv2.Rodrigues(np.array([0, 0, az]))[0]
        z = rng.uniform(*distance)
        offset = np.array([rng.uniform(-spread[0], spread[0]) * z, rng.uniform(-spread[1], spread[1]) * z, z])
        t = offset - rot @ centre                          # the board's centre lands at `offset`
        out.append((cv2.Rodrigues(rot)[0].ravel(), t))
    return out


def stereo_pose(rvec, tvec, r_lr, t_lr):
    """The board's pose in the right camera, X_right = R_lr X_left + t_lr."""
    rot = cv2.Rodrigues(np.asarray(rvec, np.float64))[0]
    return cv2.Rodrigues(r_lr @ rot)[0].ravel(), r_lr @ np.asarray(tvec, np.float64) + t_lr


def write_views(folder, k, dist, size, board=(9, 6), square=0.025, count=12, seed=0, view_poses=None, name="view"):
    """Render `count` views into folder/<name>NN.png; returns the poses used."""
    import os

    rng = np.random.default_rng(seed)
    view_poses = poses(count, rng, board=board, square=square) if view_poses is None else view_poses
    os.makedirs(folder, exist_ok=True)
    for i, (rvec, tvec) in enumerate(view_poses):
        cv2.imwrite(os.path.join(folder, f"{name}{i:02d}.png"), render(k, dist, rvec, tvec, size, board, square, rng))
    return view_poses


# The rig of the tests: two 640 x 480 cameras with different intrinsics and barrel distortion, the right one
# 0.12 m to the right of the left, turned by about 2 degrees, seeing 12 views of a 9 x 6 board of 25 mm squares.
SIZE = (640, 480)
BOARD, SQUARE, VIEWS = (9, 6), 0.025, 12
LEFT_K, LEFT_DIST = camera_matrix(520.0, 515.0, 322.0, 236.0), np.array([-0.25, 0.08, 0.001, -0.0005, 0.0])
RIGHT_K, RIGHT_DIST = camera_matrix(530.0, 526.0, 315.0, 242.0), np.array([-0.22, 0.06, -0.0008, 0.0006, 0.0])
R_LR = cv2.Rodrigues(np.radians([0.8, -2.0, 1.0]))[0]
RIGHT_CENTRE = np.array([0.12, 0.003, -0.002])          # the right camera's centre in the left camera's frame
T_LR = -R_LR @ RIGHT_CENTRE                              # X_right = R_LR X_left + T_LR
BASELINE = float(np.linalg.norm(RIGHT_CENTRE))


@functools.lru_cache(maxsize=2)
def stereo_rig(base):
    """Render the rig's views once per test session into base/left/viewNN.png and base/right/viewNN.png;
    returns (left folder, right folder, poses in the left camera)."""
    import os

    rng = np.random.default_rng(7)
    view_poses = poses(VIEWS, rng, board=BOARD, square=SQUARE)
    left, right = os.path.join(base, "left"), os.path.join(base, "right")
    write_views(left, LEFT_K, LEFT_DIST, SIZE, BOARD, SQUARE, seed=1, view_poses=view_poses)
    write_views(right, RIGHT_K, RIGHT_DIST, SIZE, BOARD, SQUARE, seed=2,
                view_poses=[stereo_pose(r, t, R_LR, T_LR) for r, t in view_poses])
    return left, right, view_poses
