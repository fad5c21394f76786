"""Depth for every frame of a video, streamed: one frame in memory at a time. Free of Paddle.

    predict_video(path, stem, predict_disp, out) writes, for input <stem>.<ext> and OutputOptions `out`
    (utils/io/output_options.py; out.output_dir written <output_dir> here):
      <output_dir>/<stem>/<stem>_<frame:06d>_disp.npy, _disp.jpeg, _depth.npy (, _depth.png, _points.ply)
                                 the per-frame files of utils.io.image_io.write_prediction, frame 0 first
      <output_dir>/<stem>_depth.<mp4|avi>   the input frames beside their colour-mapped disparity
                                 (layout "side": left | right; "stacked": top / bottom; "auto": stacked
                                 when the frame is at least twice as wide as high), at the input's fps
With out.temporal (predict.py's default for videos) the frames go through utils.geometry.stabilise first:
each frame's scale aligned to its neighbours (metric depth: within a factor 1.1 of its own), blended with the
previous output carried along the camera motion (utils.geometry.motion, with out.video_camera), and coloured
over one range of the inverse depth for the whole video; _depth.npy, _depth.png, _points.ply, _disp.jpeg
and the video hold the aligned depth, _disp.npy the network's own disparity, and with out.save_raw
<frame>_depth_raw.npy the frame's depth as predicted. Frames are written 4 frames after they are read;
memory holds those 5 frames and the previous output, whatever the video's length.
Both are written under temporary names and swapped in only after the last frame (utils.io.fileio), so
an unreadable video or a failure on the way leaves the earlier outputs as they were and nothing new.
"""
import os

import cv2
import numpy as np
from tqdm import tqdm

from utils.cameras.camera import CameraChoice
from utils.geometry.motion import FrameMotion, camera_matrix
from utils.geometry.stabilise import StabilisedFrame, StabiliserOptions, TemporalStabiliser
from utils.io import image_io
from utils.io.fileio import atomic_folder, atomic_write

# FFmpeg prints its own complaints ("moov atom not found") on stderr for a corrupt file; the user gets
# our one line instead. Read by OpenCV when it first opens a file, so setting it at import suffices.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp",
                    ".ts", ".mts", ".m2ts", ".ogv")
LAYOUTS = ("auto", "side", "stacked")
DEFAULT_FPS = 10.0  # KITTI's frame rate, for containers that do not state one


class VideoError(ValueError):
    """A video that cannot be read or written; the message is one line naming the file."""


def is_video(path):
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def output_video_path(output_dir, stem, source):
    """<output_dir>/<stem>_depth.avi for an .avi input (Motion JPEG), else .mp4 (MPEG-4 part 2): the two
    codecs every OpenCV build with FFmpeg can write."""
    ext = ".avi" if os.path.splitext(source)[1].lower() == ".avi" else ".mp4"
    return os.path.join(output_dir, f"{stem}_depth{ext}")


def frame_stem(stem, index):
    return f"{stem}_{index:06d}"


def open_video(path):
    """(cv2.VideoCapture, fps, frame count or 0 if unknown, first RGB frame). Raises VideoError when
    OpenCV cannot open it or decode a first frame."""
    capture = cv2.VideoCapture(os.fspath(path))
    ok, frame = capture.read() if capture.isOpened() else (False, None)
    if not ok or frame is None:
        capture.release()
        raise VideoError(f"cannot read video {path} (not a video OpenCV can decode, or no frame in it)")
    fps = capture.get(cv2.CAP_PROP_FPS)
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    return capture, fps if fps and np.isfinite(fps) and fps > 0 else DEFAULT_FPS, max(count, 0), _rgb(frame)


def _rgb(frame):
    return np.ascontiguousarray(frame[..., ::-1]) if frame.ndim == 3 else np.repeat(frame[..., None], 3, axis=2)


def frames(capture, first):
    """The RGB frames: `first` (already read by open_video), then the rest until the stream ends."""
    frame = first
    while frame is not None:
        yield frame
        ok, bgr = capture.read()
        frame = _rgb(bgr) if ok else None


def compose(frame, disp_rgb, layout="auto"):
    """Frame and its colour map (both H x W x 3) side by side or stacked; "auto": stacked when W >= 2 H."""
    h, w = frame.shape[:2]
    if layout == "auto":
        layout = "stacked" if w >= 2 * h else "side"
    return np.vstack([frame, disp_rgb]) if layout == "stacked" else np.hstack([frame, disp_rgb])


def predict_video(path, stem, predict_disp, out):
    """Predict each frame of video `path` with `predict_disp(PIL image) -> sigmoid disparity` and write the
    files of the module docstring as OutputOptions `out` says (out.save_ply: <frame>_points.ply with
    out.camera, a utils.cameras.camera.CameraChoice; out.video_layout; out.progress; out.temporal, the
    stabiliser). Returns (frames written, frame folder, video path, utils.geometry.stabilise.StabilityReport
    or None without out.temporal). Raises VideoError (unreadable or unwritable video) or
    utils.cameras.camera.CameraError (the camera does not fit the frames) before writing anything."""
    from PIL import Image

    capture, fps, count, first = open_video(path)
    try:
        camera = out.ply_camera
        intrinsics = camera.intrinsics(first.shape[1], first.shape[0]) if camera is not None else None
        os.makedirs(out.output_dir, exist_ok=True)
        folder = os.path.join(out.output_dir, stem)
        video_path = output_video_path(out.output_dir, stem, path)
        written = [0]
        stabiliser = TemporalStabiliser(StabiliserOptions(metric=out.metric)) if out.temporal else None
        motion = FrameMotion() if out.temporal else None
        video_camera = out.video_camera or CameraChoice()
        motion_k = camera_matrix(*video_camera.intrinsics(first.shape[1], first.shape[0])) if out.temporal else None

        def write_video(tmp_video, tmp_folder):
            size = compose(first, first, out.video_layout).shape[1::-1]
            fourcc = cv2.VideoWriter_fourcc(*("MJPG" if tmp_video.endswith(".avi") else "mp4v"))
            writer = cv2.VideoWriter(tmp_video, fourcc, fps, size)
            if not writer.isOpened():
                raise VideoError(f"cannot write video {video_path} (OpenCV has no encoder for it)")

            def write_frame(done):
                frame, disp = done.item
                points = (frame, intrinsics) if intrinsics is not None else None
                aligned = done.depth if stabiliser is not None else None
                image_io.write_prediction(tmp_folder, frame_stem(stem, done.index), disp, frame.shape[1::-1],
                                          out.scale_factor, out.colormap, out.save_png16, out.min_depth, out.max_depth,
                                          points=points, depth=aligned, colour_range=done.colour_range)
                if out.save_raw and stabiliser is not None:
                    np.save(os.path.join(tmp_folder, frame_stem(stem, done.index) + "_depth_raw.npy"), done.raw)
                colored = image_io.prediction_colours(disp, frame.shape[1::-1], out.colormap, aligned, done.colour_range)
                writer.write(np.ascontiguousarray(compose(frame, colored, out.video_layout)[..., ::-1]))
                written[0] = done.index + 1

            try:
                for index, frame in enumerate(tqdm(frames(capture, first), desc=out.progress, unit="frame",
                                                   total=count or None, disable=out.progress is None)):
                    image = Image.fromarray(frame)
                    disp = predict_disp(image)
                    depth = image_io.disparity_to_depth(disp, image.size, out.scale_factor, out.min_depth,
                                                        out.max_depth)
                    if stabiliser is None:
                        write_frame(StabilisedFrame(index, depth, depth, 1.0, None, (frame, disp)))
                        continue
                    if frame.shape[:2] != first.shape[:2]:
                        raise VideoError(f"{path}: frame {index} is {frame.shape[1]} x {frame.shape[0]}, the first "
                                         f"{first.shape[1]} x {first.shape[0]} (a video of one size only)")
                    for done in stabiliser.push(depth, (frame, disp), motion(frame, depth, motion_k)):
                        write_frame(done)
                for done in stabiliser.flush() if stabiliser is not None else []:
                    write_frame(done)
            finally:
                writer.release()

        with atomic_folder(folder) as tmp_folder:
            atomic_write(video_path, lambda tmp: write_video(tmp, tmp_folder))
    finally:
        capture.release()
    return written[0], folder, video_path, stabiliser.summary() if stabiliser is not None else None
