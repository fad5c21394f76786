"""How predictions become files: the one options object of the photo and video output path
(utils/io/photo_loop.py, utils/io/video.py), filled by predict.py, inference.py and app.py. Free of Paddle.

A new output setting is a field with a default here (so every caller keeps working), read where it
applies, and filled from the command line in OutputOptions.from_run."""
from dataclasses import dataclass
from typing import Any, Optional


@dataclass
class OutputOptions:
    """What to write for each image (image_io.write_prediction) or video frame, and how.

    output_dir     the folder of the files (created)
    scale_factor   depth = scale_factor x disp_to_depth(disp, min_depth, max_depth): the weights' factor
                   (5.4 for KITTI stereo units, 1 for metric or relative depth)
    colormap       colour map of <stem>_disp.jpeg
    save_png16     also <stem>_depth.png, KITTI's uint16 depth x 256
    camera         the run's camera (point clouds and ground plane): a utils.cameras.camera.CameraChoice, or
                   utils.cameras.photo.PhotoCameras to take each photo's camera from its EXIF; or None
    save_ply       also <stem>_points.ply, back-projected with `camera`
    video_layout   a video's depth video: "side", "stacked" or "auto" (stacked when W >= 2 H)
    camera_height  metres: each photo's depth scaled from its road plane with `camera` (photos only)
    velodyne       (scan .bin, calibration folder, median_scaling): the seven metrics against the scan
    progress       the progress bars' label; None: no bar
    focal          utils.cameras.photo.FocalRescale: metric depth x each photo's focal ratio, recorded in
                   <stem>_depth.json (photo_loop.focal_setup); None: no rescaling
    temporal       videos: one colour scale, frame scales aligned and blended along the camera motion
                   (utils/geometry/stabilise.py); False: each frame as predicted
    metric         the depth is in metres (the stabiliser's metric rule)
    video_camera   a utils.cameras.camera.CameraChoice for the camera motion between frames; None: KITTI's
    save_raw       videos with temporal: also each frame's own depth, <frame>_depth_raw.npy
    provenance     utils.geometry.provenance.Provenance of the weights: each photo's <stem>_depth.json records
                   its caption and the training data; None: no record
    """
    output_dir: str
    scale_factor: float = 1.0
    min_depth: float = 0.1
    max_depth: float = 100.0
    colormap: str = "magma"
    save_png16: bool = False
    camera: Any = None
    save_ply: bool = False
    video_layout: str = "auto"
    camera_height: Optional[float] = None
    velodyne: Optional[tuple] = None
    progress: Optional[str] = None
    focal: Any = None
    temporal: bool = False
    metric: bool = False
    video_camera: Any = None
    save_raw: bool = False
    provenance: Any = None

    @property
    def ply_camera(self):
        """The camera of <stem>_points.ply, or None when no point cloud is written."""
        return self.camera if self.save_ply else None

    @classmethod
    def from_run(cls, opt, predictor, camera, output_dir, progress, focal=None):
        """The options of a predict.py / inference.py run: `opt` their parsed command line, `predictor` a
        Predictor or DepthPredictor (its scale_factor, metric, min_depth, max_depth), `camera`
        photo_loop.camera_choice's, `focal` photo_loop.focal_setup's. Relative depth has no scale to check, so
        the velodyne check then uses median scaling (as with --eval_mono); depth scaled by the ground plane is
        checked with its own factor."""
        from utils.cameras.camera import CameraChoice
        median = opt.eval_mono or not (predictor.metric or opt.camera_height)
        trained = getattr(predictor, "trained_camera", None) or getattr(predictor, "config", {}).get("camera")
        return cls(output_dir, predictor.scale_factor, predictor.min_depth, predictor.max_depth, opt.colormap,
                   opt.save_png16, camera, opt.save_ply, opt.video_layout, opt.camera_height,
                   (opt.velo_filename, opt.calib_path, median) if opt.velo_filename else None, progress, focal,
                   opt.temporal, bool(predictor.metric), CameraChoice(opt.camera, trained), opt.save_raw,
                   getattr(predictor, "provenance", None))
