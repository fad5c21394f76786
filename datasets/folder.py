"""One's own image sequences and camera (utils/cameras/folder_layout.py's layout) with the keys of every
layout (datasets/mono.py). Where the camera matters:
    ("K", s), ("inv_K", s)   the sequence's camera.json scaled to the network size at scale s
                             (fx W_s / width, ...), mirrored when the sample is flipped (cx -> W_s - 1 - cx,
                             utils/cameras/camera.py)
    "stereo_T"               t_x = -/+ baseline in metres (left/right image, sign swapped when flipped)
    "depth_gt"               1 x h x w metres from ROOT/<sequence>/depth (left images; zeros for a right
                             image), h x w = depth_gt_size (default: the default camera's image size)
"""
import os

import cv2
import numpy as np

from datasets.mono import DataError, MonoDataset
from utils.cameras import folder_layout as layout
from utils.cameras.camera import intrinsics, read_camera
from utils.cameras.kitti_layout import MissingFileError
from utils.sensors.lidar_beams import HDL64_RINGS

FIX = "check --data_path and ROOT/splits, or skip such lines with --skip_missing"


class FolderDataset(MonoDataset):
    """Frames of split lines '<sequence> <frame index> <l|r>' under data_path (utils/cameras/folder_layout.py),
    with MonoDataset's arguments.

    camera: the default camera (ROOT/camera.json, else the first sequence's), recorded in opt.json;
    metric_stereo: True when every sequence used has a baseline (stereo then trains in metres).
    img_ext is accepted and unused (each frame keeps its own extension); lidar_beams and load_travel are
    KITTI's velodyne rings and odometry, which this layout does not have (DataError for anything else)."""

    layout = layout

    def __init__(self, data_path, filenames, height, width, frame_idxs, num_scales=4, is_train=False,
                 use_depth_hints=False, depth_hint_path=None, skip_missing=False, load_depth=None,
                 depth_gt_size=None, verbose=True, img_ext=None, lidar_beams=HDL64_RINGS, load_travel=False):
        if lidar_beams != HDL64_RINGS or load_travel:
            raise DataError("the folder layout has depth maps, not KITTI's velodyne rings or oxts: "
                            "lidar_beams and load_travel are for KITTI")
        self.names, self.right, self.cameras, self.camera_files = {}, {}, {}, {}
        super().__init__(data_path, filenames, height, width, frame_idxs, num_scales, is_train, use_depth_hints,
                         depth_hint_path, skip_missing, load_depth, depth_gt_size, verbose)
        if self.depth_gt_size is None and self.camera is not None:
            self.depth_gt_size = (self.camera["height"], self.camera["width"])
        self.K = {(seq, flip): {s: self.intrinsics_pair(intrinsics(cam, width // 2 ** s, height // 2 ** s, flip))
                                for s in range(num_scales)}
                  for seq, cam in self.cameras.items() for flip in (False, True)}   # (sequence, do_flip) -> scales

    @classmethod
    def split_folder(cls, split, data_path):
        """Always <data_path>/splits (made there by folder_layout's rule when it has no train_files.txt)."""
        return layout.ensure_splits(data_path)

    def prepare(self, lines):
        """Listings and cameras of the sequences the lines name; the default camera; metric_stereo."""
        stereo = "s" in self.frame_idxs
        for seq in dict.fromkeys(line[0] for line in lines):
            self._add_sequence(seq, stereo)
        default = layout.camera_path(self.data_path)
        self.camera = read_camera(default) if os.path.isfile(default) else next(iter(self.cameras.values()), None)
        self.metric_stereo = stereo and all(c["baseline"] for c in self.cameras.values())

    def has_depth(self, lines):
        """When any sequence's first frame has a depth map."""
        return any(layout.depth_path(self.data_path, seq, names[0]) for seq, names in self.names.items() if names)

    def _add_sequence(self, seq, stereo):
        """Listing, camera (checked against the sequence's first image) and right-image names of `seq`."""
        names = layout.frame_names(self.data_path, seq)
        if not names:
            raise MissingFileError(f"no frames in {layout.image_path(self.data_path, seq, '', 'l')} "
                                   f"(.jpg/.jpeg/.png): check --data_path and the split")
        cam_file = layout.camera_path(self.data_path, seq)
        cam = read_camera(cam_file)
        first = layout.image_path(self.data_path, seq, names[0], "l")
        layout.check_image_size(first, layout.image_size(first), cam_file)
        right = {os.path.splitext(n)[0]: n for n in layout.frame_names(self.data_path, seq, "r")}
        if stereo and not right:
            raise MissingFileError(f"stereo training needs {layout.image_path(self.data_path, seq, '', 'r')}: "
                                   f"add the rectified right images or train without --use_stereo")
        if stereo and cam["baseline"] is None:
            raise DataError(f"{cam_file}: stereo training needs \"baseline\" (metres between the camera "
                            f"centres): add it, or train without --use_stereo")
        self.names[seq], self.right[seq], self.cameras[seq], self.camera_files[seq] = names, right, cam, cam_file

    def _name(self, seq, frame, side):
        """The file name of a frame (None where there is none)."""
        names = self.names[seq]
        if not 0 <= frame < len(names):
            return None
        return names[frame] if side == "l" else self.right[seq].get(os.path.splitext(names[frame])[0])

    def first_missing(self, seq, frame, side):
        """(a sentence naming the first file this line needs that is not there, how to mend it), or None."""
        for f in self.frame_idxs:
            fr, sd = (frame, layout.OTHER_SIDE[side]) if f == "s" else (frame + f, side)
            if self._name(seq, fr, sd) is None:
                what = "stereo partner" if f == "s" else f"frame {f:+d}" if f else "frame"
                return (f"missing {what}: frame index {fr} of {seq}/{layout.SIDE_FOLDER[sd]} "
                        f"({len(self.names[seq])} frames)", FIX)
        if self.use_depth_hints and not os.path.isfile(self.hint_path(seq, frame, side)):
            return (f"missing depth hint: {self.hint_path(seq, frame, side)}",
                    "compute hints with precompute_depth_hints.py or check --depth_hint_path")
        return None

    # ---------------------------------------------------------------- paths and loading (KITTI's names)
    def image_path(self, folder, frame, side, ext=None):
        return layout.image_path(self.data_path, folder, self._name(folder, frame, side) or f"<frame {frame}>", side)

    def find_image(self, folder, frame, side):
        name = self._name(folder, frame, side)
        return None if name is None else layout.image_path(self.data_path, folder, name, side)

    def hint_path(self, folder, frame, side):
        return layout.hint_path(self.depth_hint_path, folder, self._name(folder, frame, "l"), side)

    def get_color(self, folder, frame, side, do_flip):
        img = super().get_color(folder, frame, side, do_flip)
        cam = self.cameras[folder]
        if img.size != (cam["width"], cam["height"]):   # every image, not only the first one checked
            layout.check_image_size(self.image_path(folder, frame, side), img.size, self.camera_files[folder])
        return img

    def get_depth(self, folder, frame, side, do_flip):
        """Metres (0 = no value) at depth_gt_size; zeros where the frame has no depth map (right images)."""
        path = layout.depth_path(self.data_path, folder, self._name(folder, frame, "l")) if side == "l" else None
        if path is None:
            cam = self.cameras[folder]
            return np.zeros(self.depth_gt_size or (cam["height"], cam["width"]), np.float32)
        depth = layout.read_depth(path)
        if self.depth_gt_size is not None and depth.shape != self.depth_gt_size:
            depth = cv2.resize(depth, self.depth_gt_size[::-1], interpolation=cv2.INTER_NEAREST)
        return np.fliplr(depth) if do_flip else depth

    def sample_K(self, folder, do_flip):
        return self.K[folder, bool(do_flip)]

    def sample_stereo_T(self, folder, side, do_flip):
        return layout.stereo_T(side, do_flip, self.cameras[folder]["baseline"])
