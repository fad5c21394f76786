"""The per-photo loop that predict.py (eager Paddle) and inference.py (Paddle Inference or ONNX
Runtime) share: same files, same velodyne check, and one report that both scripts print. Videos go
through utils/io/video.py (frame by frame, the same per-frame files), point clouds through
utils/geometry/pointcloud.py. Free of Paddle. `predict_photos` takes the paths, the predictor and one
OutputOptions (utils/io/output_options.py) and returns a PhotoResult; it never exits. Its per-photo step,
read_photo -> network -> write_photo, is also what predict.py --engine ray's actors run (deployment/ray_batch.py)."""
import os
import sys
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from tqdm import tqdm

from utils.cameras import kitti_layout
from utils.cameras.camera import CameraError
from utils.cameras.photo import FocalRescale, PhotoCameras
from utils.geometry import ground_plane
from utils.geometry.depth import disp_to_depth
from utils.geometry.metrics import METRIC_NAMES, evaluate_depth
from utils.io import image_io, video

OUTPUT_ROOT = "outputs"   # default output folders live here (relative to the working directory), never in the input
GROUND_NOTE = ("metric depth by the ground-plane approximation: each image's relative depth x {height:g} m / the "
               "distance of the road plane fitted in its lower part (utils/geometry/ground_plane.py; "
               "docs/metric_depth.md)")


def default_output_dir(color_path, command):
    """outputs/<command>/<input name>: the input's file stem, or the folder's name. One folder per command (and
    per backend: 'inference_onnxruntime'), so runs of different commands never overwrite each other, and the
    input folder (a dataset) is never written into."""
    path = os.path.abspath(color_path)
    name = os.path.basename(path) if os.path.isdir(path) else os.path.splitext(os.path.basename(path))[0]
    return os.path.join(OUTPUT_ROOT, command, name or "input")


class InputError(ValueError):
    """No image to read, an unreadable video, or a velodyne check without its files; the message is one line."""


def list_inputs(color_path, velo_filename=None, calib_path=None):
    """The images of `color_path` (image_io.list_images; or the video it names, checked readable), after
    checking that the scan and the calibration files of a velodyne check exist. Raises InputError."""
    try:
        paths = image_io.list_images(color_path)
    except image_io.ImageLoadError as e:
        raise InputError(str(e)) from None
    for path in paths:  # an unreadable video is said before any weights are loaded
        if video.is_video(path):
            try:
                video.open_video(path)[0].release()
            except video.VideoError as e:
                raise InputError(str(e)) from None
    if velo_filename:
        for f in (velo_filename,) + tuple(os.path.join(calib_path, n) for n in kitti_layout.CALIB_FILES):
            if not os.path.isfile(f):
                raise InputError(f"{f} not found (--velo_filename / --calib_path)")
    return paths


def velodyne_errors(disp, image_path, calib_path, velo_filename, min_depth, max_depth, median_scaling,
                    scale_factor):
    """The seven metrics of a sigmoid disparity against its velodyne scan and the scale used, exactly
    as test.py computes them (utils.geometry.metrics.evaluate_depth on the velodyne-distance ground truth)."""
    from utils.sensors.velodyne import generate_depth_map

    gt = generate_depth_map(calib_path, velo_filename, cam=kitti_layout.camera_of_image(image_path), vel_depth=True)
    scaled_disp, _ = disp_to_depth(disp, min_depth, max_depth)
    return evaluate_depth(gt, scaled_disp, mode="median" if median_scaling else "factor", factor=scale_factor)


@dataclass
class PhotoResult:
    """What predict_photos did: `written` [(image path, {kind: output path})], `failed` [one-line reason],
    `replaced` (images whose earlier output files were overwritten), `velodyne` [(image path, the seven
    metrics, scale ratio, median_scaling)] with a scan, `videos` [(video path, frames, frame folder,
    depth video, StabilityReport or None)], `ground` [(image path, utils.geometry.ground_plane.GroundScale)] with --camera_height, `notes`
    [(path, line)]: the camera taken from a photo's EXIF, the focal rescaling of its depth."""
    output_dir: str
    total: int
    written: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    replaced: int = 0
    velodyne: list = field(default_factory=list)
    videos: list = field(default_factory=list)
    photos: int = 0
    ground: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def add(self, path, written):
        """Record the PhotoWritten of the photo at `path`."""
        self.written.append((path, written.files))
        self.replaced += bool(written.replaced)
        self.notes += [(path, note) for note in written.notes]
        if written.fit is not None:
            self.ground.append((path, written.fit))


class PhotoSkipped(ValueError):
    """A photo that is not written (unreadable, a camera that does not fit it, no road plane); one line naming it."""


@dataclass
class Photo:
    """One photo between read_photo and write_photo: its RGB `image`, the point cloud's (colours, camera) or
    None, the ground plane's camera or None, and its focal rescaling (factor, note or None, metadata or None)."""
    path: str
    stem: str
    image: Any
    points: Any = None
    ground_k: Any = None
    focal: tuple = (1.0, None, None)


@dataclass
class PhotoWritten:
    """What write_photo wrote: `files` {kind: path}, the depth scale `factor` used, the ground plane's `fit`
    (or None), whether earlier files were `replaced`, and the photo's `notes` (lines for the report)."""
    files: dict
    factor: float
    fit: Any = None
    replaced: bool = False
    notes: list = field(default_factory=list)


def read_photo(path, stem, out, source=None):
    """The Photo of the image file `path` (its pixels from `source`, the file's bytes, when given) with what
    OutputOptions `out` asks of it: its point-cloud camera, ground-plane camera and focal rescaling (each from
    --camera, else the EXIF of `path`, else the training camera). Raises PhotoSkipped."""
    try:
        image = image_io.load_image(path if source is None else source)
        points = (np.asarray(image), out.ply_camera.intrinsics(*image.size, photo=path)) if out.ply_camera else None
        ground_k = out.camera.intrinsics(*image.size, photo=path) if out.camera_height else None
        focal = out.focal.of(path, *image.size) if out.focal is not None else (1.0, None, None)
    except image_io.ImageLoadError as e:   # bytes are named "upload": say the file
        raise PhotoSkipped(str(e) if source is None else f"{path}: {str(e).partition(': ')[2]}") from None
    except CameraError as e:
        raise PhotoSkipped(f"{path}: {e}") from None
    return Photo(path, stem, image, points, ground_k, focal)


def write_photo(photo, disp, out):
    """Write the files of `photo` from its sigmoid disparity `disp` into out.output_dir (image_io.write_prediction;
    depth x out.scale_factor x its focal factor, or x its ground-plane scale with out.camera_height) and return
    the PhotoWritten. Raises PhotoSkipped for a photo without a road plane. The per-photo step of predict_photos
    and of predict.py --engine ray's actors (deployment/ray_batch.py), so both write the same files."""
    rescale, note, metadata = photo.focal
    factor, fit = out.scale_factor * rescale, None
    if out.camera_height:
        relative = image_io.disparity_to_depth(disp, photo.image.size, out.scale_factor, out.min_depth, out.max_depth)
        fit = ground_plane.ground_scale(relative, photo.ground_k, out.camera_height)
        if fit.scale is None:
            raise PhotoSkipped(f"{photo.path}: {fit.describe()}")
        factor = out.scale_factor * fit.scale
    if out.provenance is not None:   # the caption of this photo's depth and what the weights learned from
        metadata = {**out.provenance.metadata(metadata, fit is not None), **(metadata or {})}
    earlier = image_io.prediction_paths(out.output_dir, photo.stem, out.save_png16, photo.points is not None)
    replaced = any(os.path.exists(p) for p in earlier.values())
    files = image_io.write_prediction(out.output_dir, photo.stem, disp, photo.image.size, factor, out.colormap,
                                      out.save_png16, out.min_depth, out.max_depth, points=photo.points,
                                      metadata=metadata)
    used = out.camera or (out.focal.cameras if out.focal is not None else None)
    notes = [n for n in (used.notes.get(photo.path) if used else None, note) if n]
    return PhotoWritten(files, factor, fit, replaced, notes)


def predict_photos(paths, predict_disp, out):
    """Predict every image of `paths` with `predict_disp(PIL image) -> H x W sigmoid disparity` and
    write its files (read_photo, then write_photo: image_io.write_prediction, depth = out.scale_factor x
    disp_to_depth) into out.output_dir; videos (utils.io.video.is_video) frame by frame with
    utils.io.video.predict_video. Unreadable images and videos, and images the camera does not fit, are skipped
    and listed in the result.
    `out` (OutputOptions) also says: out.velodyne, the metrics against that scan; out.save_ply, a point
    cloud with out.camera; out.camera_height, each photo's factor is out.scale_factor x its
    utils.geometry.ground_plane.ground_scale with out.camera, fitted on its depth at the photo's size (a
    photo without a road plane is skipped and listed, and videos are refused: their frames would each need
    their own fit); out.focal (utils.cameras.photo.FocalRescale), each photo's factor times its focal ratio
    (<stem>_depth.json records it; videos only with a given camera: frames carry no EXIF)."""
    result = PhotoResult(output_dir=out.output_dir, total=len(paths))
    stems = image_io.output_stems(paths)
    for path, stem in zip(paths, stems):
        if video.is_video(path) and out.camera_height:
            result.failed.append(f"{path}: --camera_height works on photos, not videos")
        elif video.is_video(path):
            try:
                video_factor, note, _ = out.focal.of() if out.focal is not None else (1.0, None, None)
                result.notes += [(path, note)] if note else []
                frames_out = replace(out, scale_factor=out.scale_factor * video_factor)
                result.videos.append((path,) + video.predict_video(path, stem, predict_disp, frames_out))
            except video.VideoError as e:
                result.failed.append(str(e))
            except CameraError as e:
                result.failed.append(f"{path}: {e}")
    photos = [(p, s) for p, s in zip(paths, stems) if not video.is_video(p)]
    result.photos = len(photos)
    bar = tqdm(photos, desc=out.progress, unit="image", disable=out.progress is None or len(photos) <= 1)
    for path, stem in bar:
        try:
            photo = read_photo(path, stem, out)
            disp = predict_disp(photo.image)
            written = write_photo(photo, disp, out)
        except PhotoSkipped as e:
            result.failed.append(str(e))
            if len(paths) > 1:  # one input: the exit line says it
                tqdm.write(f"skipped {e}", file=sys.stderr)
            continue
        result.add(path, written)
        if out.velodyne:
            velo_filename, calib_path, median_scaling = out.velodyne
            errors, ratio = velodyne_errors(disp, path, calib_path, velo_filename, out.min_depth, out.max_depth,
                                            median_scaling, written.factor)
            result.velodyne.append((path, errors, ratio, median_scaling))
    return result


def report(prog, result):
    """The lines both scripts print for a result (stdout), and the one-line error for the exit status
    (None when every image was written)."""
    lines = [f"{path}: {note}" for path, note in result.notes]
    lines += [f"{path}: {fit.describe()}" for path, fit in result.ground]
    for _, errors, ratio, median_scaling in result.velodyne:
        lines.append("  " + " | ".join(f"{n:>8}" for n in METRIC_NAMES))
        lines.append("  " + " | ".join(f"{v:8.3f}" for v in errors))
        lines.append(f"  scale: {'median ratio' if median_scaling else 'fixed factor'} {ratio:.3f}")
    for path, frames, folder, depth_video, stability in result.videos:
        lines.append(f"{path}: {frames} frame(s) written to {folder}, depth video {depth_video}")
        lines += [f"{path}: {stability.describe()}"] if stability is not None else []
    if result.photos:
        lines.append(f"{len(result.written)} of {result.photos} image(s) written to {result.output_dir}")
    if result.replaced:
        lines.append(f"replaced the earlier files of {result.replaced} image(s) in {result.output_dir}")
    error = f"{prog}: error: " + "; ".join(result.failed) if result.failed else None
    return lines, error


def predict_and_report(prog, paths, predict_disp, out):
    """predict_photos with OutputOptions `out` (OutputOptions.from_run), then report: what predict.py and
    inference.py run. Returns (lines, error)."""
    return report(prog, predict_photos(paths, predict_disp, out))


def camera_choice(camera_path, trained_camera, save_ply, camera_height=None):
    """The PhotoCameras (a CameraChoice that first asks each photo's EXIF when no camera is given) of a run with
    --save_ply or --camera_height (its source printed once; the run's OutputOptions.camera), or None without
    either. Raises InputError for an unusable camera.json."""
    if not (save_ply or camera_height):
        return None
    try:
        choice = PhotoCameras(camera_path, trained_camera)
    except CameraError as e:
        raise InputError(str(e)) from None
    uses = " and ".join(u for u, on in (("point clouds", save_ply), ("ground plane", camera_height)) if on)
    print(choice.source.replace("point clouds", uses, 1))
    return choice


def ground_setup(camera_height, metric):
    """Before a run with --camera_height (nothing without it): weights whose depth is already metric are
    refused (InputError), since the ground plane gives relative depth its scale and metric depth has one;
    else GROUND_NOTE is printed once. The run's OutputOptions then carry camera_height and camera_choice(...)."""
    if not camera_height:
        return
    if metric:
        raise InputError("--camera_height gives relative depth a scale, but these weights' depth is already in "
                         "metres (stereo training, or opt.json / deploy.json \"metric\": true): drop --camera_height")
    print(GROUND_NOTE.format(height=camera_height))


def focal_setup(enabled, metric, camera_path, trained_camera, save_ply=False, camera_height=None):
    """The run's FocalRescale (its OutputOptions.focal): for metric weights (without an explicit scale factor)
    unless --no-focal_rescale, else None. A --camera that nothing uses (relative weights, no --save_ply or
    --camera_height) is refused (InputError)."""
    if camera_path and not metric and not (save_ply or camera_height):
        raise InputError("--camera is used for point clouds (--save_ply), --camera_height and the focal rescaling of "
                         "metric depth, but these weights give relative depth: add --save_ply or --camera_height")
    if not (enabled and metric):
        return None
    try:
        return FocalRescale(PhotoCameras(camera_path, trained_camera))
    except CameraError as e:
        raise InputError(str(e)) from None
