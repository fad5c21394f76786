"""Precompute fused-SGM depth hints (Watson et al., "Self-Supervised Monocular Depth Hints"; docs/MLDA_NET.md §7).

    python precompute_depth_hints.py --data_path kitti_data --split eigen_zhou --num_workers 2
    python precompute_depth_hints.py --data_path data/synthetic_kitti --split data/synthetic_kitti/splits \
        --height 192 --width 640
    python precompute_depth_hints.py --data_path ROOT      # one's own stereo sequences (ROOT/camera.json)

For each split line's image and its stereo partner, both Lanczos-resized to --width x --height:
12 OpenCV StereoSGBM runs (blockSize 1, 2, 3 x numDisparities 64, 96, 128, 160; a right image and its
partner are flipped so that OpenCV's left reference holds, and the result flipped back), each turned
into depth = fx * baseline / disparity (0 where disparity <= 0). Per pixel, the candidate whose depth
warps the partner onto the image with the lowest reprojection loss pe wins (+1000 for a zero-depth
candidate). Float32 1 x H x W, 0 = no hint. Finished files are skipped unless --overwrite
(resumable); each file appears atomically.

KITTI: fx = 0.58 W and baseline 0.1 (the loader's training units), written as
<save_path>/<date>/<drive>/image_0{2,3}/<frame>.npy for the --split's train and val lines.
One's own camera (utils/cameras/folder_layout.py; --dataset folder, or found by <data_path>/camera.json): the
sequence's camera.json fx scaled to the working width and its "baseline" in metres, so the hints are
metres, the units of that dataset's stereo transform; written as
<save_path>/<sequence>/<left|right>/<frame>.npy for the train and val lines of <data_path>/splits
(made when absent); working size: --height/--width if given, else each camera's own size, aspect
kept, at most 1024 wide.
"""
import utils  # noqa: F401  (first import: silences Paddle's import-time ccache warning)
import os
import sys

import numpy as np

from utils.cameras import folder_layout
from utils.cameras.camera import intrinsics, read_camera
from utils.cameras import kitti_layout as layout
from utils.io.fileio import atomic_write
from utils.io.image_io import to_chw

SGBM_BLOCK_SIZES = (1, 2, 3)
SGBM_NUM_DISPARITIES = (64, 96, 128, 160)
FOLDER_MAX_WIDTH = 1024   # one's own camera: hints at its aspect ratio, at most DH's KITTI width


def sgbm_disparity(left, right, block_size, num_disparities):
    """Disparity of `left` (pixels, float32, <= 0 where OpenCV found none) for uint8 H x W x 3 images."""
    import cv2
    stereo = cv2.StereoSGBM_create(minDisparity=0, numDisparities=num_disparities, blockSize=block_size,
                                   P1=4 * 9, P2=32 * 9, preFilterCap=63, uniquenessRatio=10,
                                   speckleWindowSize=100, speckleRange=16)
    return stereo.compute(np.ascontiguousarray(left), np.ascontiguousarray(right)).astype(np.float32) / 16


def candidate_depths(target, partner, side, fx, baseline=layout.STEREO_BASELINE):
    """The 12 SGBM depth maps of `target` (uint8 H x W x 3) given its stereo `partner`, 12 x H x W
    (fewer on images too narrow for the larger disparity ranges):
    depth = fx * baseline / disparity (fx in pixels of these images; baseline in the units the
    hints are wanted in: KITTI's training units 0.1, or metres for one's own camera).

    side "l": target is the left image; "r": the right one (both images flipped for OpenCV)."""
    if side == "r":
        target, partner = target[:, ::-1], partner[:, ::-1]
    out = []
    for block in SGBM_BLOCK_SIZES:
        # OpenCV refuses a disparity range that leaves no column to match: narrow images (one's own
        # small camera) use the ranges that fit, KITTI's widths all 12
        fitting = [num for num in SGBM_NUM_DISPARITIES if target.shape[1] - num > block // 2]
        if not fitting:
            least = SGBM_NUM_DISPARITIES[0] + 2
            raise layout.LayoutError(f"images {target.shape[1]} px wide are too narrow for SGBM's "
                                     f"{SGBM_NUM_DISPARITIES[0]} disparities: use --width {least} or more")
        for num in fitting:
            disp = sgbm_disparity(target, partner, block, num)
            out.append(np.where(disp > 0, fx * baseline / (disp + 1e-7), 0).astype(np.float32))
    depths = np.stack(out)
    return np.ascontiguousarray(depths[:, :, ::-1]) if side == "r" else depths


def stereo_transform(side, baseline):
    """Target -> partner transform of a rectified pair `baseline` apart: KITTI's stereo_T with
    |t_x| = baseline (-baseline for a left image, +baseline for a right one)."""
    t = layout.stereo_T(side)
    t[0, 3] = np.sign(t[0, 3]) * baseline
    return t


def photometric_errors(target, partner, depths, side, K=None, baseline=layout.STEREO_BASELINE):
    """pe(partner warped with each candidate depth, target) + 1000 where the depth is 0: N x H x W.
    K: 4 x 4 intrinsics of these images (default KITTI's); baseline in the depths' units.

    Uses the training loss's own warp and pe (losses.warp_image, losses.reprojection_loss)."""
    import paddle
    from losses import reprojection_loss, warp_image
    n, h, w = depths.shape
    k = layout.intrinsics(w, h) if K is None else np.asarray(K, np.float32)
    as_batch = lambda a: paddle.to_tensor(np.repeat(a[None], n, 0))
    tgt = paddle.to_tensor(np.repeat(to_chw(target)[None], n, 0))
    src = paddle.to_tensor(np.repeat(to_chw(partner)[None], n, 0))
    with paddle.no_grad():
        warped = warp_image(src, paddle.to_tensor(depths[:, None]), as_batch(k), as_batch(np.linalg.pinv(k)),
                            as_batch(stereo_transform(side, baseline)))
        pe = reprojection_loss(warped, tgt).numpy()[:, 0]
    return pe + layout.HINT_INVALID_PENALTY * (depths <= 0)


def fuse(depths, errors):
    """Per pixel, the candidate depth with the lowest error (ties: the first candidate)."""
    best = np.argmin(errors, axis=0)
    return np.take_along_axis(depths, best[None], 0)[0]


def hints_for_pair(target, partner, side, K=None, baseline=layout.STEREO_BASELINE):
    """Fused depth hint (H x W float32, 0 = none) of `target` (uint8 H x W x 3) in the units of
    `baseline`. K: the 4 x 4 intrinsics of these images; default KITTI's (fx = 0.58 W, the loader's)
    with baseline 0.1, i.e. KITTI's training units; one's own camera: its K scaled to this size and
    its baseline in metres, i.e. hints in metres."""
    if K is None:
        fx = layout.NORMALISED_K[0][0] * target.shape[1]   # the loader's fx (0.58 W), as a Python float
        K = layout.intrinsics(target.shape[1], target.shape[0])
    else:
        fx = float(K[0][0])
    depths = candidate_depths(target, partner, side, fx, baseline)
    # OpenCV uses blockSize // 2 as the window radius, so blockSize 2 and 3 give identical maps:
    # score each distinct map once (same result as scoring all 12, a third less work)
    first = []
    for i in range(len(depths)):
        first.append(next(j for j in range(i + 1) if j == i or np.array_equal(depths[j], depths[i])))
    distinct = sorted(set(first))
    errors = photometric_errors(target, partner, depths[distinct], side, K, baseline)
    return fuse(depths, errors[[distinct.index(j) for j in first]])


# ------------------------------------------------------------------------------- files
def _load(path, width, height):
    from PIL import Image
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB").resize((width, height), Image.Resampling.LANCZOS))


def _save_atomic(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write(path, lambda tmp: np.save(tmp, array))


def _work(task):
    target_path, partner_path, side, out_path, width, height, K, baseline = task
    hint = hints_for_pair(_load(target_path, width, height), _load(partner_path, width, height), side, K, baseline)
    _save_atomic(out_path, hint[None].astype(np.float32))
    return out_path


def _init_worker():
    import cv2
    import paddle
    from utils.system import set_cpu_threads
    cv2.setNumThreads(1)
    paddle.set_device("cpu")
    set_cpu_threads(1)   # one process per core


def _require_pair(images, line, describe, fix):
    """MissingFileError for the first missing image of (target, stereo partner) of split line `line`
    (folder, frame, side); `describe(side)` says where it was looked for, `fix` how to mend it."""
    folder, frame, side = line
    for s, path in zip((side, layout.OTHER_SIDE[side]), images):
        if path is None:
            what = "stereo partner" if s != side else "frame"
            raise layout.MissingFileError(f"missing {what}: {describe(s)} "
                                          f"(needed by split line '{folder} {frame} {side}'; {fix})")


def hint_tasks(data_path, filenames, save_path, height, width, img_ext=".jpg", overwrite=False):
    """(all unique (folder, frame, side), tasks still to do); LayoutError (= datasets.DataError) naming the
    first missing image."""
    unique = sorted({layout.parse_split_line(line, f"split line {i + 1}") for i, line in enumerate(filenames)})
    tasks = []
    for folder, frame, side in unique:
        images = [layout.find_image(data_path, folder, frame, s, img_ext) for s in (side, layout.OTHER_SIDE[side])]
        _require_pair(images, (folder, frame, side), lambda s: layout.image_path(data_path, folder, frame, s, img_ext),
                      "check --data_path and the split")
        out = layout.hint_path(save_path, folder, frame, side)
        if overwrite or not os.path.isfile(out):
            tasks.append((images[0], images[1], side, out, width, height, None, layout.STEREO_BASELINE))
    return unique, tasks


def folder_working_size(camera, max_width=FOLDER_MAX_WIDTH):
    """(height, width) of a camera's images shrunk, aspect ratio kept, to at most max_width wide."""
    scale = min(1.0, max_width / camera["width"])
    return max(8, round(camera["height"] * scale)), max(8, round(camera["width"] * scale))


def folder_hint_tasks(root, filenames, save_path, height=None, width=None, overwrite=False):
    """hint_tasks for one's own sequences (utils/cameras/folder_layout.py): each pair with its sequence's camera
    scaled to width x height (None: folder_working_size of that camera) and its baseline in metres
    (hints in metres, as the folder dataset's stereo_T); LayoutError for a camera without a baseline,
    a stale camera or a missing image."""
    unique = sorted({folder_layout.parse_split_line(line, f"split line {i + 1}") for i, line in enumerate(filenames)})
    cameras, tasks = {}, []
    for seq, frame, side in unique:
        if seq not in cameras:
            cam_file = folder_layout.camera_path(root, seq)
            cam = read_camera(cam_file)
            if cam["baseline"] is None:
                raise layout.LayoutError(f"{cam_file}: depth hints need \"baseline\" (metres between the left and "
                                         f"right camera centres) and ROOT/<sequence>/right/ images")
            first = folder_layout.frame_path(root, seq, 0)
            if first is not None:   # a resized copy with a stale camera would give hints at the wrong scale
                folder_layout.check_image_size(first, folder_layout.image_size(first), cam_file)
            cameras[seq] = cam
        images = [folder_layout.frame_path(root, seq, frame, s) for s in (side, folder_layout.OTHER_SIDE[side])]
        _require_pair(images, (seq, frame, side),
                      lambda s: f"frame index {frame} of {os.path.join(root, seq, folder_layout.SIDE_FOLDER[s])}",
                      "right images keep the left ones' names")
        name = os.path.basename(folder_layout.frame_path(root, seq, frame, "l"))
        out = folder_layout.hint_path(save_path, seq, name, side)
        h, w = (height, width) if height and width else folder_working_size(cameras[seq])
        if overwrite or not os.path.isfile(out):
            tasks.append((images[0], images[1], side, out, w, h, intrinsics(cameras[seq], w, h),
                          cameras[seq]["baseline"]))
    return unique, tasks


def compute_hints(data_path, filenames, save_path=None, height=320, width=1024, num_workers=1, img_ext=".jpg",
                  overwrite=False, progress=True, dataset="kitti"):
    """Write the fused hints of every split line (list of lines) under save_path (default
    <data_path>/depth_hints). dataset "kitti": KITTI raw, hints in its training units; "folder": one's
    own sequences, hints in metres. Returns (number of hints needed, number computed now)."""
    from tqdm import tqdm
    save_path = save_path or layout.default_hint_root(data_path)
    if dataset == "folder":
        unique, tasks = folder_hint_tasks(data_path, filenames, save_path, height, width, overwrite)
    else:
        unique, tasks = hint_tasks(data_path, filenames, save_path, height, width, img_ext, overwrite)
    bar = tqdm(total=len(tasks), desc="depth hints", unit="image", disable=not progress or not tasks)
    if num_workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            _work(task)
            bar.update(1)
    else:
        import multiprocessing
        ctx = multiprocessing.get_context("spawn")   # Paddle is not fork-safe once initialised
        # Pool's context manager ends with terminate(): SIGTERM, which each worker's Paddle reports as a
        # "FatalError: Termination signal" block. close() + join() let the workers exit on their own.
        pool = ctx.Pool(num_workers, initializer=_init_worker)
        try:
            for _ in pool.imap_unordered(_work, tasks):
                bar.update(1)
            pool.close()
        except BaseException:
            pool.terminate()   # an error or Ctrl-C: stop the others now
            raise
        finally:
            pool.join()
    bar.close()
    return len(unique), len(tasks)


def split_files(split, kinds=("train", "val")):
    """Split lines of <split>/<kind>_files.txt for the kinds present; `split` is a folder under
    splits/ or a path to a folder."""
    folder = layout.split_folder(split)
    paths = [os.path.join(folder, f"{kind}_files.txt") for kind in kinds]
    paths = [p for p in paths if os.path.isfile(p)]
    if not paths:
        raise layout.LayoutError(f"no {' or '.join(k + '_files.txt' for k in kinds)} in {folder}: check --split")
    return [line for p in paths for line in layout.read_split(p)]


def ensure(data_path, depth_hint_path=None, height=None, width=None, num_workers=1, progress=True):
    """Hints for the train and val lines of the synthetic dataset in data_path (its own splits folder),
    computed where missing, at the dataset's native size unless height/width are given."""
    import synthetic
    info = synthetic.ensure(data_path, progress=progress)
    height = height or info["height"]
    width = width or info["width"]
    lines = split_files(synthetic.split_dir(data_path))
    return compute_hints(data_path, lines, depth_hint_path, height, width, num_workers, info["img_ext"],
                         progress=progress)


def main(argv=None):
    import options

    opt = options.parse("precompute_depth_hints", argv)
    dataset = opt.dataset or ("folder" if folder_layout.is_folder_layout(opt.data_path) else "kitti")
    height, width = opt.height, opt.width
    try:
        if dataset == "folder":
            given = options.given_options("precompute_depth_hints", argv)
            if not {"height", "width"} & given:
                height = width = None   # each camera's own aspect ratio, at most FOLDER_MAX_WIDTH wide
            # the dataset's own splits (made when absent) unless --split names a folder
            split = opt.split if "split" in given or opt.filenames else folder_layout.ensure_splits(opt.data_path)
            lines = folder_layout.read_split(opt.filenames) if opt.filenames else split_files(split)
        else:
            lines = layout.read_split(opt.filenames) if opt.filenames else split_files(opt.split)
        needed, done = compute_hints(opt.data_path, lines, opt.save_path, height, width,
                                     opt.num_workers, opt.img_ext, opt.overwrite, dataset=dataset)
    except layout.LayoutError as e:
        sys.exit(f"precompute_depth_hints.py: error: {e}")
    save_path = opt.save_path or layout.default_hint_root(opt.data_path)
    print(f"{needed} hints in {save_path} ({done} computed now, {needed - done} already there)")


if __name__ == "__main__":
    main()
