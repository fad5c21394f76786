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
import os
import sys

import numpy as np
import paddle
from tqdm import tqdm

import networks
import options
from networks.layers import STEREO_SCALE_FACTOR, disp_to_depth
from utils import image_io
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


def default_output_dir(color_path):
    folder = color_path if os.path.isdir(color_path) else os.path.dirname(os.path.abspath(color_path))
    return os.path.join(folder, "predictions")


def velodyne_errors(predictor, disp, image_path, calib_path, velo_filename, median_scaling):
    """The seven metrics of the prediction against the velodyne scan, exactly as test.py computes
    them (utils.metrics.evaluate_depth on the velodyne-distance ground truth of spec section 8)."""
    from utils.kitti_utils import generate_depth_map
    from utils.metrics import evaluate_depth

    cam = 3 if "image_03" in os.path.abspath(image_path) else 2
    gt = generate_depth_map(calib_path, velo_filename, cam=cam, vel_depth=True)
    scaled_disp, _ = disp_to_depth(disp, predictor.min_depth, predictor.max_depth)
    mode = "median" if median_scaling else "stereo"
    return evaluate_depth(gt, scaled_disp, mode=mode, stereo_factor=predictor.scale_factor)


def main(argv=None):
    opt = options.parse("predict", argv)
    select_device(opt.device)
    if opt.num_threads:
        set_cpu_threads(opt.num_threads)
    try:
        paths = image_io.list_images(opt.color_path)
        predictor = Predictor(opt.load_weights_folder, opt.pred_depth_scale_factor, opt.batch_coupled_filter)
    except (image_io.ImageLoadError, networks.CheckpointError) as e:
        sys.exit(f"predict.py: error: {e}")
    if opt.velo_filename:
        for f in (opt.velo_filename, os.path.join(opt.calib_path, "calib_cam_to_cam.txt"),
                  os.path.join(opt.calib_path, "calib_velo_to_cam.txt")):
            if not os.path.isfile(f):
                sys.exit(f"predict.py: error: {f} not found (--velo_filename / --calib_path)")
    output_dir = opt.output_dir or default_output_dir(opt.color_path)
    failed = []
    for path, stem in tqdm(list(zip(paths, image_io.output_stems(paths))), desc="predict", unit="image",
                           disable=len(paths) == 1):
        try:
            disp, size = predictor.predict_disp_and_size(path)
        except image_io.ImageLoadError as e:
            failed.append(str(e))
            tqdm.write(f"skipped {e}", file=sys.stderr)
            continue
        image_io.write_prediction(output_dir, stem, disp, size, opt.pred_depth_scale_factor, opt.colormap,
                                  opt.save_png16, predictor.min_depth, predictor.max_depth)
        if opt.velo_filename:
            errors, ratio = velodyne_errors(predictor, disp, path, opt.calib_path, opt.velo_filename,
                                            opt.eval_mono)
            names = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
            print("  " + " | ".join(f"{n:>8}" for n in names))
            print("  " + " | ".join(f"{v:8.3f}" for v in errors))
            print(f"  scale: {'median ratio' if opt.eval_mono else 'fixed factor'} {ratio:.3f}")
    done = len(paths) - len(failed)
    print(f"{done} of {len(paths)} image(s) written to {output_dir}")
    if failed:
        sys.exit("predict.py: error: could not read " + "; ".join(failed))


if __name__ == "__main__":
    main()
