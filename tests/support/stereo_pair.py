"""A real rectified stereo pair as a ready training batch, and a stand-in training set: shared by
tests/test_collapse.py and bench/stereo_pair.py."""
import numpy as np
import paddle
import skimage.data
from PIL import Image

from utils.cameras import kitti_layout
from utils.io.image_io import to_chw


def stereo_batch(h, w):
    """The pair and its mirror image (left and right swap roles, stereo_T's sign flips), as the
    trainer's float inputs at 4 scales of h x w (successive Lanczos resizes, as the loader)."""
    left, right, _ = skimage.data.stereo_motorcycle()
    inputs = {}
    for f, image in ((0, left), ("s", right)):
        views = [Image.fromarray(image), Image.fromarray(np.ascontiguousarray(image[:, ::-1]))]
        for s in range(4):
            views = [v.resize((w >> s, h >> s), Image.Resampling.LANCZOS) for v in views]
            inputs[("color", f, s)] = inputs[("color_aug", f, s)] = np.stack([to_chw(v) for v in views])
    for s in range(4):
        k = kitti_layout.intrinsics(w >> s, h >> s)
        inputs[("K", s)] = np.stack([k, k])
        inputs[("inv_K", s)] = np.stack([np.linalg.pinv(k)] * 2).astype(np.float32)
    inputs["stereo_T"] = np.stack([kitti_layout.stereo_T("l", False), kitti_layout.stereo_T("l", True)])
    return {k: paddle.to_tensor(v) for k, v in inputs.items()}


class NoFiles(paddle.io.Dataset):
    """Stands in for the training set: the steps are fed the batch directly."""

    def __len__(self):
        return 2
