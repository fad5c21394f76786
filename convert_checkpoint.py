"""Write a weights folder in the original MLDA-Net / PaddleMono key layout.

    python convert_checkpoint.py --load_weights_folder logs/mlda/models/weights_19 --output_folder mlda_original

Reads either layout (this project's or the original) and writes encoder/depth/pose_encoder/pose.pdparams
with the original key names, the never-used blocks filled with fresh values, so that the earlier Paddle
code loads what this project trains.
"""
import sys

import utils  # noqa: F401  (first: silences Paddle's import-time ccache warning)
import options
options.check_before_imports("convert_checkpoint", __name__)
from networks import CheckpointError, convert_folder


def main(argv=None):
    opt = options.parse("convert_checkpoint", argv)
    try:
        names = convert_folder(opt.load_weights_folder, opt.output_folder, opt.models_to_convert)
    except CheckpointError as e:
        sys.exit(f"convert_checkpoint.py: error: {e}")
    print(f"wrote {', '.join(names)} in the original layout to {opt.output_folder}")


if __name__ == "__main__":
    main()
