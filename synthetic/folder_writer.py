"""The synthetic street in the --dataset folder layout (utils/cameras/folder_layout.py), seen by a camera
unlike KITTI's.

    <out>/camera.json                    {"fx", "fy", "cx", "cy", "width", "height", "baseline"}
    <out>/seq<k>/left/<frame:06d>.png    left camera (.jpg with img_ext=".jpg")
    <out>/seq<k>/right/<frame:06d>.png   right camera, `baseline` metres to the right, rectified (same K)
    <out>/seq<k>/depth/<frame:06d>.npy   exact camera-z depth of the left image in metres, 0 = sky
    <out>/seq<k>/poses.txt               line i: the row-major 3 x 4 camera-to-world matrix of left frame i,
                                         world = the left camera at frame 0 (utils/folder_layout.py)
    <out>/folder_info.json               the settings (an existing folder made with the same ones is reused)

Default camera: 320 x 240 (4:3), fx = fy = 0.75 W = 240 px (a 67 degree horizontal field of view; KITTI's
is 0.58 W horizontally and fy = 1.92 H on 3.3:1 images), principal point at the centre, baseline 0.12 m
(KITTI: 0.54 m). No split files: the project makes them by folder_layout's rule (whole sequences for
3 or more sequences: the last is test, the one before it val).
"""
import json
import os

import numpy as np

from synthetic.raycast import render_camera
from synthetic.scene import make_scene, textures as load_textures, trajectory
from synthetic.writer import _save_image, check_image_settings, fmt, pose_matrix, reuse_existing
from utils.io.fileio import atomic_folder

FOLDER_INFO_FILE = "folder_info.json"
FORMAT_VERSION = 2   # 2: <sequence>/poses.txt


def folder_camera(width=320, height=240, focal=0.75, baseline=0.12):
    """The generator's camera.json dict: fx = fy = focal x width, centred principal point."""
    f = focal * width
    return {"fx": f, "fy": f, "cx": width / 2, "cy": height / 2, "width": int(width), "height": int(height),
            "baseline": float(baseline)}


def generate_folder(out_dir, seed=0, num_sequences=3, frames=12, width=320, height=240, focal=0.75,
                    baseline=0.12, img_ext=".png", max_depth=60.0, overwrite=False, progress=True):
    """Write the synthetic street in the folder layout to out_dir; returns its description (dict, also
    in <out>/folder_info.json, with "data_path" and "camera"). Deterministic for a seed; an existing
    folder with the same settings is reused; written atomically (utils.io.fileio.atomic_folder)."""
    from tqdm import tqdm
    if num_sequences < 1 or frames < 3:
        raise ValueError("need at least 1 sequence and 3 frames per sequence")
    check_image_settings(img_ext, width, height)
    camera = folder_camera(width, height, focal, baseline)
    settings = {"format_version": FORMAT_VERSION, "seed": int(seed), "num_sequences": int(num_sequences),
                "frames": int(frames), "img_ext": img_ext, "max_depth": float(max_depth), "camera": camera}
    out_dir = os.path.abspath(out_dir)
    existing = reuse_existing(out_dir, FOLDER_INFO_FILE, settings, overwrite)
    if existing is not None:
        return existing
    k = np.array([[camera["fx"], 0, camera["cx"]], [0, camera["fy"], camera["cy"]], [0, 0, 1]])
    with atomic_folder(out_dir) as tmp:
        rng = np.random.default_rng(seed)
        textures = load_textures()
        names = [f"seq{i + 1}" for i in range(num_sequences)]
        bar = tqdm(total=num_sequences * frames, desc="synthetic folder", unit="frame", disable=not progress)
        for name in names:
            rotations, centres = trajectory(rng, frames)
            boxes = make_scene(rng, centres[-1, 2] + max_depth, len(textures))
            for side in ("left", "right", "depth"):
                os.makedirs(os.path.join(tmp, name, side))
            for i, (rot, centre) in enumerate(zip(rotations, centres)):
                for side, offset in (("left", 0.0), ("right", baseline)):
                    image, depth = render_camera(rot, centre + rot @ np.array([offset, 0, 0]), k, width, height,
                                                 boxes, textures, max_depth)
                    _save_image(os.path.join(tmp, name, side, f"{i:06d}{img_ext}"), image, img_ext)
                    if side == "left":
                        np.save(os.path.join(tmp, name, "depth", f"{i:06d}.npy"), depth)
                bar.update(1)
            first = np.linalg.inv(pose_matrix(rotations[0], centres[0]))
            with open(os.path.join(tmp, name, "poses.txt"), "w") as f:
                f.writelines(fmt((first @ pose_matrix(r, c))[:3]) + "\n" for r, c in zip(rotations, centres))
        bar.close()
        with open(os.path.join(tmp, "camera.json"), "w") as f:
            json.dump(camera, f, indent=1)
        info = dict(settings, sequences=names)
        with open(os.path.join(tmp, FOLDER_INFO_FILE), "w") as f:
            json.dump(info, f, indent=1)
    return dict(info, data_path=out_dir)
