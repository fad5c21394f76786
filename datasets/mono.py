"""What the datasets of every folder layout share (Monodepth2's MonoDataset): the checks of the network
size and the frames, the split lines parsed and checked, the augmentation and the keys of a sample:

    ("color", f, s)                         3 x H/2^s x W/2^s uint8 (as stored); f in frame_idxs (0, -1, 1, "s");
                                            every scale s of frame 0, scale 0 of the others (image_scales)
    ("jitter", f, 0)                        3 x 4 float32 [M | b]: the colour jitter of the network input
                                            ("color", f, 0), f != "s" (identity if none)
    with resize_on_device, instead of those two: ("raw", f) the decoded frame, h x w x 3 uint8, and the
    keys datasets.batch.resize_on_device makes them from where batch_to_float runs (the device)
    after batch_to_float (main process or device, not the loader workers: 8x less to copy between processes):
    ("color", f, s), ("color_aug", f, 0)   float32 in [0, 1]; "jitter" keys consumed
    ("K", s), ("inv_K", s)                  4 x 4 float32 intrinsics of scale s (sample_K)
    "stereo_T"                              4 x 4 target -> partner camera transform (when "s" is a frame)
    "depth_hint"                            1 x H x W (use_depth_hints; batch_to_float adds "depth_hint_mask")
    "depth_gt"                              1 x h x w ground-truth depth (load_depth), h x w = depth_gt_size
    ("travel", f)                           1 float32: metres travelled between frames 0 and f (load_travel)

Training augmentation (probability 0.5 each, drawn per sample from the `rng` given to get_item):
horizontal flip of every image, hint, depth_gt, the camera and the stereo sign; colour jitter
(brightness, contrast, saturation 0.2, hue 0.1, in random order, the same draw for every frame; see
ColorJitter), applied to the network inputs ("color_aug") only.

A layout is a subclass (datasets/kitti.py, datasets/folder.py) that says where its files are and what
its camera is:
    layout                                  a module with parse_split_line, read_split, OTHER_SIDE and
                                            default_hint_root (utils/cameras/kitti_layout.py's names)
    split_folder(split, data_path)          (class method) the folder of the split's *_files.txt
    prepare(lines)                          reads what the line checks need (listings, cameras); first
    has_depth(lines)                        whether there is ground-truth depth (load_depth=None)
    first_missing(folder, frame, side)      None, or (what is missing, how to mend it) for a split line
    find_image, image_path, hint_path       the files of a frame
    get_depth, sample_K, sample_stereo_T    ground truth, intrinsics and stereo transform of a sample
"""
import cv2
import numpy as np
import paddle
from PIL import Image

from datasets.batch import IDENTITY_JITTER, NO_JITTER_DRAW, draw_color_jitter, jitter_params
from utils.cameras.kitti_layout import LayoutError, MissingFileError
from utils.io import image_io
from utils.io.image_io import network_size_problem

LANCZOS = Image.Resampling.LANCZOS

# The layout's errors are the data errors: a caller catching DataError also catches a bad split line,
# a missing split file or a bad camera.json raised by the Paddle-free layout modules (and vice versa).
DataError = LayoutError


class MonoDataset(paddle.io.Dataset):
    """Frames of split lines under data_path (the module docstring lists a sample's keys).

    height, width: network input size (multiples of 32); frame_idxs: e.g. [0, -1, 1, "s"];
    depth_hint_path: default <data_path>/depth_hints; skip_missing: drop lines whose files are missing
    (reported once with a count) instead of failing; load_depth: depth_gt (None: has_depth);
    depth_gt_size: (h, w) depth_gt is resized to with nearest neighbour (None: the layout's own size).
    DataError for a size that is no network input, hints without the stereo partner or a bad line;
    MissingFileError naming the first missing file of a line."""

    layout = None               # the subclass's layout module
    resize_on_device = False    # True: send the decoded frames, batch_to_float resizes them (collate_fn=collate)
    load_travel = False         # ("travel", f) keys: layouts with odometry set it

    def __init__(self, data_path, filenames, height, width, frame_idxs, num_scales=4, is_train=False,
                 use_depth_hints=False, depth_hint_path=None, skip_missing=False, load_depth=None,
                 depth_gt_size=None, verbose=True):
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
        self.depth_gt_size = tuple(depth_gt_size) if depth_gt_size is not None else None
        lines = [self.layout.parse_split_line(line, f"split line {i + 1}") for i, line in enumerate(filenames)]
        self.prepare(lines)
        self.load_depth = self.has_depth(lines) if load_depth is None else load_depth
        self.lines, missing = [], []
        for i, line in enumerate(lines):
            absent = self.first_missing(*line)
            if absent is None:
                self.lines.append(line)
            elif skip_missing:
                missing.append(absent[0])
            else:
                raise MissingFileError(f"{absent[0]} (needed by split line {i + 1}: '{filenames[i].strip()}'; "
                                       f"{absent[1]})")
        if missing and verbose:
            print(f"skip_missing: skipped {len(missing)} of {len(lines)} split lines whose files are missing "
                  f"(first: {missing[0]})")
        self.num_skipped = len(missing)

    @staticmethod
    def intrinsics_pair(k):
        """(K, inv_K) of a 4 x 4 float32 K, as a sample carries them."""
        return k, np.linalg.pinv(k).astype(np.float32)

    # ---------------------------------------------------------------- the layout's (subclasses)
    @classmethod
    def split_folder(cls, split, data_path):
        raise NotImplementedError

    def prepare(self, lines):
        """Read what first_missing needs (before the lines are checked); nothing by default."""

    def has_depth(self, lines):
        raise NotImplementedError

    def first_missing(self, folder, frame, side):
        raise NotImplementedError

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

    def get_hint(self, folder, frame, side, do_flip):
        path = self.hint_path(folder, frame, side)
        try:
            hint = np.load(path)
        except FileNotFoundError:
            raise MissingFileError(f"missing depth hint: {path} (run precompute_depth_hints.py)") from None
        hint = hint[0] if hint.ndim == 3 else hint
        if do_flip:
            hint = np.fliplr(hint)
        # flip first, then nearest-neighbour resize (docs/MLDA_NET.md §7)
        return cv2.resize(np.ascontiguousarray(hint, np.float32), (self.width, self.height),
                          interpolation=cv2.INTER_NEAREST)

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
