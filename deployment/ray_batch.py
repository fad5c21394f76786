"""predict.py --engine ray: the photos of --color_path predicted by a pool of Ray actors (needs Ray).

Ray Data reads the photos' bytes (read_binary_files); map_batches hands --batch_size of them at a time to
one of --num_actors PhotoWriter actors, each holding the networks once (service.DepthModel, as predict.py
builds them): one network call per batch, and around it the per-photo step of the one-process predict.py,
utils/io/photo_loop.py's read_photo and write_photo with the run's OutputOptions, so the same files are
written under the same names (image_io.output_stems of the whole folder): point clouds, the focal rescaling
of metric depth by each photo's --camera or EXIF and its <stem>_depth.json included. Photos whose files all
exist are skipped before anything starts, so running the same command again after an interruption predicts
only the rest; predict.py's report follows (photo_loop.report). On a cluster every node must see the photos
and --output_dir at the same paths (shared storage).
"""
import logging
import os
import sys
from dataclasses import replace

import numpy as np
from tqdm import tqdm

from deployment import ray_cluster
from deployment.service import DepthModel
from utils.io import image_io, photo_loop

PROGRESS = "predict.py (ray)"


def _plain_stem(path):
    return os.path.splitext(os.path.basename(path))[0]


class PhotoWriter:
    """One actor of the pool: the model of `opt` on `threads` threads; called on a batch {"bytes", "path"}
    of photos, it writes their files as OutputOptions `out` says and returns, per photo, "path", "error" (""
    when written), "notes" (the report's lines, joined by newlines) and "replaced" (earlier files overwritten).
    `stems`: the output stems that differ from the file's own (two inputs sharing one)."""

    def __init__(self, opt, threads, out, stems):
        self.model = DepthModel(opt, threads)
        self.out, self.stems = out, stems

    def __call__(self, batch):
        paths = [str(p) for p in batch["path"]]
        errors, notes, replaced = [""] * len(paths), [""] * len(paths), [False] * len(paths)
        photos = {}
        for i, (path, data) in enumerate(zip(paths, batch["bytes"])):
            try:
                photos[i] = photo_loop.read_photo(path, self.stems.get(path) or _plain_stem(path), self.out,
                                                  bytes(data))
            except photo_loop.PhotoSkipped as e:   # listed, as predict.py lists it
                errors[i] = str(e)
        order = sorted(photos)
        disps = self.model.disparities([photos[i].image for i in order]) if order else []
        for i, disp in zip(order, disps):
            try:
                written = photo_loop.write_photo(photos[i], disp, self.out)
                notes[i], replaced[i] = "\n".join(written.notes), written.replaced
            except photo_loop.PhotoSkipped as e:
                errors[i] = str(e)
            except OSError as e:
                errors[i] = f"{paths[i]}: could not write its files ({e})"
        return {"path": np.array(paths, dtype=object), "error": np.array(errors, dtype=object),
                "notes": np.array(notes, dtype=object), "replaced": np.array(replaced, dtype=bool)}


def pending(paths, output_dir, save_png16=False, save_ply=False):
    """(paths still to predict, {path: its output stem}): those of `paths` some of whose files are missing
    in output_dir (names as image_io.output_stems gives them for the whole list; the files every photo gets,
    so not <stem>_depth.json, which only photos with a focal rescaling get)."""
    todo = {}
    for path, stem in zip(paths, image_io.output_stems(paths)):
        if not all(os.path.isfile(p) for p in image_io.prediction_paths(output_dir, stem, save_png16,
                                                                        save_ply).values()):
            todo[path] = stem
    return list(todo), todo


def predict(opt, paths, out):
    """Predict `paths` (photos) as OutputOptions `out` says (OutputOptions.from_run) on Ray; returns (lines,
    error) as photo_loop.predict_and_report."""
    # actors run in other folders (on other nodes: the same paths on shared storage)
    paths, out = [os.path.abspath(p) for p in paths], replace(out, output_dir=os.path.abspath(out.output_dir))
    todo, stems = pending(paths, out.output_dir, out.save_png16, out.save_ply)
    result = photo_loop.PhotoResult(output_dir=out.output_dir, total=len(paths), photos=len(todo))
    done = len(paths) - len(todo)
    if todo:
        started = ray_cluster.connect(opt.address)
        previous = ray_cluster.interrupt_on_sigterm()
        try:
            _run(opt, todo, stems, out, result)
        finally:
            ray_cluster.restore_sigterm(previous)
            if started:   # else the caller's Ray, left connected
                ray_cluster.shutdown(True)
    lines, error = photo_loop.report(PROGRESS.split()[0], result)
    if done:
        lines.append(f"skipped {done} image(s) whose files were already in {out.output_dir} (delete them to "
                     "predict again)")
    return lines, error


def _run(opt, todo, stems, out, result):
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
                                 fn_constructor_args=(opt, max(1, int(round(cpus))), out, renamed))
    with tqdm(total=len(todo), desc=PROGRESS, unit="image", disable=len(todo) <= 1) as bar:
        for batch in written.iter_batches(batch_size=None, batch_format="numpy"):
            for path, error, notes, replaced in zip(batch["path"], batch["error"], batch["notes"], batch["replaced"]):
                if error:
                    result.failed.append(str(error))
                    tqdm.write(f"skipped {error}", file=sys.stderr)
                else:
                    result.add(str(path), photo_loop.PhotoWritten({}, None, replaced=bool(replaced),
                                                                  notes=str(notes).split("\n") if notes else []))
                bar.update(1)
