"""The per-photo loop that predict.py (eager Paddle) and inference.py (Paddle Inference or ONNX
Runtime) share: same files, same velodyne check, and one report that both scripts print. Free of
Paddle. `predict_photos` takes explicit arguments and returns a PhotoResult; it never exits."""
import os
import sys
from dataclasses import dataclass, field

from tqdm import tqdm

from utils import image_io, kitti_layout
from utils.depth import disp_to_depth
from utils.metrics import METRIC_NAMES, evaluate_depth

PREDICT_OUTPUT_NAME = "predictions"              # predict.py's default output folder
INFERENCE_OUTPUT_NAME = "predictions_inference"  # inference.py's: the two never overwrite each other


def default_output_dir(color_path, name=PREDICT_OUTPUT_NAME):
    """Folder `name` beside the image, or inside the folder."""
    folder = color_path if os.path.isdir(color_path) else os.path.dirname(os.path.abspath(color_path))
    return os.path.join(folder, name)


class InputError(ValueError):
    """No image to read, or a velodyne check without its files; the message is one line."""


def list_inputs(color_path, velo_filename=None, calib_path=None):
    """The images of `color_path` (image_io.list_images), after checking that the scan and the
    calibration files of a velodyne check exist. Raises InputError."""
    try:
        paths = image_io.list_images(color_path)
    except image_io.ImageLoadError as e:
        raise InputError(str(e)) from None
    if velo_filename:
        for f in (velo_filename,) + tuple(os.path.join(calib_path, n) for n in kitti_layout.CALIB_FILES):
            if not os.path.isfile(f):
                raise InputError(f"{f} not found (--velo_filename / --calib_path)")
    return paths


def velodyne_errors(disp, image_path, calib_path, velo_filename, min_depth, max_depth, median_scaling,
                    scale_factor):
    """The seven metrics of a sigmoid disparity against its velodyne scan and the scale used, exactly
    as test.py computes them (utils.metrics.evaluate_depth on the velodyne-distance ground truth)."""
    from utils.kitti_utils import generate_depth_map

    gt = generate_depth_map(calib_path, velo_filename, cam=kitti_layout.camera_of_image(image_path), vel_depth=True)
    scaled_disp, _ = disp_to_depth(disp, min_depth, max_depth)
    return evaluate_depth(gt, scaled_disp, mode="median" if median_scaling else "stereo", stereo_factor=scale_factor)


@dataclass
class PhotoResult:
    """What predict_photos did: `written` [(image path, {kind: output path})], `failed` [one-line reason],
    `replaced` (images whose earlier output files were overwritten), `velodyne` [(image path, the seven
    metrics, scale ratio, median_scaling)] with a scan."""
    output_dir: str
    total: int
    written: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    replaced: int = 0
    velodyne: list = field(default_factory=list)


def predict_photos(paths, predict_disp, output_dir, scale_factor, min_depth, max_depth, colormap="magma",
                   save_png16=False, velodyne=None, progress=None):
    """Predict every image of `paths` with `predict_disp(PIL image) -> H x W sigmoid disparity` and
    write its files (image_io.write_prediction, depth = scale_factor x disp_to_depth) into output_dir.
    Unreadable images are skipped and listed in the result. `velodyne` = (velo_filename, calib_path,
    median_scaling): also the metrics against that scan. `progress`: tqdm label, or None for none."""
    result = PhotoResult(output_dir=output_dir, total=len(paths))
    for path, stem in tqdm(list(zip(paths, image_io.output_stems(paths))), desc=progress, unit="image",
                           disable=progress is None or len(paths) == 1):
        try:
            image = image_io.load_image(path)
        except image_io.ImageLoadError as e:
            result.failed.append(str(e))
            tqdm.write(f"skipped {e}", file=sys.stderr)
            continue
        disp = predict_disp(image)
        if any(os.path.exists(p) for p in image_io.prediction_paths(output_dir, stem, save_png16).values()):
            result.replaced += 1
        files = image_io.write_prediction(output_dir, stem, disp, image.size, scale_factor, colormap, save_png16,
                                          min_depth, max_depth)
        result.written.append((path, files))
        if velodyne:
            velo_filename, calib_path, median_scaling = velodyne
            errors, ratio = velodyne_errors(disp, path, calib_path, velo_filename, min_depth, max_depth,
                                            median_scaling, scale_factor)
            result.velodyne.append((path, errors, ratio, median_scaling))
    return result


def report(prog, result):
    """The lines both scripts print for a result (stdout), and the one-line error for the exit status
    (None when every image was written)."""
    lines = []
    for _, errors, ratio, median_scaling in result.velodyne:
        lines.append("  " + " | ".join(f"{n:>8}" for n in METRIC_NAMES))
        lines.append("  " + " | ".join(f"{v:8.3f}" for v in errors))
        lines.append(f"  scale: {'median ratio' if median_scaling else 'fixed factor'} {ratio:.3f}")
    lines.append(f"{len(result.written)} of {result.total} image(s) written to {result.output_dir}")
    if result.replaced:
        lines.append(f"replaced the earlier files of {result.replaced} image(s) in {result.output_dir}")
    error = f"{prog}: error: could not read " + "; ".join(result.failed) if result.failed else None
    return lines, error


def predict_and_report(prog, paths, predict_disp, output_dir, scale_factor, metric, min_depth, max_depth,
                       colormap="magma", save_png16=False, velo_filename=None, calib_path=None, eval_mono=False):
    """predict_photos, then report: what predict.py and inference.py run. Relative depth has no scale to
    check, so the velodyne check then uses median scaling (as with --eval_mono). Returns (lines, error)."""
    velodyne = (velo_filename, calib_path, eval_mono or not metric) if velo_filename else None
    result = predict_photos(paths, predict_disp, output_dir, scale_factor, min_depth, max_depth, colormap,
                            save_png16, velodyne, prog)
    return report(prog, result)
