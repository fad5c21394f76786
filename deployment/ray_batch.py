"""predict.py --engine ray: the photos of --color_path predicted by a pool of Ray actors (needs Ray).

Ray Data reads the photos' bytes (read_binary_files); map_batches hands --batch_size of them at a time to
one of --num_actors PhotoWriter actors, each holding the networks once (service.DepthModel, as predict.py
builds them): one network call per batch, then every photo's files written by image_io.write_prediction,
the writer of the one-process predict.py, under the same names (image_io.output_stems of the whole
folder). Photos whose files all exist are skipped before anything starts, so running the same command
again after an interruption predicts only the rest; predict.py's report follows (photo_loop.report).
On a cluster every node must see the photos and --output_dir at the same paths (shared storage).
"""
import logging
import os
import sys

import numpy as np
from tqdm import tqdm

from deployment import ray_cluster
from deployment.service import DepthModel
from utils import image_io, photo_loop
from utils.pointcloud import CameraError

PROGRESS = "predict.py (ray)"


def _plain_stem(path):
    return os.path.splitext(os.path.basename(path))[0]


class PhotoWriter:
    """One actor of the pool: the model of `opt` on `threads` threads; called on a batch {"bytes", "path"}
    of photos, it writes their files into `output_dir` and returns {"path", "error"} ("" when written).
    `stems`: the output stems that differ from the file's own (two inputs sharing one); `camera`: a
    utils.pointcloud.CameraChoice for <stem>_points.ply, or None."""

    def __init__(self, opt, threads, output_dir, stems, camera):
        self.model = DepthModel(opt, threads)
        self.opt, self.output_dir, self.stems, self.camera = opt, output_dir, stems, camera

    def __call__(self, batch):
        paths = [str(p) for p in batch["path"]]
        errors = [""] * len(paths)
        images = {}
        for i, (path, data) in enumerate(zip(paths, batch["bytes"])):
            try:
                image = image_io.load_image(bytes(data))
                points = (np.asarray(image), self.camera.intrinsics(*image.size)) if self.camera else None
                images[i] = (image, points)
            except image_io.ImageLoadError as e:   # listed, as predict.py lists it
                errors[i] = f"{path}: {str(e).partition(': ')[2]}"
            except CameraError as e:
                errors[i] = f"{path}: {e}"
        order = sorted(images)
        disps = self.model.disparities([images[i][0] for i in order]) if order else []
        for i, disp in zip(order, disps):
            image, points = images[i]
            try:
                image_io.write_prediction(self.output_dir, self.stems.get(paths[i]) or _plain_stem(paths[i]), disp,
                                          image.size, self.model.scale_factor, self.opt.colormap,
                                          self.opt.save_png16, self.model.min_depth, self.model.max_depth,
                                          points=points)
            except OSError as e:
                errors[i] = f"{paths[i]}: could not write its files ({e})"
        return {"path": np.array(paths, dtype=object), "error": np.array(errors, dtype=object)}


def pending(paths, output_dir, save_png16=False, save_ply=False):
    """(paths still to predict, {path: its output stem}): those of `paths` some of whose files are missing
    in output_dir (names as image_io.output_stems gives them for the whole list)."""
    todo = {}
    for path, stem in zip(paths, image_io.output_stems(paths)):
        if not all(os.path.isfile(p) for p in image_io.prediction_paths(output_dir, stem, save_png16,
                                                                        save_ply).values()):
            todo[path] = stem
    return list(todo), todo


def main(opt, paths, camera=None):
    """predict.py's end with --engine ray: predict, print the report, exit non-zero if a photo failed."""
    lines, error = predict(opt, paths, opt.output_dir or photo_loop.default_output_dir(opt.color_path), camera)
    if lines:
        print("\n".join(lines))
    if error:
        sys.exit(error)


def predict(opt, paths, output_dir, camera=None):
    """Predict `paths` (photos) into output_dir on Ray; returns (lines, error) as photo_loop.predict_and_report."""
    # actors run in other folders (on other nodes: the same paths on shared storage)
    paths, output_dir = [os.path.abspath(p) for p in paths], os.path.abspath(output_dir)
    todo, stems = pending(paths, output_dir, opt.save_png16, camera is not None)
    result = photo_loop.PhotoResult(output_dir=output_dir, total=len(paths), photos=len(todo))
    done = len(paths) - len(todo)
    if todo:
        started = ray_cluster.connect(opt.address)
        previous = ray_cluster.interrupt_on_sigterm()
        try:
            _run(opt, todo, stems, output_dir, camera, result)
        finally:
            ray_cluster.restore_sigterm(previous)
            if started:   # else the caller's Ray, left connected
                ray_cluster.shutdown(True)
    lines, error = photo_loop.report(PROGRESS.split()[0], result)
    if done:
        lines.append(f"skipped {done} image(s) whose files were already in {output_dir} (delete them to predict "
                     "again)")
    return lines, error


def _run(opt, todo, stems, output_dir, camera, result):
    """Ray Data over `todo`: the PhotoWriter pool's answers collected into `result`, with a progress bar."""
    import ray

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False   # one bar: ours, per photo
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    cpus = ray_cluster.worker_cpus(opt.worker_cpus, opt.num_actors)
    renamed = {p: s for p, s in stems.items() if s != _plain_stem(p)}
    photos = ray.data.read_binary_files(todo, include_paths=True, num_cpus=0)   # reading is I/O
    written = photos.map_batches(PhotoWriter, batch_size=opt.batch_size, batch_format="numpy",
                                 compute=ray.data.ActorPoolStrategy(size=opt.num_actors), num_cpus=cpus,
                                 fn_constructor_args=(opt, max(1, int(round(cpus))), output_dir, renamed, camera))
    with tqdm(total=len(todo), desc=PROGRESS, unit="image", disable=len(todo) <= 1) as bar:
        for batch in written.iter_batches(batch_size=None, batch_format="numpy"):
            for path, error in zip(batch["path"], batch["error"]):
                if error:
                    result.failed.append(str(error))
                    tqdm.write(f"skipped {error}", file=sys.stderr)
                else:
                    result.written.append((str(path), {}))
                bar.update(1)
