"""Helpers below every other layer, grouped by concern (all but system.py free of Paddle):
    cameras/    camera.json and intrinsics, KITTI's and one's own folder layouts, KITTI's calibration files,
                chessboard calibration and rectification, calibration imports, EXIF focal lengths
    geometry/   disparity/depth conventions, point clouds, the ground plane, the evaluation metrics
    io/         reading images and videos, writing predictions, the photo/video output loop, ground truth,
                atomic files
    sensors/    KITTI's velodyne scans as depth maps, LiDAR rings, GPS/IMU (OXTS) records
    diffusion/  the diffusion head's DDIM schedule
    system.py   device and CPU threads
Every script imports this package first (before paddle), so the filters below are in place before Paddle
prints anything and before any one-line error."""
import warnings

# Paddle 3.3 at import, on machines without ccache (it only matters for compiling C++ extensions).
warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
# paddle.nn.BatchNorm2D.forward in train mode, every call: a note on Paddle's behaviour, which is ours too.
warnings.filterwarnings("ignore", message="When training, we now always track global mean and variance",
                        category=UserWarning)
# Pillow on a photo whose EXIF does not parse: said in one line where the EXIF matters (utils/cameras/exif.py).
warnings.filterwarnings("ignore", message="Corrupt EXIF data", category=UserWarning)
