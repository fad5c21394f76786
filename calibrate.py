"""From any camera to the folder layout's camera.json (docs/own_camera.md).

    # one camera: chessboard photos -> ROOT/camera.json (K, distortion, RMS reprojection error)
    python calibrate.py --images chessboard/ --board 9x6 --square 0.025 --out ROOT/camera.json
    # a stereo rig: photos of the board by both cameras, paired by file name -> the RECTIFIED cameras and baseline
    python calibrate.py --images left/ --right right/ --board 9x6 --square 0.025 --out ROOT/camera.json
    # frames for training: undistorted (and rectified) into ROOT/<sequence>/left/ (and right/)
    python calibrate.py --rectify --calibration ROOT/camera.json --left raw/left --right raw/right --out ROOT/drive1
    # a calibration you already have
    python calibrate.py --import calib_cam_to_cam.txt --format kitti --camera_id 2 --out ROOT/camera.json
    python calibrate.py --import camera_info.yaml --out ROOT/camera.json          # format from the file

OpenCV does the work (findChessboardCorners + cornerSubPix, calibrateCamera, stereoCalibrate, stereoRectify,
initUndistortRectifyMap: utils/cameras/). camera.json describes the images as --rectify writes them; its
"calibration" record says how (utils/cameras/record.py); a stereo calibration saves its rectification maps
beside it (<name>_maps.npz). Photos where the board is not found are listed and left out; fewer than
utils.cameras.calibration.MIN_VIEWS usable views, unpaired photos, or input that cannot be read end with one
line and nothing written. No Paddle is imported.
"""
import utils  # noqa: F401  (first import: the project's warning filters)
import os
import sys

import options


def outputs(record, out):
    """Write camera.json (and, first, the rectification maps of a stereo record that remaps images, beside it
    as <name>_maps.npz); returns the paths written."""
    from utils.cameras import rectify
    from utils.cameras.record import remaps, write_camera

    written, block = [], record["calibration"]
    if "right" in block and (remaps(block["left"]) or remaps(block["right"])):
        maps_path = os.path.splitext(out)[0] + "_maps.npz"
        record["calibration"]["maps"] = os.path.basename(maps_path)
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        rectify.save_maps(maps_path, rectify.build_maps(record), record["calibration"]["image_size"])
        written.append(maps_path)
    write_camera(out, record)
    return [out] + written


def next_step(record, out):
    """What to run next: rectify when the stored camera is not the camera's own, else train."""
    from utils.cameras.record import remaps

    block = record["calibration"]
    root = os.path.dirname(os.path.abspath(out))
    if any(remaps(block[s]) for s in ("left", "right") if s in block):
        right = " --right RIGHT_FRAMES" if "right" in block else ""
        return (f"camera.json describes the frames undistorted{' and rectified' if right else ''}; write them with: "
                f"python calibrate.py --rectify --calibration {out} --left LEFT_FRAMES{right} --out {root}/<sequence>")
    sides = "left/ (and the right camera's in right/, same names)" if "right" in block else "left/"
    return f"the frames need no remapping: put them in {root}/<sequence>/{sides} and train with --dataset folder"


def list_photos(left, right=None):
    """(left images, right images or None) of two folders, natural-sorted; CalibrationError for an empty one."""
    from utils.io import image_io
    from utils.cameras.record import CalibrationError

    try:
        return image_io.list_images(left), image_io.list_images(right) if right else None
    except image_io.ImageLoadError as e:
        raise CalibrationError(str(e)) from None


def calibrate(opt):
    from utils.cameras import calibration
    from utils.cameras.record import CalibrationError, describe, describe_distortion, parse_board

    board = parse_board(opt.board)
    left_paths, right_paths = list_photos(opt.images, opt.right)
    if right_paths:   # pairing is checked before the slow corner search
        pairs = calibration.pair_names([os.path.basename(p) for p in left_paths],
                                       [os.path.basename(p) for p in right_paths])
    left = calibration.detect(left_paths, board, "corners (left)" if right_paths else "corners")
    right = calibration.detect(right_paths, board, "corners (right)") if right_paths else None
    for det, paths in ((left, left_paths), (right, right_paths)):
        if det is not None and not det.corners:
            raise CalibrationError(f"no chessboard of {board[0]} x {board[1]} inner corners found in any of the "
                                   f"{len(paths)} photo(s) in {det.folder}: check --board (inner corners COLSxROWS, "
                                   "e.g. 9x6 for a board of 10 x 7 squares) and that the whole board is in view")
        if det is not None and det.skipped:
            print(f"left out {len(det.skipped)} of {len(paths)} photo(s) in {det.folder}: "
                  + ", ".join(f"{n} ({why})" for n, why in det.skipped))
    if right is None:
        record = calibration.mono_record(left, board, opt.square or 1.0)
    else:
        record = calibration.stereo_record(left, right, pairs, board, opt.square, opt.rectify_alpha)
    block = record["calibration"]
    if right is None:
        worst = max(block["view_rms_px"], key=block["view_rms_px"].get)
        print(f"calibrated on {block['views']} view(s): {describe(record)}")
        print(f"distortion: {describe_distortion(block['left']['distortion'])}")
        print(f"RMS reprojection error {block['rms_px']:.3f} px (worst view {worst}: "
              f"{block['view_rms_px'][worst]:.3f} px)")
    else:
        rows = block["rectified_row_error_px"]
        print(f"stereo calibration on {block['views']} pair(s): RMS reprojection error {block['rms_px']:.3f} px "
              f"(left {block['left_rms_px']:.3f}, right {block['right_rms_px']:.3f} on their own views); "
              f"T = {[round(v, 4) for v in block['T']]} m")
        print(f"rectified cameras: {describe(record)}; rectified corner rows differ by {rows[0]:.3f} px on average "
              f"(max {rows[1]:.3f})")
    if block["rms_px"] > 1.0:
        print("the RMS error is above 1 px: check for blurred photos, a board that is not flat, or a wrong --board")
    out = outputs(record, opt.out)
    print(f"wrote {' and '.join(out)}")
    print(next_step(record, opt.out))


def import_file(opt):
    from utils.cameras import imports
    from utils.cameras.record import describe, parse_pair

    record, notes = imports.import_calibration(opt.import_file, opt.format, opt.camera_id, opt.right,
                                               parse_pair(opt.image_size) if opt.image_size else None,
                                               opt.rectify_alpha)
    for note in notes:
        print(note)
    print(f"camera: {describe(record)}")
    print(f"wrote {' and '.join(outputs(record, opt.out))}")
    print(next_step(record, opt.out))


def rectify(opt):
    from utils.cameras import rectify as rectification
    from utils.cameras.record import describe, read_record

    record = read_record(opt.calibration)
    left, right = list_photos(opt.left, opt.right)
    maps = rectification.maps_of(record, os.path.dirname(os.path.abspath(opt.calibration)))
    count, camera = rectification.rectify_sequence(record, maps, left, right, opt.out, opt.overwrite, opt.calibration)
    sides = "left/ and right/" if right else "left/"
    root = os.path.dirname(os.path.abspath(opt.out))
    print(f"wrote {count} frame(s) to {sides} of {opt.out} and its camera.json: {describe(camera)}")
    stereo = "--frame_ids 0 -1 1 --use_stereo" if right else "--frame_ids 0 -1 1 --no-use_stereo"
    print(f"train: python train.py --dataset folder --data_path {root} {stereo} --model_name mine")


def main(argv=None):
    opt = options.parse("calibrate", argv)
    from utils.cameras.record import CalibrationError

    try:
        (rectify if opt.rectify else import_file if opt.import_file else calibrate)(opt)
    except CalibrationError as e:
        sys.exit(f"calibrate.py: error: {e}")


if __name__ == "__main__":
    main()
