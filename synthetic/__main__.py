"""python -m synthetic --out data/synthetic_kitti [--drives N --frames N --width W --height H ...]
python -m synthetic --layout folder --out data/synth_folder   (the --dataset folder layout, 4:3 camera)
(options: options.py's synthetic group)."""
import sys

from synthetic.folder_writer import generate_folder
from synthetic.writer import generate, split_dir


def main(argv=None):
    import options   # only the command line reads options; the library stays free of it

    opt = options.parse("synthetic", argv)
    if opt.layout == "folder":
        given = options.given_options("synthetic", argv)
        try:   # the folder layout's own default camera: 320 x 240 (4:3)
            info = generate_folder(opt.out, seed=opt.seed, num_sequences=opt.drives, frames=opt.frames,
                                   width=opt.width if "width" in given else 320,
                                   height=opt.height if "height" in given else 240,
                                   img_ext=opt.img_ext, overwrite=opt.overwrite)
        except (ValueError, FileExistsError) as e:
            sys.exit(f"synthetic.py: error: {e}")
        cam = info["camera"]
        print(f"synthetic folder layout in {info['data_path']} ({len(info['sequences'])} sequences x "
              f"{info['frames']} frames, {cam['width']} x {cam['height']}, fx {cam['fx']:g}, baseline "
              f"{cam['baseline']:g} m); train with: python train.py --dataset folder --data_path {info['data_path']}")
        return
    try:
        info = generate(opt.out, seed=opt.seed, num_drives=opt.drives, frames_per_drive=opt.frames,
                        width=opt.width, height=opt.height, img_ext=opt.img_ext,
                        azimuth_step=opt.azimuth_step, overwrite=opt.overwrite)
    except (ValueError, FileExistsError) as e:
        sys.exit(f"synthetic.py: error: {e}")
    print(f"synthetic KITTI in {info['data_path']} ({len(info['drives'])} drives x {info['frames_per_drive']} frames, "
          f"{info['width']} x {info['height']}); splits in {split_dir(info['data_path'])}")


if __name__ == "__main__":
    main()
