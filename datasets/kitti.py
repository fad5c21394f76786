"""KITTI raw as a paddle.io.Dataset (docs/MLDA_NET.md §7) with Monodepth2's keys (datasets/mono.py lists them);
KITTI's own:

    ("K", s), ("inv_K", s)                  KITTI's fixed intrinsics at scale s (fx = 0.58 W, fy = 1.92 H)
    "stereo_T"                              4 x 4, t_x = side_sign * flip_sign * 0.1 (when "s" is a frame)
    "depth_gt"                              1 x h x w velodyne depth (camera z), h x w = depth_gt_size
                                            (lidar_beams < 64: the scan's every (64 / lidar_beams)-th ring only)
    ("travel", f)                           1 float32: metres travelled between frames 0 and f, from the
                                            drive's oxts (load_travel; f = each temporal source frame)

A split line is "<date>/<drive> <frame> <l|r>"; the folder layout, the camera and the split files
are utils/cameras/kitti_layout.py's (Paddle-free).
"""
import os

import cv2
import numpy as np

from datasets.mono import LANCZOS, DataError, MonoDataset  # noqa: F401 (datasets' API)
from utils.cameras import kitti_layout as layout
from utils.cameras.kitti_calibration import read_calib_dir
from utils.cameras.kitti_layout import MissingFileError, parse_split_line, read_split  # noqa: F401 (datasets' API)
from utils.sensors.lidar_beams import HDL64_RINGS, keep_beams
from utils.sensors.oxts import DriveOxts, OxtsError, oxts_path, timestamps_path
from utils.sensors.velodyne import load_velodyne_points, velo_to_depth_map


class _FileIndex:
    """Directory listings cached once per folder: fast existence checks for tens of thousands of lines."""

    def __init__(self):
        self.listings = {}

    def exists(self, path):
        folder, name = os.path.split(path)
        if folder not in self.listings:
            try:
                self.listings[folder] = set(os.listdir(folder))
            except OSError:
                self.listings[folder] = set()
        return name in self.listings[folder]


class KITTIRAWDataset(MonoDataset):
    """KITTI raw frames of a split (MonoDataset's arguments, and):

    img_ext: ".jpg" or ".png" (a frame missing in that format is read in the other one);
    load_depth: velodyne depth_gt (None: when the first line's scan exists, as Monodepth2);
    depth_gt_size: default KITTI's most common size (375, 1242); None: each date's calibration size;
    lidar_beams: thin each scan to that many rings (utils.sensors.lidar_beams.keep_beams) before projecting it;
    load_travel: ("travel", f) from the drive's oxts (a line without them is a missing file).
    Every path, the split-line format and the camera come from `layout` (utils/cameras/kitti_layout.py).
    """

    layout = layout

    def __init__(self, data_path, filenames, height, width, frame_idxs, num_scales=4, is_train=False,
                 img_ext=".jpg", use_depth_hints=False, depth_hint_path=None, skip_missing=False,
                 load_depth=None, depth_gt_size=layout.NATIVE_SIZE, verbose=True, lidar_beams=HDL64_RINGS,
                 load_travel=False):
        if img_ext not in (".jpg", ".png"):
            raise DataError(f"img_ext must be .jpg or .png, not {img_ext!r}")
        self.img_ext = img_ext
        self.files = _FileIndex()
        self._calib, self._oxts = {}, {}
        self.lidar_beams, self.load_travel = lidar_beams, load_travel
        super().__init__(data_path, filenames, height, width, frame_idxs, num_scales, is_train, use_depth_hints,
                         depth_hint_path, skip_missing, load_depth, depth_gt_size, verbose)
        self.K = {s: self.intrinsics_pair(self.layout.intrinsics(width // 2 ** s, height // 2 ** s))
                  for s in range(num_scales)}

    @classmethod
    def split_folder(cls, split, data_path):
        """A folder under splits/ (or a path to one); "synthetic": the generated dataset's own splits
        folder under data_path."""
        if split == "synthetic":
            from synthetic import split_dir
            return split_dir(data_path)
        return layout.split_folder(split)

    def has_depth(self, lines):
        return bool(lines) and self.files.exists(self.layout.velodyne_path(self.data_path, *lines[0][:2]))

    # ---------------------------------------------------------------- paths (self.layout)
    def image_path(self, folder, frame, side, ext=None):
        return self.layout.image_path(self.data_path, folder, frame, side, ext or self.img_ext)

    def velodyne_path(self, folder, frame):
        return self.layout.velodyne_path(self.data_path, folder, frame)

    def hint_path(self, folder, frame, side):
        return self.layout.hint_path(self.depth_hint_path, folder, frame, side)

    def calib_dir(self, folder):
        return self.layout.calib_dir(self.data_path, folder)

    def find_image(self, folder, frame, side):
        """The frame's image in img_ext, else in the other format; None if neither exists."""
        return self.layout.find_image(self.data_path, folder, frame, side, self.img_ext, exists=self.files.exists)

    def first_missing(self, folder, frame, side):
        """("missing <what>: <path>", how to mend it) of the first file this line needs that does not exist,
        or None."""
        for f in self.frame_idxs:
            fr, sd = (frame, self.layout.OTHER_SIDE[side]) if f == "s" else (frame + f, side)
            if fr < 0 or self.find_image(folder, fr, sd) is None:
                what = "stereo partner" if f == "s" else f"frame {f:+d}" if f else "frame"
                return (f"missing {what}: {self.image_path(folder, max(fr, 0), sd)}",
                        "check --data_path and the split, or skip such lines with --skip_missing (train.py)")
        if self.use_depth_hints and not self.files.exists(self.hint_path(folder, frame, side)):
            return (f"missing depth hint: {self.hint_path(folder, frame, side)}",
                    "compute hints with precompute_depth_hints.py or check --depth_hint_path")
        if self.load_depth:
            if not self.files.exists(self.velodyne_path(folder, frame)):
                return f"missing velodyne scan: {self.velodyne_path(folder, frame)}", "download the velodyne_points too"
            for name in self.layout.CALIB_FILES:
                path = os.path.join(self.calib_dir(folder), name)
                if not self.files.exists(path):
                    return f"missing calibration file: {path}", "unpack the date's <date>_calib.zip into --data_path"
        if self.load_travel:
            drive = os.path.join(self.data_path, folder)
            for path in [timestamps_path(drive)] + [oxts_path(drive, frame + f) for f in self.frame_idxs if f != "s"]:
                if not self.files.exists(path):
                    return (f"missing oxts record: {path}", "download the drive's oxts (KITTI raw: in every drive's "
                            "zip); a synthetic KITTI made before it wrote oxts: python -m synthetic --overwrite")
        return None

    # ---------------------------------------------------------------- loading
    def get_depth(self, folder, frame, side, do_flip):
        date = self.calib_dir(folder)
        if date not in self._calib:
            self._calib[date] = read_calib_dir(date)
        velo = load_velodyne_points(self.velodyne_path(folder, frame))
        if self.lidar_beams != HDL64_RINGS:
            velo = keep_beams(velo, self.lidar_beams)
        depth = velo_to_depth_map(velo, self._calib[date], self.layout.SIDE_TO_CAM[side])
        if self.depth_gt_size is not None and depth.shape != self.depth_gt_size:
            depth = cv2.resize(depth, self.depth_gt_size[::-1], interpolation=cv2.INTER_NEAREST)
        return np.fliplr(depth) if do_flip else depth

    def travel(self, folder, frame_a, frame_b):
        """Metres travelled between two frames of a drive (utils.sensors.oxts: mean speed x time)."""
        if folder not in self._oxts:
            self._oxts[folder] = DriveOxts(os.path.join(self.data_path, folder))
        try:
            return self._oxts[folder].travel(frame_a, frame_b)
        except OxtsError as e:
            raise MissingFileError(str(e)) from None

    def travel(self, folder, frame_a, frame_b):
        """Metres travelled between two frames of a drive (utils.sensors.oxts: mean speed x time)."""
        if folder not in self._oxts:
            self._oxts[folder] = DriveOxts(os.path.join(self.data_path, folder))
        try:
            return self._oxts[folder].travel(frame_a, frame_b)
        except OxtsError as e:
            raise MissingFileError(str(e)) from None

    def sample_K(self, folder, do_flip):
        """{scale: (K, inv_K)} of a sample: KITTI's one camera, the same for a flipped sample. This is
        Monodepth2's normalised K (cx = 0.5 W), which the published models were trained with: in the pixel
        convention of the geometry (utils/cameras/camera.py) the exact mirror of cx = 0.5 W is 0.5 W - 1, one
        pixel off, less than the fixed K's own error for KITTI's dates (2011_09_26's P_rect_02 puts cx at
        609.56 of 1242, 1-based: 12.4 px left of 0.5 W). One's own camera (datasets/folder.py) is mirrored exactly."""
        return self.K

    def sample_stereo_T(self, folder, side, do_flip):
        return self.layout.stereo_T(side, do_flip)
