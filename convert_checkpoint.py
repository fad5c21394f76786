"""Write a weights folder in the original MLDA-Net / PaddleMono key layout.

    python convert_checkpoint.py --load_weights_folder logs/mlda/models/weights_19 --output_folder mlda_original

Reads either layout (this project's or the original) and writes encoder/depth/pose_encoder/pose.pdparams
with the original key names, the never-used blocks filled with fresh values, so that the earlier Paddle
code loads what this project trains.
"""
import os
import sys

import utils  # noqa: F401  (first: silences Paddle's import-time ccache warning)
import options
from networks import MODEL_NAMES, CheckpointError, load_models, read_opt, save_models


def convert(src, dst, names=None):
    """Convert the networks `names` (default: those present) of weights folder `src` into `dst`."""
    names = names or [n for n in MODEL_NAMES if os.path.isfile(os.path.join(src, f"{n}.pdparams"))]
    if not names:
        raise CheckpointError(f"{src} holds none of {', '.join(n + '.pdparams' for n in MODEL_NAMES)}")
    models = load_models(src, names)  # everything is read and checked before anything is written
    save_models(dst, models, opt=read_opt(src), original_layout=True)
    return names


def main(argv=None):
    opt = options.parse("convert_checkpoint", argv)
    try:
        names = convert(opt.load_weights_folder, opt.output_folder, opt.models_to_convert)
    except CheckpointError as e:
        sys.exit(f"convert_checkpoint.py: error: {e}")
    print(f"wrote {', '.join(names)} in the original layout to {opt.output_folder}")


if __name__ == "__main__":
    main()
