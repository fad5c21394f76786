"""KITTI raw as a paddle.io.Dataset (spec section 7), with Monodepth2's keys:

    ("color", f, s)                         3 x H/2^s x W/2^s uint8 (as stored); f in frame_idxs (0, -1, 1, "s");
                                            every scale s of frame 0, scale 0 of the others (image_scales)
    ("jitter", f, 0)                        3 x 4 float32 [M | b]: the colour jitter of the network input
                                            ("color", f, 0), f != "s" (identity if none)
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
are utils/kitti_layout.py's (Paddle-free). Training augmentation (probability 0.5 each, drawn per
sample from the `rng` given to get_item): horizontal flip of every image, hint, depth_gt and the
stereo sign; colour jitter (brightness, contrast, saturation 0.2, hue 0.1, in random order, the same
draw for every frame; see ColorJitter), applied to the network inputs ("color_aug") only.
"""
import os

import cv2
import numpy as np
import paddle
from PIL import Image

from utils import image_io
from utils import kitti_layout as layout
from utils.image_io import network_size_problem
from utils.kitti_layout import parse_split_line, read_split  # noqa: F401 (datasets' API)
from utils.kitti_utils import load_velodyne_points, read_calib_dir, velo_to_depth_map
from utils.lidar import HDL64_RINGS, keep_beams
from utils.oxts import DriveOxts, OxtsError, oxts_path, timestamps_path

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


_LUMA = np.array([0.299, 0.587, 0.114])                      # PIL's (ITU-R 601-2) grey
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def _hue_rotation(turns):
    """3 x 3 hue rotation by `turns` of a full turn: rotate the chroma plane (I, Q) of YIQ."""
    c, s = np.cos(2 * np.pi * turns), np.sin(2 * np.pi * turns)
    return np.linalg.inv(_RGB_TO_YIQ) @ np.array([[1, 0, 0], [0, c, -s], [0, s, c]]) @ _RGB_TO_YIQ


class ColorJitter:
    """One draw of brightness, contrast, saturation (factors in [1 - x, 1 + x]) and hue (shift in
    [-h, h] turns), applied in a random order, as torchvision's ColorJitter.

    Every step is affine in the colour, so the whole jitter of an image is one 3 x 3 matrix and an
    offset, applied to the float image and clipped to [0, 1] once (a few ms for a whole sample,
    against ~25 ms for PIL's per-step uint8 passes):
        brightness b:  x -> b x
        saturation s:  x -> s x + (1 - s) grey(x)          grey(x) = 0.299 r + 0.587 g + 0.114 b
        contrast c:    x -> c x + (1 - c) mean(grey(x))    mean over the image
        hue h:         rotation by 2 pi h of the YIQ chroma plane (grey preserved)
    """

    def __init__(self, rng, brightness=0.2, contrast=0.2, saturation=0.2, hue=0.1):
        """Draws the four factors, then the order, from `rng` (np.random.RandomState or Generator)."""
        self.factors = {"brightness": rng.uniform(1 - brightness, 1 + brightness),
                        "contrast": rng.uniform(1 - contrast, 1 + contrast),
                        "saturation": rng.uniform(1 - saturation, 1 + saturation),
                        "hue": rng.uniform(-hue, hue)}
        names = list(self.factors)
        self.order = [names[i] for i in rng.permutation(len(names))]

    def affine(self, channel_mean):
        """(M, b) with jitter(x) = M x + b for an image whose per-channel mean is channel_mean."""
        m, b = np.eye(3), np.zeros(3)
        grey = np.outer(np.ones(3), _LUMA)
        for name in self.order:
            f = self.factors[name]
            if name == "brightness":
                step, offset = f * np.eye(3), np.zeros(3)
            elif name == "saturation":
                step, offset = f * np.eye(3) + (1 - f) * grey, np.zeros(3)
            elif name == "contrast":
                mean_now = m @ channel_mean + b
                step, offset = f * np.eye(3), (1 - f) * (_LUMA @ mean_now) * np.ones(3)
            else:
                step, offset = _hue_rotation(f), np.zeros(3)
            m, b = step @ m, step @ b + offset
        return m, b

    def __call__(self, chw):
        """Jitter a 3 x H x W float image in [0, 1]."""
        m, b = self.affine(chw.reshape(3, -1).mean(1, dtype=np.float64))
        out = np.einsum("ij,jhw->ihw", m.astype(np.float32), chw) + b.astype(np.float32)[:, None, None]
        return np.clip(out, 0, 1, out=out)


def draw_color_jitter(rng, brightness=0.2, contrast=0.2, saturation=0.2, hue=0.1):
    """One random colour jitter (drawn now from `rng`), a function of a 3 x H x W float image."""
    return ColorJitter(rng, brightness, contrast, saturation, hue)


_to_chw = image_io.to_chw  # PIL RGB image -> C-contiguous 3 x H x W float32 in [0, 1], as prediction's
_IDENTITY_JITTER = np.concatenate([np.eye(3), np.zeros((3, 1))], axis=1).astype(np.float32)


def _to_uint8_chw(image):
    """RGB PIL image -> C-contiguous 3 x H x W uint8 (what the loader workers send)."""
    return np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1))


def _jitter_params(jitter, chw):
    """The 3 x 4 float32 [M | b] of `jitter` on the float image `chw` (its contrast step needs the
    image's mean, so it is taken here, from the same float values ColorJitter.__call__ would see)."""
    m, b = jitter.affine(chw.reshape(3, -1).mean(1, dtype=np.float64))
    return np.concatenate([m, b[:, None]], axis=1).astype(np.float32)


def _jitter(params, x):
    """clip(M x + b, 0, 1) per pixel for ... x 3 x 4 params and ... x 3 x H x W float32 x (numpy or
    Paddle): the products summed over the input channels in order 0, 1, 2, then b, each rounded to
    float32, which are ColorJitter.__call__'s numbers bit for bit."""
    channels = []
    for i in range(3):
        out = params[..., i, 0][..., None, None] * x[..., 0, :, :]
        for j in (1, 2):
            out = out + params[..., i, j][..., None, None] * x[..., j, :, :]
        channels.append(out + params[..., i, 3][..., None, None])
    if isinstance(x, np.ndarray):
        return np.clip(np.stack(channels, axis=-3), 0, 1)
    return paddle.clip(paddle.stack(channels, axis=-3), 0, 1)


def _apply_jitter(params, x):
    """_jitter on the images whose params are not the identity (x itself for the others: the
    identity's numbers are x's, so only the work is saved); a sample or a batch."""
    p = params if isinstance(params, np.ndarray) else params.numpy()
    if p.ndim == 2:
        return x if np.array_equal(p, _IDENTITY_JITTER) else _jitter(params, x)
    rows = np.flatnonzero((p != _IDENTITY_JITTER).any(axis=(1, 2)))
    if len(rows) == 0:
        return x
    if isinstance(x, np.ndarray):
        out = x.copy()
        out[rows] = _jitter(p[rows], x[rows])
        return out
    index = paddle.to_tensor(rows, place=x.place)
    return paddle.scatter(x, index, _jitter(paddle.gather(params, index), paddle.gather(x, index)))


def batch_to_float(inputs):
    """Turn a sample or batch as the loader sends it (uint8 ("color", f, s) and ("jitter", f, s),
    numpy or Paddle) into the network's inputs, in place, and return it:
        ("color", f, s)     = uint8 x float32(1/255)             (image_io.to_chw's arithmetic)
        ("color_aug", f, s) = clip(M color + b, 0, 1)           ([M | b] = ("jitter", f, s), then dropped; only
                                                                  where a jitter key is: the network inputs)
        "depth_hint_mask"   = float32(depth_hint > 0)           (when "depth_hint" is there)
    Runs where it is called (the main process, on the device for GPU batches); a dict already
    converted is returned unchanged, so every consumer may call it."""
    if "depth_hint" in inputs and "depth_hint_mask" not in inputs:
        hint = inputs["depth_hint"]
        inputs["depth_hint_mask"] = (hint > 0).astype(np.float32 if isinstance(hint, np.ndarray) else "float32")
    for key in [k for k in inputs if isinstance(k, tuple) and k[0] == "color"]:
        x = inputs[key]
        if isinstance(x, np.ndarray):
            if x.dtype != np.uint8:
                continue
            x = x.astype(np.float32)
            x *= np.float32(1 / 255)
        else:
            if x.dtype != paddle.uint8:
                continue
            # scale: the same float32 product as `* float32(1/255)`, faster than a broadcast multiply on the CPU
            x = paddle.scale(x.astype("float32"), float(np.float32(1 / 255)))
        inputs[key] = x
        params = inputs.pop(("jitter",) + key[1:], None)
        if params is not None:    # only the images a network reads have a jitter (and so a colour_aug)
            inputs[("color_aug",) + key[1:]] = _apply_jitter(params, x)
    return inputs


class KITTIRAWDataset(paddle.io.Dataset):
    """KITTI raw frames of a split (see the module docstring for the returned keys).

    data_path: KITTI raw root; filenames: split lines; height, width: network input size (multiples
    of 32); frame_idxs: e.g. [0, -1, 1, "s"]; img_ext: ".jpg" or ".png" (a frame missing in that
    format is read in the other one); depth_hint_path: default <data_path>/depth_hints;
    load_depth: velodyne depth_gt (None: when the first line's scan exists, as Monodepth2);
    depth_gt_size: (h, w) depth_gt is resized to with nearest neighbour (None: the calibration's size);
    skip_missing: drop lines whose files are missing (reported once with a count) instead of failing;
    lidar_beams: thin each scan to that many rings (utils.lidar.keep_beams) before projecting it;
    load_travel: ("travel", f) from the drive's oxts (a line without them is a missing file).
    Every path, the split-line format and the camera come from `layout` (a module with
    utils/kitti_layout.py's functions), so another folder layout is a subclass setting `layout`.
    """

    layout = layout
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
        """Metres travelled between two frames of a drive (utils.oxts: mean speed x time)."""
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
        """{scale: (K, inv_K)} of a sample: KITTI's one camera, whose centred principal point a flip keeps."""
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
            if f == "s":
                img = self.get_color(folder, frame, self.layout.OTHER_SIDE[side], do_flip)
            else:
                img = self.get_color(folder, frame + f, side, do_flip)
            for s in self.image_scales(f):
                # Lanczos, scale 0 from the file and each further scale from the previous one
                img = img.resize((self.width // 2 ** s, self.height // 2 ** s), LANCZOS)
                # uint8 out of the worker; batch_to_float makes the floats and the network inputs' colour_aug
                inputs[("color", f, s)] = _to_uint8_chw(img)
                if self.is_network_input(f, s):
                    inputs[("jitter", f, s)] = _jitter_params(jitter, _to_chw(img)) if jitter else _IDENTITY_JITTER
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
