"""KITTI raw as a paddle.io.Dataset (spec section 7), with Monodepth2's keys:

    ("color", f, s)                         3 x H/2^s x W/2^s uint8 (as stored); f in frame_idxs (0, -1, 1, "s");
                                            every scale s of frame 0, scale 0 of the others (image_scales)
    ("jitter", f, 0)                        3 x 4 float32 [M | b]: the colour jitter of the network input
                                            ("color", f, 0), f != "s" (identity if none)
    with resize_on_device, instead of those two: ("raw", f) the decoded frame, h x w x 3 uint8, and the
    keys datasets.batch.resize_on_device makes them from where batch_to_float runs (the device)
    after batch_to_float (main process or device, not the loader workers: 8x less to copy between processes):
    ("color", f, s), ("color_aug", f, 0)   float32 in [0, 1]; "jitter" keys consumed
    ("K", s), ("inv_K", s)                  4 x 4 float32 intrinsics of scale s (fx = 0.58 W, fy = 1.92 H)
    "stereo_T"                              4 x 4, t_x = side_sign * flip_sign * 0.1 (when "s" is a frame)
    "depth_hint"                            1 x H x W (use_depth_hints; batch_to_float adds "depth_hint_mask")
    "depth_gt"                              1 x h x w velodyne depth (camera z), h x w = depth_gt_size
                                            (lidar_beams < 64: the scan's every (64 / lidar_beams)-th ring only)
    ("travel", f)                           1 float32: metres travelled between frames 0 and f, from the
                                            drive's oxts (load_travel; f = each temporal source frame)

A split line is "<date>/<drive> <frame> <l|r>"; the folder layout, the camera and the split files
are utils/cameras/kitti_layout.py's (Paddle-free). Training augmentation (probability 0.5 each, drawn per
sample from the `rng` given to get_item): horizontal flip of every image, hint, depth_gt and the
stereo sign; colour jitter (brightness, contrast, saturation 0.2, hue 0.1, in random order, the same
draw for every frame; see ColorJitter), applied to the network inputs ("color_aug") only.
"""
import os

import cv2
import numpy as np
import paddle
from PIL import Image

from datasets.batch import IDENTITY_JITTER, NO_JITTER_DRAW, draw_color_jitter, jitter_params
from utils.cameras import kitti_layout as layout
from utils.cameras.kitti_calibration import read_calib_dir
from utils.cameras.kitti_layout import parse_split_line, read_split  # noqa: F401 (datasets' API)
from utils.io import image_io
from utils.io.image_io import network_size_problem
from utils.sensors.lidar_beams import HDL64_RINGS, keep_beams
from utils.sensors.oxts import DriveOxts, OxtsError, oxts_path, timestamps_path
from utils.sensors.velodyne import load_velodyne_points, velo_to_depth_map

LANCZOS = Image.Resampling.LANCZOS

# The layout's errors are the data errors: a caller catching DataError also catches a bad split line
# or a missing split file raised by the Paddle-free layout module (and vice versa).
DataError = layout.LayoutError
MissingFileError = layout.MissingFileError


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


class KITTIRAWDataset(paddle.io.Dataset):
    """KITTI raw frames of a split (see the module docstring for the returned keys).

    data_path: KITTI raw root; filenames: split lines; height, width: network input size (multiples
    of 32); frame_idxs: e.g. [0, -1, 1, "s"]; img_ext: ".jpg" or ".png" (a frame missing in that
    format is read in the other one); depth_hint_path: default <data_path>/depth_hints;
    load_depth: velodyne depth_gt (None: when the first line's scan exists, as Monodepth2);
    depth_gt_size: (h, w) depth_gt is resized to with nearest neighbour (None: the calibration's size);
    skip_missing: drop lines whose files are missing (reported once with a count) instead of failing;
    lidar_beams: thin each scan to that many rings (utils.sensors.lidar_beams.keep_beams) before projecting it;
    load_travel: ("travel", f) from the drive's oxts (a line without them is a missing file).
    Every path, the split-line format and the camera come from `layout` (a module with
    utils/cameras/kitti_layout.py's functions), so another folder layout is a subclass setting `layout`.
    """

    layout = layout
    resize_on_device = False    # True: send the decoded frames, batch_to_float resizes them (collate_fn=collate)
    lidar_beams = HDL64_RINGS   # subclasses without velodyne scans or oxts keep these
    load_travel = False

    def _init_common(self, data_path, filenames, height, width, frame_idxs, num_scales, is_train,
                     use_depth_hints, depth_hint_path):
        """The checks and fields every layout's dataset shares; returns the split lines parsed by
        `self.layout`. DataError for a size that is no network input or hints without stereo."""
        super().__init__()
        for name, value in (("height", height), ("width", width)):
            if network_size_problem(value):
                raise DataError(f"{name} {value}: {network_size_problem(value)}")
        if use_depth_hints and "s" not in frame_idxs:
            raise DataError("depth hints need the stereo partner: add 's' to frame_idxs")
        self.data_path = data_path
        self.height, self.width, self.num_scales = height, width, num_scales
        self.frame_idxs = list(frame_idxs)
        self.is_train, self.use_depth_hints = is_train, use_depth_hints
        self.depth_hint_path = depth_hint_path or self.layout.default_hint_root(data_path)
        return [self.layout.parse_split_line(line, f"split line {i + 1}") for i, line in enumerate(filenames)]

    def __init__(self, data_path, filenames, height, width, frame_idxs, num_scales=4, is_train=False,
                 img_ext=".jpg", use_depth_hints=False, depth_hint_path=None, skip_missing=False,
                 load_depth=None, depth_gt_size=(375, 1242), verbose=True, lidar_beams=HDL64_RINGS,
                 load_travel=False):
        if img_ext not in (".jpg", ".png"):
            raise DataError(f"img_ext must be .jpg or .png, not {img_ext!r}")
        lines = self._init_common(data_path, filenames, height, width, frame_idxs, num_scales, is_train,
                                  use_depth_hints, depth_hint_path)
        self.img_ext = img_ext
        self.depth_gt_size = tuple(depth_gt_size) if depth_gt_size is not None else None
        self.files = _FileIndex()
        self._calib = {}
        self.lidar_beams, self.load_travel, self._oxts = lidar_beams, load_travel, {}
        if load_depth is None:
            load_depth = bool(lines) and self.files.exists(self.layout.velodyne_path(data_path, *lines[0][:2]))
        self.load_depth = load_depth
        self.lines, missing = [], []
        for i, line in enumerate(lines):
            absent = self._first_missing(*line)
            if absent is None:
                self.lines.append(line)
                continue
            if not skip_missing:
                raise MissingFileError(
                    f"missing {absent[0]}: {absent[1]} (needed by split line {i + 1}: '{filenames[i].strip()}'; "
                    f"{absent[2]})")
            missing.append(absent[1])
        if missing and verbose:
            print(f"skip_missing: skipped {len(missing)} of {len(lines)} split lines whose files are missing "
                  f"(first: {missing[0]})")
        self.num_skipped = len(missing)
        self.K = {}
        for s in range(num_scales):
            k = self.layout.intrinsics(width // 2 ** s, height // 2 ** s)
            self.K[s] = (k, np.linalg.pinv(k).astype(np.float32))

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

    def _first_missing(self, folder, frame, side):
        """(what, path, hint) of the first file this line needs that does not exist, or None."""
        for f in self.frame_idxs:
            fr, sd = (frame, self.layout.OTHER_SIDE[side]) if f == "s" else (frame + f, side)
            if fr < 0 or self.find_image(folder, fr, sd) is None:
                what = "stereo partner" if f == "s" else f"frame {f:+d}" if f else "frame"
                return (what, self.image_path(folder, max(fr, 0), sd),
                        "check --data_path and the split, or skip such lines with --skip_missing (train.py)")
        if self.use_depth_hints and not self.files.exists(self.hint_path(folder, frame, side)):
            return ("depth hint", self.hint_path(folder, frame, side),
                    "compute hints with precompute_depth_hints.py or check --depth_hint_path")
        if self.load_depth:
            if not self.files.exists(self.velodyne_path(folder, frame)):
                return ("velodyne scan", self.velodyne_path(folder, frame), "download the velodyne_points too")
            for name in self.layout.CALIB_FILES:
                path = os.path.join(self.calib_dir(folder), name)
                if not self.files.exists(path):
                    return ("calibration file", path, "unpack the date's <date>_calib.zip into --data_path")
        if self.load_travel:
            drive = os.path.join(self.data_path, folder)
            for path in [timestamps_path(drive)] + [oxts_path(drive, frame + f) for f in self.frame_idxs if f != "s"]:
                if not self.files.exists(path):
                    return ("oxts record", path, "download the drive's oxts (KITTI raw: in every drive's zip); "
                            "a synthetic KITTI made before it wrote oxts: python -m synthetic --overwrite")
        return None

    # ---------------------------------------------------------------- loading
    def get_color(self, folder, frame, side, do_flip):
        path = self.find_image(folder, frame, side) or self.image_path(folder, frame, side)
        try:
            with Image.open(path) as img:
                img.load()
                # convert() copies even an RGB image (more than the decode costs): only when needed
                img = img if img.mode == "RGB" else img.convert("RGB")
        except FileNotFoundError:
            raise MissingFileError(f"missing frame: {path}") from None
        return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if do_flip else img

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

    def get_hint(self, folder, frame, side, do_flip):
        path = self.hint_path(folder, frame, side)
        try:
            hint = np.load(path)
        except FileNotFoundError:
            raise MissingFileError(f"missing depth hint: {path} (run precompute_depth_hints.py)") from None
        hint = hint[0] if hint.ndim == 3 else hint
        if do_flip:
            hint = np.fliplr(hint)
        # flip first, then nearest-neighbour resize (spec section 7)
        return cv2.resize(np.ascontiguousarray(hint, np.float32), (self.width, self.height),
                          interpolation=cv2.INTER_NEAREST)

    def sample_K(self, folder, do_flip):
        """{scale: (K, inv_K)} of a sample: KITTI's one camera, the same for a flipped sample. This is
        Monodepth2's normalised K (cx = 0.5 W), which the published models were trained with: in the pixel
        convention of the geometry (utils/cameras/camera.py) the exact mirror of cx = 0.5 W is 0.5 W - 1, one
        pixel off, less than the fixed K's own error for KITTI's dates (2011_09_26's P_rect_02 puts cx at
        609.56 of 1242, 1-based: 12.4 px left of 0.5 W). One's own camera (datasets/folder.py) is mirrored exactly."""
        return self.K

    def sample_stereo_T(self, folder, side, do_flip):
        return self.layout.stereo_T(side, do_flip)

    def image_scales(self, f):
        """The scales made of frame f: every scale of the target (its smoothness term reads each),
        scale 0 only of the others (the losses warp them at full resolution). Monodepth2's loader
        also made the 9 source images of scales 1-3, which nothing reads (18 % of a sample's CPU)."""
        return range(self.num_scales) if f == 0 else range(1)

    def is_network_input(self, f, s):
        """Whether image (f, s) feeds a network (depth: frame 0, pose: the temporal frames, scale 0):
        those, and only those, get a colour jitter and a ("color_aug", f, s)."""
        return s == 0 and f != "s"

    def image_array(self, img):
        """RGB PIL image -> C-contiguous 3 x H x W uint8: what the loader workers send of an image."""
        return np.ascontiguousarray(np.asarray(img).transpose(2, 0, 1))

    def jitter_of(self, jitter, img):
        """The 3 x 4 [M | b] of the colour jitter (a ColorJitter, or None: the identity) on an RGB PIL image,
        taken from its float image (image_io.to_chw) as the jitter itself would see it."""
        return jitter_params(jitter, image_io.to_chw(img)) if jitter else IDENTITY_JITTER

    def _add_full_size(self, inputs, f, img, do_flip, jitter):
        """Frame f as decoded (resize_on_device): the keys batch.resize_on_device turns into the
        images and jitters get_item would otherwise make here (the flip too: cheaper there)."""
        pixels = np.asarray(img)
        inputs[("raw", f)] = pixels
        inputs[("raw_hw", f)] = np.array(pixels.shape[:2], np.int32)
        inputs["raw_flip"] = np.array(do_flip, np.int32)
        inputs[("raw_scales", f)] = np.array(len(self.image_scales(f)), np.int32)
        inputs["resize_to"] = np.array([self.height, self.width], np.int32)
        if self.is_network_input(f, 0):
            inputs[("jitter_draw", f, 0)] = jitter.vector() if jitter else NO_JITTER_DRAW

    def __len__(self):
        return len(self.lines)

    def __getitem__(self, index):
        """get_item with a fresh generator seeded from the OS's entropy (np.random.default_rng()):
        no global random state is read or changed, and forked loader workers never repeat each
        other's draws. For reproducible samples call get_item with a seeded generator."""
        return self.get_item(index, np.random.default_rng())

    def get_item(self, index, rng):
        """Sample `index` with every augmentation decision and parameter drawn from `rng` (a
        np.random.RandomState or Generator), in this order: colour-jitter decision, flip decision,
        then (if jittering) the jitter's four factors and its order. Eval datasets draw nothing."""
        folder, frame, side = self.lines[index]
        do_color_aug = self.is_train and rng.uniform() > 0.5
        do_flip = self.is_train and rng.uniform() > 0.5
        jitter = draw_color_jitter(rng) if do_color_aug else None
        inputs = {}
        for f in self.frame_idxs:
            where = (frame, self.layout.OTHER_SIDE[side]) if f == "s" else (frame + f, side)
            if self.resize_on_device:
                self._add_full_size(inputs, f, self.get_color(folder, *where, False), do_flip, jitter)
                continue
            img = self.get_color(folder, *where, do_flip)
            for s in self.image_scales(f):
                # Lanczos, scale 0 from the file and each further scale from the previous one
                img = img.resize((self.width // 2 ** s, self.height // 2 ** s), LANCZOS)
                # uint8 out of the worker; batch_to_float makes the floats and the network inputs' colour_aug
                inputs[("color", f, s)] = self.image_array(img)
                if self.is_network_input(f, s):
                    inputs[("jitter", f, s)] = self.jitter_of(jitter, img)
        for s in range(self.num_scales):
            inputs[("K", s)], inputs[("inv_K", s)] = self.sample_K(folder, do_flip)[s]
        if "s" in self.frame_idxs:
            inputs["stereo_T"] = self.sample_stereo_T(folder, side, do_flip)
        if self.use_depth_hints:
            hint = self.get_hint(folder, frame, side, do_flip)[None]
            inputs["depth_hint"] = hint   # its mask (hint > 0) is made by batch_to_float: 0.5 MB less to send
        if self.load_depth:
            inputs["depth_gt"] = np.ascontiguousarray(self.get_depth(folder, frame, side, do_flip), np.float32)[None]
        if self.load_travel:
            for f in self.frame_idxs:
                if f not in ("s", 0):
                    inputs[("travel", f)] = np.array([self.travel(folder, frame, frame + f)], np.float32)
        return inputs
