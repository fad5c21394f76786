"""Depth from your own photos.

    python predict.py --load_weights_folder WEIGHTS --color_path photo.jpg [--output_dir OUT]
    python predict.py --load_weights_folder WEIGHTS --color_path folder/ --save_png16

For each image: <stem>_disp.npy (sigmoid disparity at network size), <stem>_disp.jpeg (colour-mapped
disparity at the photo's size), <stem>_depth.npy (metres, x5.4 by default) and with --save_png16
<stem>_depth.png; see utils/image_io.py. Default output folder: 'predictions' beside the image (for
a folder: inside it). Two inputs with the same stem (a.jpg, a.png) get the extension appended
(a_jpg_disp.npy, a_png_disp.npy). Unreadable images are reported and skipped; the exit status is
non-zero if any was.

Python API:
    from predict import Predictor
    predictor = Predictor("WEIGHTS")
    depth = predictor("photo.jpg")            # H x W metres at the photo's size (also PIL / numpy input)
    disp = predictor.predict_disp("photo.jpg")  # network-size sigmoid disparity
"""
import utils  # noqa: F401  (first import: silences Paddle's import-time ccache warning)
import sys

import numpy as np
import paddle

import networks
import options
from utils.depth import STEREO_SCALE_FACTOR
from utils import image_io, photo_loop
from utils.system import select_device, set_cpu_threads


class Predictor:
    """Depth from one image with the networks of a weights folder (network size from its opt.json).

    predictor(image) -> float32 depth at the image's own size, `scale_factor` x disp_to_depth depth
    (metres for stereo-trained weights). `image`: a path, a PIL image or an H x W (x 3|4) array.
    """

    def __init__(self, weights_folder, scale_factor=STEREO_SCALE_FACTOR, batch_coupled_filter=False,
                 device=None):
        if device is not None:
            select_device(device)
        self.opt = networks.read_opt(weights_folder)
        self.height, self.width = int(self.opt.height), int(self.opt.width)
        self.min_depth, self.max_depth = float(self.opt.min_depth), float(self.opt.max_depth)
        self.scale_factor = scale_factor
        models = networks.load_models(weights_folder, ("encoder", "depth"), batch_coupled_filter)
        self.encoder, self.depth = models["encoder"], models["depth"]

    @paddle.no_grad()
    def predict_disp(self, image):
        """Sigmoid disparity ("disp", 0), float32 H x W at the network size."""
        return self.predict_disp_and_size(image)[0]

    @paddle.no_grad()
    def predict_disp_and_size(self, image):
        img = image_io.load_image(image)
        x = paddle.to_tensor(image_io.preprocess(img, self.height, self.width))
        disp = self.depth(self.encoder(x))[("disp", 0)]
        return disp.numpy()[0, 0].astype(np.float32), img.size

    def __call__(self, image):
        disp, size = self.predict_disp_and_size(image)
        return image_io.disparity_to_depth(disp, size, self.scale_factor, self.min_depth, self.max_depth)


def main(argv=None):
    opt = options.parse("predict", argv)
    select_device(opt.device)
    if opt.num_threads:
        set_cpu_threads(opt.num_threads)
    try:
        predictor = Predictor(opt.load_weights_folder, opt.pred_depth_scale_factor, opt.batch_coupled_filter)
    except networks.CheckpointError as e:
        sys.exit(f"predict.py: error: {e}")
    photo_loop.run("predict.py", opt, predictor.predict_disp, predictor.min_depth, predictor.max_depth)


if __name__ == "__main__":
    main()
