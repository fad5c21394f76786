"""One's own image sequences and camera (utils/cameras/folder_layout.py's layout) with KITTIRAWDataset's keys.

Everything per sample is KITTIRAWDataset's (get_item: the same augmentation, drawn in the same order,
the same image keys) except where the camera matters:
    ("K", s), ("inv_K", s)   the sequence's camera.json scaled to the network size at scale s
                             (fx W_s / width, ...), principal point mirrored when the sample is flipped
    "stereo_T"               t_x = -/+ baseline in metres (left/right image, sign swapped when flipped)
    "depth_gt"               1 x h x w metres from ROOT/<sequence>/depth (left images; zeros for a right
                             image), h x w = depth_gt_size (default: the default camera's image size)
"""
import os

import cv2
import numpy as np

from datasets.kitti import DataError, KITTIRAWDataset, MissingFileError
from utils.cameras import folder_layout as layout
from utils.cameras.camera import intrinsics, read_camera


class FolderDataset(KITTIRAWDataset):
    """Frames of split lines '<sequence> <frame index> <l|r>' under data_path (utils/cameras/folder_layout.py).

    camera: the default camera (ROOT/camera.json, else the first sequence's), recorded in opt.json;
    metric_stereo: True when every sequence used has a baseline (stereo then trains in metres)."""

    layout = layout

    def __init__(self, data_path, filenames, height, width, frame_idxs, num_scales=4, is_train=False,
                 use_depth_hints=False, depth_hint_path=None, skip_missing=False, load_depth=None,
                 depth_gt_size=None, verbose=True, img_ext=None):
        # img_ext is accepted for the factory's common keywords: each frame keeps its own extension
        lines = self._init_common(data_path, filenames, height, width, frame_idxs, num_scales, is_train,
                                  use_depth_hints, depth_hint_path)
        stereo = "s" in self.frame_idxs
        self.names, self.right, self.cameras, self.camera_files = {}, {}, {}, {}
        for seq in dict.fromkeys(line[0] for line in lines):
            self._add_sequence(seq, stereo)
        default = layout.camera_path(data_path)
        self.camera = read_camera(default) if os.path.isfile(default) else \
            next(iter(self.cameras.values()), None)
        self.metric_stereo = stereo and all(c["baseline"] for c in self.cameras.values())
        self.lines, missing = [], []
        for i, (seq, frame, side) in enumerate(lines):
            absent = self._first_missing(seq, frame, side)
            if absent is None:
                self.lines.append((seq, frame, side))
            elif skip_missing:
                missing.append(absent)
            else:
                raise MissingFileError(f"{absent} (needed by split line {i + 1}: '{filenames[i].strip()}'; check "
                                       f"--data_path and ROOT/splits, or skip such lines with --skip_missing)")
        if missing and verbose:
            print(f"skip_missing: skipped {len(missing)} of {len(lines)} split lines ({missing[0]})")
        self.num_skipped = len(missing)
        if load_depth is None:
            load_depth = any(layout.depth_path(data_path, seq, self.names[seq][0]) for seq in self.names
                             if self.names[seq])
        self.load_depth = load_depth
        if depth_gt_size is None and self.camera is not None:
            depth_gt_size = (self.camera["height"], self.camera["width"])
        self.depth_gt_size = tuple(depth_gt_size) if depth_gt_size is not None else None
        self.K = {}   # (sequence, do_flip) -> {scale: (K, inv_K)}
        for seq, cam in self.cameras.items():
            for flip in (False, True):
                self.K[seq, flip] = {}
                for s in range(num_scales):
                    k = intrinsics(cam, width // 2 ** s, height // 2 ** s, flip)
                    self.K[seq, flip][s] = (k, np.linalg.pinv(k).astype(np.float32))

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

    def _first_missing(self, seq, frame, side):
        """A sentence naming the first file this line needs that is not there, or None."""
        for f in self.frame_idxs:
            fr, sd = (frame, layout.OTHER_SIDE[side]) if f == "s" else (frame + f, side)
            if self._name(seq, fr, sd) is None:
                what = "stereo partner" if f == "s" else f"frame {f:+d}" if f else "frame"
                return (f"missing {what}: frame index {fr} of {seq}/{layout.SIDE_FOLDER[sd]} "
                        f"({len(self.names[seq])} frames)")
        if self.use_depth_hints and not os.path.isfile(self.hint_path(seq, frame, side)):
            return f"missing depth hint: {self.hint_path(seq, frame, side)}"
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
