"""A synthetic KITTI raw dataset: a ray-cast street scene written in exactly KITTI's layout.

Modules: scene (constants, calibration, textures, boxes, the drive's path), raycast (images with exact
depth, velodyne scans), writer (KITTI files, splits, generate / ensure), __main__ (the command line).

    python -m synthetic --out data/synthetic_kitti            # quick-start subset
    python -m synthetic --out data/synth --drives 6 --frames 100 --width 1242 --height 375

The same street in the --dataset folder layout, with a camera unlike KITTI's (4:3, fx = fy = 0.75 W,
baseline 0.12 m; see synthetic/folder_writer.py): ``python -m synthetic --layout folder --out data/synth_folder``
or ``synthetic.generate_folder(out_dir, ...)``.

Python: ``info = synthetic.generate(out_dir, seed=0, ...)`` (returns the dict also stored
in ``<out_dir>/synthetic_info.json``; an existing folder made with the same settings is reused);
``ensure(out_dir)`` reuses any synthetic dataset already there; ``split_dir(out_dir)`` is its splits folder.

What it writes (``<date>`` is a fictitious ``2000_01_0<k>``, ``<drive>`` = ``<date>_drive_<nnnn>_sync``):

    <out>/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt, calib_imu_to_velo.txt
    <out>/<date>/<drive>/image_02/data/<10-digit frame>.jpg   left colour camera (png with --img_ext .png)
    <out>/<date>/<drive>/image_03/data/<frame>.jpg            right colour camera, 0.54 m to the right
    <out>/<date>/<drive>/velodyne_points/data/<frame>.bin     float32 x, y, z, reflectance (velodyne frame)
    <out>/<date>/<drive>/depth/image_0{2,3}/<frame>.npy       exact dense depth (camera z, metres), 0 = sky
    <out>/<date>/<drive>/proj_depth/groundtruth/image_02/<frame>.png  same, KITTI annotated format (uint16 m*256)
    <out>/<date>/<drive>/oxts/data/<frame>.txt, oxts/timestamps.txt   GPS/IMU records in KITTI's format (30 values;
                                the exact position and orientation of camera 0, vf, vl, vu its exact velocity in m/s,
                                frames FRAME_PERIOD = 0.1036 s apart; see synthetic/writer.py _oxts_records), read by
                                utils/sensors/oxts.py; calib_imu_to_velo.txt places that IMU, so that KITTI devkit's
                                oxts-to-pose rule and the calibration chain give the poses below (utils/cameras/poses.py)
    <out>/poses/<drive>.txt     line i: 12 numbers, row-major 3x4 camera-2-to-world matrix of frame i,
                                world = camera 2 at frame 0 (KITTI-odometry style; x right, y down, z forward)
    <out>/splits/train_files.txt, val_files.txt, test_files.txt   standard "<date>/<drive> <frame> <l|r>" lines

Camera: fx = 0.58 W, fy = 1.92 H, principal point (W/2, H/2) in 0-based pixel coordinates (the loader's K);
the calibration files use KITTI's 1-based convention (the devkit subtracts 1), so P_rect has cx = W/2 + 1,
cy = H/2 + 1. Camera 2 is 0.06 m left and camera 3 0.48 m right of the rectified camera 0 (baseline 0.54 m),
as in KITTI's P_rect_02/03. The velodyne sits 0.27 m behind and 0.08 m above camera 0 with a slightly
rotated mount (per date), and R_rect_00 is a small rotation: the scans obey the devkit projection.
Train lines: every frame with both neighbours, both sides, of every drive but the last; val: every 5th of
those frames (removed from train; no val file when there are none); test: every frame of the last drive,
left camera (all frames, so that pose evaluation has consecutive frames).
"""
from synthetic.folder_writer import folder_camera, generate_folder
from synthetic.scene import BASELINE, intrinsics
from synthetic.writer import INFO_FILE, drive_name, ensure, generate, split_dir

__all__ = ["BASELINE", "INFO_FILE", "drive_name", "ensure", "folder_camera", "generate", "generate_folder",
           "intrinsics", "split_dir"]
