"""Writes the rendered drives in exactly KITTI raw's layout, plus split files; generate() / ensure()."""
import json
import os
from datetime import datetime, timedelta

import numpy as np
from PIL import Image

from synthetic.raycast import render_camera, render_velodyne
from synthetic.scene import (BASELINE, CAM2_OFFSET, CAM3_OFFSET, CAM_OFFSETS, intrinsics, make_calib, make_scene,
                             textures as load_textures, trajectory)
from utils.io.fileio import atomic_folder
from utils.sensors.oxts import OXTS_FIELDS, oxts_path, timestamps_path

FORMAT_VERSION = 3   # 2: oxts/ (GPS/IMU records and timestamps); 3: oxts positions exact, IMU calibration matches them
FRAME_PERIOD = 0.1036  # seconds between frames (KITTI raw: ~10 Hz; not round, so that dt matters)
GEO_ORIGIN = (49.0, 8.4, 115.0)   # lat, lon (degrees), altitude (m) of world (0, 0, 0): Karlsruhe, as KITTI
EARTH_RADIUS = 6378137.0
VEHICLE_TO_CAMERA = np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]], np.float64)   # x fwd, y left, z up -> camera axes
SPLIT_DIR = "splits"
INFO_FILE = "synthetic_info.json"


def drive_name(date, drive):
    return f"{date}_drive_{drive:04d}_sync"


def split_dir(out_dir):
    """Folder holding train_files.txt / val_files.txt / test_files.txt of a generated dataset."""
    return os.path.join(out_dir, SPLIT_DIR)


def fmt(values):
    return " ".join(f"{v:.12e}" for v in np.ravel(values))


def _write_calib(date_dir, calib):
    w, h = calib["width"], calib["height"]
    lines = ["calib_time: 01-Jan-2000 00:00:00", "corner_dist: 9.950000e-02"]
    for cam in range(4):
        p = calib["P_rect"][cam]
        r = calib["R_rect"] if cam == 0 else np.eye(3)
        lines += [f"S_0{cam}: {fmt([w, h])}", f"K_0{cam}: {fmt(p[:, :3])}", f"D_0{cam}: {fmt(np.zeros(5))}",
                  f"R_0{cam}: {fmt(np.eye(3))}", f"T_0{cam}: {fmt([-CAM_OFFSETS[cam], 0, 0])}",
                  f"S_rect_0{cam}: {fmt([w, h])}", f"R_rect_0{cam}: {fmt(r)}", f"P_rect_0{cam}: {fmt(p)}"]
    with open(os.path.join(date_dir, "calib_cam_to_cam.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(date_dir, "calib_velo_to_cam.txt"), "w") as f:
        f.write(f"calib_time: 01-Jan-2000 00:00:00\nR: {fmt(calib['R_velo'])}\nT: {fmt(calib['T_velo'])}\n"
                f"delta_f: {fmt([0, 0])}\ndelta_c: {fmt([0, 0])}\n")
    # the oxts records describe the vehicle frame (_oxts_records): rectified camera 0 with the axes x forward,
    # y left, z up, so X_rect = VEHICLE_TO_CAMERA X_imu; with X_rect = R_rect (R_velo X_velo + T_velo):
    # X_velo = R_velo^T R_rect^T VEHICLE_TO_CAMERA X_imu - R_velo^T T_velo
    r_imu = calib["R_velo"].T @ calib["R_rect"].T @ VEHICLE_TO_CAMERA
    with open(os.path.join(date_dir, "calib_imu_to_velo.txt"), "w") as f:
        f.write(f"calib_time: 01-Jan-2000 00:00:00\nR: {fmt(r_imu)}\nT: {fmt(-calib['R_velo'].T @ calib['T_velo'])}\n")


def pose_matrix(rotation, centre):
    """4 x 4 [R | c] camera-to-world matrix of a camera with orientation R and centre c."""
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = rotation, centre
    return pose


def _oxts_records(rotations, centres, velocities):
    """KITTI's 30 oxts values (utils.sensors.oxts.OXTS_FIELDS) of every frame, from the camera-0 poses, centres
    and exact world velocities (metres per frame; world = camera 0 at frame 0, x right, y down,
    z forward). The vehicle (the IMU of calib_imu_to_velo.txt) is camera 0: vehicle frame x forward =
    camera z, y left = -camera x, z up = -camera y; the drive starts heading north (world z = north,
    x = east, -y = up). Positions are the exact centres (lat/lon by the inverse of the devkit's
    Mercator projection, scale cos(lat0)); velocities the exact ones (their norm integrates to the path
    length); angles, accelerations (gravity included in az/au, as an IMU measures) and rates follow."""
    rot = np.asarray(rotations)                                   # F x 3 x 3, world_from_camera
    v_world = np.asarray(velocities) / FRAME_PERIOD               # m/s
    v_cam = np.einsum("fji,fj->fi", rot, v_world)                 # R^T v
    to_vehicle = VEHICLE_TO_CAMERA.T                              # camera -> x fwd, y left, z up
    v_veh = v_cam @ to_vehicle.T
    accel = np.gradient(v_world, FRAME_PERIOD, axis=0) if len(rot) > 1 else np.zeros_like(v_world)
    a_veh = np.einsum("fji,fj->fi", rot, accel) @ to_vehicle.T + np.array([0, 0, 9.81])
    forward = rot[:, :, 2]                                        # camera z axis in the world
    yaw = np.arctan2(forward[:, 2], forward[:, 0])                # 0 = east, counter-clockwise
    pitch = np.arcsin(np.clip(forward[:, 1], -1, 1))              # positive = front down (y is down)
    rates = [np.gradient(np.unwrap(a), FRAME_PERIOD) if len(a) > 1 else np.zeros_like(a) for a in (pitch, yaw)]
    lat0, lon0, alt0 = GEO_ORIGIN
    mercator = np.cos(np.radians(lat0)) * EARTH_RADIUS            # the devkit's scale x earth radius
    north0 = mercator * np.log(np.tan(np.radians(90 + lat0) / 2))
    records = []
    for i in range(len(rot)):
        east, north, up = centres[i][0], centres[i][2], -centres[i][1]
        lat = 2 * np.degrees(np.arctan(np.exp((north0 + north) / mercator))) - 90
        lon = lon0 + np.degrees(east / mercator)
        records.append([lat, lon, alt0 + up, 0.0, pitch[i], yaw[i], v_world[i, 2], v_world[i, 0], *v_veh[i],
                        *a_veh[i], *a_veh[i], 0.0, rates[0][i], rates[1][i], 0.0, rates[0][i], rates[1][i], 0.05,
                        0.02, 4, 12, 4, 4, 6])
    return records


def _write_oxts(drive_dir, date, drive, rotations, centres, velocities):
    """<drive>/oxts/data/<frame>.txt (one line of 30 values, KITTI's format) and oxts/timestamps.txt
    (frame i at the drive's start + i x FRAME_PERIOD); dataformat.txt names the fields."""
    os.makedirs(os.path.dirname(oxts_path(drive_dir, 0)), exist_ok=True)
    for i, values in enumerate(_oxts_records(rotations, centres, velocities)):
        text = " ".join(f"{v:d}" if isinstance(v, int) else f"{float(v):.15g}" for v in values)
        with open(oxts_path(drive_dir, i), "w") as f:
            f.write(text + "\n")
    year, month, day = (int(x) for x in date.split("_"))
    start = datetime(year, month, day, 12, drive, 0)   # noon, minute = drive number
    lines = []
    for i in range(len(rotations)):
        ns = round(i * FRAME_PERIOD * 1e9)   # integer nanoseconds: exact decimals in the file
        whole = (start + timedelta(seconds=ns // 10 ** 9)).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{whole}.{ns % 10 ** 9:09d}\n")
    with open(timestamps_path(drive_dir), "w") as f:
        f.write("".join(lines))
    with open(os.path.join(drive_dir, "oxts", "dataformat.txt"), "w") as f:
        f.write("".join(f"{name}\n" for name in OXTS_FIELDS))


def _save_image(path, image, img_ext):
    img = Image.fromarray(image)
    if img_ext == ".png":
        img.save(path, compress_level=1)
    else:
        img.save(path, quality=92)


def _write_drive(root, date, drive, calib, rotations, centres, velocities, boxes, textures, args, progress):
    name = drive_name(date, drive)
    ddir = os.path.join(root, date, name)
    folders = {key: os.path.join(ddir, *sub) for key, sub in {
        "img2": ("image_02", "data"), "img3": ("image_03", "data"), "velo": ("velodyne_points", "data"),
        "d2": ("depth", "image_02"), "d3": ("depth", "image_03"),
        "png": ("proj_depth", "groundtruth", "image_02")}.items()}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    w, h = calib["width"], calib["height"]
    k = intrinsics(w, h)
    # camera 0 rectified -> velodyne: X_rect = R_rect (R_velo X_velo + T_velo)
    rect_from_velo = np.eye(4)
    rect_from_velo[:3, :3] = calib["R_rect"] @ calib["R_velo"]
    rect_from_velo[:3, 3] = calib["R_rect"] @ calib["T_velo"]
    poses = []
    for i, (rot, centre) in enumerate(zip(rotations, centres)):
        world_from_rect = pose_matrix(rot, centre)
        frame = f"{i:010d}"
        for cam, offset, img_key, depth_key in ((2, CAM2_OFFSET, "img2", "d2"), (3, CAM3_OFFSET, "img3", "d3")):
            cam_centre = centre + rot @ np.array([offset, 0, 0])
            image, depth = render_camera(rot, cam_centre, k, w, h, boxes, textures, args["max_depth"])
            _save_image(os.path.join(folders[img_key], frame + args["img_ext"]), image, args["img_ext"])
            np.save(os.path.join(folders[depth_key], frame + ".npy"), depth)
            if cam == 2:
                png = np.where(depth * 256 < 65535, np.round(depth * 256), 0).astype(np.uint16)
                Image.fromarray(png).save(os.path.join(folders["png"], frame + ".png"))
                poses.append(pose_matrix(rot, cam_centre))
        scan = render_velodyne(world_from_rect @ rect_from_velo, boxes, args["azimuth_step"])
        scan.tofile(os.path.join(folders["velo"], frame + ".bin"))
        progress.update(1)
    _write_oxts(ddir, date, drive, rotations, centres, velocities)
    first_inv = np.linalg.inv(poses[0])
    os.makedirs(os.path.join(root, "poses"), exist_ok=True)
    with open(os.path.join(root, "poses", name + ".txt"), "w") as f:
        for pose in poses:
            f.write(fmt((first_inv @ pose)[:3]) + "\n")
    return name


def _write_splits(root, drives, frames):
    """Standard split files; which frames go where: see the package docstring (synthetic/__init__.py)."""
    train, val = [], []
    for folder in drives[:-1]:
        for i in range(1, frames - 1):
            for side in "lr":
                (val if i % 5 == 0 else train).append(f"{folder} {i} {side}")
    test = [f"{drives[-1]} {i:010d} l" for i in range(frames)]
    order = np.random.default_rng(0).permutation(len(train))   # Monodepth2's splits are shuffled
    os.makedirs(split_dir(root), exist_ok=True)
    for name, lines in (("train_files.txt", [train[i] for i in order]), ("val_files.txt", val), ("test_files.txt", test)):
        if not lines:   # e.g. val with fewer than 6 frames per drive: no file rather than an empty one
            continue
        with open(os.path.join(split_dir(root), name), "w") as f:
            f.write("\n".join(lines) + "\n")


def check_image_settings(img_ext, width, height):
    """ValueError unless img_ext is .jpg or .png and the images are at least 16 x 16 (both layouts)."""
    if img_ext not in (".jpg", ".png"):
        raise ValueError(f"img_ext must be .jpg or .png, not {img_ext!r}")
    if width < 16 or height < 16:
        raise ValueError(f"image size {width} x {height} is too small (16 x 16 at least)")


def reuse_existing(out_dir, info_file, settings, overwrite):
    """The info dict of a dataset already in `out_dir` made with exactly `settings` (so several callers
    share one), or None when `out_dir` is empty, absent or to be overwritten; FileExistsError for a
    non-empty folder made otherwise."""
    if not (os.path.exists(out_dir) and os.listdir(out_dir)) or overwrite:
        return None
    info_path = os.path.join(out_dir, info_file)
    if os.path.isfile(info_path):
        with open(info_path) as f:
            info = json.load(f)
        if all(info.get(key) == value for key, value in settings.items()):
            return dict(info, data_path=out_dir)
    raise FileExistsError(f"{out_dir} already exists and was not generated with these settings; "
                          "choose another folder or pass overwrite=True (--overwrite)")


def generate(out_dir, seed=0, num_drives=3, frames_per_drive=24, width=621, height=188, img_ext=".jpg",
             azimuth_step=0.4, max_depth=100.0, overwrite=False, progress=True):
    """Write a synthetic KITTI raw dataset to out_dir and return its description (dict).

    Deterministic for a seed. num_drives >= 2 (the last drive is the test drive), frames_per_drive >= 3.
    If out_dir already holds a dataset generated with the same settings it is reused as is; other
    contents make it an error unless overwrite=True. The folder appears atomically (built beside it,
    then renamed), so an interrupted run leaves nothing half-written.
    """
    from tqdm import tqdm
    if num_drives < 2 or frames_per_drive < 3:
        raise ValueError("need at least 2 drives (the last one is the test drive) and 3 frames per drive")
    check_image_settings(img_ext, width, height)
    settings = {"format_version": FORMAT_VERSION, "seed": int(seed), "num_drives": int(num_drives),
                "frames_per_drive": int(frames_per_drive), "width": int(width), "height": int(height),
                "img_ext": img_ext, "azimuth_step": float(azimuth_step), "max_depth": float(max_depth)}
    out_dir = os.path.abspath(out_dir)
    existing = reuse_existing(out_dir, INFO_FILE, settings, overwrite)
    if existing is not None:
        return existing
    with atomic_folder(out_dir) as tmp:   # built beside out_dir, renamed onto it when complete
        rng = np.random.default_rng(seed)
        textures = load_textures()
        dates = ["2000_01_01", "2000_01_02"]
        calibs = {date: make_calib(rng, width, height) for date in dates}
        for date in dates:
            os.makedirs(os.path.join(tmp, date))
            _write_calib(os.path.join(tmp, date), calibs[date])
        drives = []
        bar = tqdm(total=num_drives * frames_per_drive, desc="synthetic KITTI", unit="frame", disable=not progress)
        for d in range(num_drives):
            date = dates[d % 2]
            rotations, centres, velocities = trajectory(rng, frames_per_drive, velocities=True)
            boxes = make_scene(rng, centres[-1, 2] + max_depth, len(textures))
            name = _write_drive(tmp, date, d + 1, calibs[date], rotations, centres, velocities, boxes, textures,
                                settings, bar)
            drives.append(f"{date}/{name}")
        bar.close()
        _write_splits(tmp, drives, frames_per_drive)
        k = intrinsics(width, height)
        info = dict(settings, drives=drives, split_dir=SPLIT_DIR, fx=float(k[0, 0]), fy=float(k[1, 1]),
                    baseline=BASELINE)
        with open(os.path.join(tmp, INFO_FILE), "w") as f:
            json.dump(info, f, indent=1)
    info["data_path"] = out_dir
    return info


def ensure(out_dir, progress=True, **settings):
    """The synthetic dataset in out_dir: reused if one is there (whatever its settings), else generated
    with `settings` (generate's keywords; defaults = the quick-start subset). Returns its info dict."""
    info_path = os.path.join(out_dir, INFO_FILE)
    if os.path.isfile(info_path):
        with open(info_path) as f:
            info = json.load(f)
        info["data_path"] = os.path.abspath(out_dir)
        return info
    return generate(out_dir, progress=progress, **settings)

