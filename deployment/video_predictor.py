"""Depth video without flicker in eager Paddle: a stateful predictor fed a video's frames in order.

    from deployment.video_predictor import VideoPredictor
    video = VideoPredictor("WEIGHTS")                 # temporal=True; Predictor's keyword arguments pass on
    for frame in frames:                              # paths, PIL images or H x W x 3 arrays, in order
        for out in video.push(frame):                 # frames leave half_window (4) frames later, in order
            use(out.index, out.depth, out.raw, out.colour_range)   # aligned depth, the frame's own depth,
                                                      # the video's one range of the inverse depth
    for out in video.flush():                         # the last frames; then video.summary().describe()
        use(...)

Each frame's depth (Predictor.depth, at the frame's size) goes through utils.geometry.stabilise: its scale
smoothed over its neighbours (metric weights: within a factor max_correction of the network's), then
blended with the previous output carried along the camera motion between the two frames
(utils.geometry.motion: ORB matches and the previous depth, PnP; `camera` a camera.json path or dict, else
the weights' training camera, else KITTI's, scaled to the frames). temporal=False gives each
frame as predicted, at once. Memory stays flat: half_window + 1 frames and the previous output.
"""
import numpy as np

from deployment.predictor import Predictor
from utils.cameras.camera import CameraChoice
from utils.geometry.motion import FrameMotion, camera_matrix
from utils.geometry.stabilise import StabilisedFrame, StabiliserOptions, TemporalStabiliser
from utils.io import image_io


class VideoPredictor:
    """The stateful video predictor of the module docstring. `options`: StabiliserOptions (default: the
    metric rule for metric weights); `motion=False`: scale alignment only. Raises
    utils.cameras.camera.CameraError on the first frame when `camera` does not fit the frames."""

    def __init__(self, weights_folder, temporal=True, options=None, motion=True, camera=None, **predictor_args):
        self.predictor = Predictor(weights_folder, **predictor_args)
        self.temporal = temporal
        self.stabiliser = TemporalStabiliser(options or StabiliserOptions(metric=self.predictor.metric))
        self.motion = FrameMotion() if temporal and motion else None
        self.cameras = CameraChoice(camera, self.predictor.trained_camera)
        self._count = 0

    def push(self, image, item=None):
        """Depth of the next frame; returns the StabilisedFrame list now ready (the frame itself at once when
        temporal=False)."""
        image = image_io.load_image(image)
        disp, size = self.predictor.predict_disp_and_size(image)
        factor = self.predictor.scale_factor
        depth = image_io.disparity_to_depth(disp, size, factor, self.predictor.min_depth, self.predictor.max_depth)
        index, self._count = self._count, self._count + 1
        if not self.temporal:
            return [StabilisedFrame(index, depth, depth, 1.0, None, item)]
        motion = None
        if self.motion is not None:
            motion = self.motion(np.asarray(image), depth, camera_matrix(*self.cameras.intrinsics(*size)))
        return self.stabiliser.push(depth, item, motion)

    def flush(self):
        return self.stabiliser.flush() if self.temporal else []

    def summary(self):
        """utils.geometry.stabilise.StabilityReport of the frames out so far."""
        return self.stabiliser.summary()
