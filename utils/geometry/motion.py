"""Camera motion between consecutive video frames from the frames and the previous frame's depth,
Paddle-free: ORB corners matched between the two frames (OpenCV), the matched corners of frame t-1 lifted
with its depth, and the perspective-n-point pose of those 3-D points seen at their matches in frame t
(RANSAC over EPnP, OpenCV's solvePnPRansac, then Levenberg-Marquardt over its inliers).

For a match (p in frame t-1, q in frame t): X = D_(t-1)(p) K^-1 p~, and T = [R | t] minimises the
reprojection error |q - pi(K (R X + t))| over the RANSAC inliers. T maps camera t-1 coordinates into camera
t coordinates, its translation in the depth's own units: whatever the scale of the depth (relative or
metres), the motion agrees with it, which is what blending along the motion (utils/geometry/fusion.py) needs.
No motion (None) when fewer than `min_inliers` matches agree: a cut, a blank frame, a pure rotation of a
featureless scene; the frame then stands alone.
"""
import cv2
import numpy as np

MIN_INLIERS = 30          # fewer agreeing matches: no motion rather than a wrong one
REPROJECTION_PIXELS = 2.0  # RANSAC inlier threshold


def camera_matrix(fx, fy, cx, cy):
    """3 x 3 K of pixel intrinsics."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], np.float64)


class FrameMotion:
    """motion(rgb, depth, k) for each frame in order -> (T, k) from the previous frame to this one (module
    docstring), or None for the first frame, a size change, or too few agreeing matches. Keeps only the
    previous frame's corners and depth."""

    def __init__(self, features=2000, min_inliers=MIN_INLIERS):
        self.orb = cv2.ORB_create(features)
        self.matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
        self.min_inliers = min_inliers
        self._previous = None   # (corners, descriptors, depth)

    def __call__(self, rgb, depth, k):
        rgb = np.asarray(rgb)
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
        corners, descriptors = self.orb.detectAndCompute(np.ascontiguousarray(grey, np.uint8), None)
        previous, self._previous = self._previous, (corners, descriptors, np.asarray(depth))
        if previous is None or descriptors is None or previous[1] is None or previous[2].shape != np.shape(depth):
            return None
        return self._solve(previous, corners, descriptors, np.asarray(k, np.float64)[:3, :3])

    def _solve(self, previous, corners, descriptors, k):
        old_corners, old_descriptors, old_depth = previous
        matches = self.matcher.match(old_descriptors, descriptors)
        if len(matches) < self.min_inliers:
            return None
        p = np.array([old_corners[m.queryIdx].pt for m in matches], np.float64)
        q = np.array([corners[m.trainIdx].pt for m in matches], np.float64)
        h, w = old_depth.shape
        z = old_depth[np.clip(np.round(p[:, 1]).astype(int), 0, h - 1), np.clip(np.round(p[:, 0]).astype(int), 0, w - 1)]
        ok = np.isfinite(z) & (z > 0)
        if ok.sum() < self.min_inliers:
            return None
        rays = np.linalg.solve(k, np.vstack([p[ok].T, np.ones(int(ok.sum()))]))
        points = (rays * z[ok]).T
        found, rvec, tvec, inliers = cv2.solvePnPRansac(points, q[ok], k, None, iterationsCount=200,
                                                        reprojectionError=REPROJECTION_PIXELS,
                                                        flags=cv2.SOLVEPNP_EPNP)
        if not found or inliers is None or len(inliers) < self.min_inliers:
            return None
        inliers = inliers.ravel()   # RANSAC's minimal sets are noisy: least squares over all its inliers
        rvec, tvec = cv2.solvePnPRefineLM(points[inliers], q[ok][inliers], k, None, rvec, tvec)
        transform = np.eye(4)
        transform[:3, :3], transform[:3, 3] = cv2.Rodrigues(rvec)[0], tvec.ravel()
        return transform, k
