"""python -m synthetic --out data/synthetic_kitti [--drives N --frames N --width W --height H ...]
(options: options.py's synthetic group)."""
import sys

from synthetic.writer import generate, split_dir


def main(argv=None):
    import options   # only the command line reads options; the library stays free of it

    opt = options.parse("synthetic", argv)
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
