"""Depth from your own photos and videos.

    python predict.py --load_weights_folder WEIGHTS --color_path photo.jpg [--output_dir OUT]
    python predict.py --load_weights_folder WEIGHTS --color_path folder/ --save_png16
    python predict.py --load_weights_folder WEIGHTS --color_path drive.mp4 [--video_layout stacked]
    python predict.py --load_weights_folder WEIGHTS --color_path photo.jpg --save_ply [--camera camera.json]
    python predict.py --load_weights_folder WEIGHTS --color_path folder/ --engine ray [--num_actors N]

For each image: <stem>_disp.npy (sigmoid disparity at network size), <stem>_disp.jpeg (colour-mapped
disparity at the photo's size), <stem>_depth.npy and with --save_png16 <stem>_depth.png; see
utils/image_io.py. A video (anything OpenCV reads) is streamed frame by frame: the same files per frame
in <output_dir>/<stem>/ (<stem>_000000_disp.npy, ...) and <stem>_depth.mp4 (.avi for an .avi), the frames
beside their colour-mapped disparity at the input's fps (utils/video.py). --save_ply adds
<stem>_points.ply, the depth back-projected into a coloured point cloud with --camera camera.json (scaled
to a resized photo of the same aspect ratio; another aspect ratio is refused) or else the training
camera scaled to the photo (opt.json "camera", else KITTI's); the camera used is said once.
Depth is in metres (5.4 x disp_to_depth) for KITTI stereo-trained weights (opt.json use_stereo, or a
folder without opt.json: the original MLDA-Net layout, trained mono+stereo), in metres with factor 1
where opt.json records "metric": true (the folder dataset's stereo with its real baseline) and relative
(factor 1, said once) otherwise, as Monodepth2; --pred_depth_scale_factor F always wins. --camera_height H
(metres; KITTI 1.65) gives relative depth an approximate metric scale per photo from the road plane in its
lower part (utils/ground_plane.py; the camera as for --save_ply; refused for metric weights, videos and
with --pred_depth_scale_factor; a photo without a road plane is skipped and listed). Default output
folder: 'predictions' beside the image or video (for a folder: inside it); files of an earlier run are
replaced, and the count is said. Two inputs with the same stem (a.jpg, a.png) get the extension appended
(a_jpg_disp.npy, a_png_disp.npy). Unreadable images are reported and skipped; the exit status is non-zero
if any was. An unreadable video, an empty folder or a photo that --camera does not fit: one line, non-zero
exit, nothing written for it. --output_dir naming a file is refused. --engine ray writes the same files of
a folder's photos from a Ray Data actor pool, skipping photos whose files exist (docs/serving.md).

Python API:
    from predict import Predictor
    predictor = Predictor("WEIGHTS")          # scale_factor=None: from the weights (see above)
    depth = predictor.depth("photo.jpg")      # H x W at the photo's size (also PIL / numpy input);
                                              # predictor(image) is the same
    predictor.metric, predictor.scale_factor  # metres or relative depth, and the factor used
    disp = predictor.disparity("photo.jpg")   # sigmoid disparity resized to the photo's size
    xyz, rgb = predictor.points("photo.jpg", camera="camera.json")  # N x 3 float32 (metres if metric),
                                              # N x 3 uint8; camera: a path, a dict, or None (training camera)
    disp = predictor.predict_disp("photo.jpg")  # network-size sigmoid disparity
"""
import utils  # noqa: F401  (first import: silences Paddle's import-time ccache warning)
import sys

import numpy as np
import paddle

import networks
import options
from utils.depth import depth_scale
from utils import image_io, photo_loop, pointcloud
from utils.system import RuntimeSetupError, setup_runtime


class Predictor:
    """Depth from one image with the networks of a weights folder (network size from its opt.json).

    predictor(image) -> float32 depth at the image's own size, `scale_factor` x disp_to_depth depth.
    `image`: a path, a PIL image or an H x W (x 3|4) array. scale_factor None: from the weights
    (utils.depth.depth_scale: metres for stereo-trained weights, relative for monocular-only ones);
    `metric` says which and `scale_note` is the line to tell the user (or None).
    """

    def __init__(self, weights_folder, scale_factor=None, batch_coupled_filter=False, device=None, refine=True,
                 ddim_steps=None, strength=None, noise_seed=None):
        if device is not None:
            setup_runtime(device)
        self.opt, nets = networks.load_weights_folder(weights_folder, ("depth",), batch_coupled_filter)
        self.net = nets["depth"]
        self.height, self.width = int(self.opt.height), int(self.opt.width)
        self.min_depth, self.max_depth = float(self.opt.min_depth), float(self.opt.max_depth)
        # a diffusion head (refine.pdparams, train_refine.py) gives metric depth: used when present and `refine`
        self.refined = None
        if refine and networks.has_refine_head(weights_folder):
            self.refined = networks.RefinedDepthNet(self.net, networks.load_refine_head(weights_folder)).eval()
            cfg = self.refined.head.config
            self.refine_args = (ddim_steps or cfg["ddim_steps"], strength or cfg["strength"])
            self.noise = self.refined.noise_for(self.height, self.width,
                                                cfg["noise_seed"] if noise_seed is None else noise_seed)
        self.scale_factor, self.metric, self.scale_note = depth_scale(
            self.opt.get("use_stereo"), scale_factor, True if self.refined is not None else self.opt.get("metric"))
        self.trained_camera = self.opt.get("camera")  # recorded by the folder dataset; None: KITTI's

    @paddle.no_grad()
    def predict_disp(self, image):
        """Sigmoid disparity of scale 0, float32 H x W at the network size."""
        return self.predict_disp_and_size(image)[0]

    @paddle.no_grad()
    def predict_disp_and_size(self, image):
        img = image_io.load_image(image)
        x = paddle.to_tensor(image_io.preprocess(img, self.height, self.width))
        if self.refined is not None:  # metric depth as the sigmoid disparity disp_to_depth maps back to it
            depth = paddle.clip(self.refined(x, self.noise, *self.refine_args), self.min_depth, self.max_depth)
            disp = (1.0 / depth - 1.0 / self.max_depth) / (1.0 / self.min_depth - 1.0 / self.max_depth)
        else:
            disp = self.net.disparity(x)
        return disp.numpy()[0, 0].astype(np.float32), img.size

    def depth(self, image):
        """float32 depth at the image's own size: scale_factor x disp_to_depth of the resized disparity."""
        disp, size = self.predict_disp_and_size(image)
        return image_io.disparity_to_depth(disp, size, self.scale_factor, self.min_depth, self.max_depth)

    __call__ = depth

    def disparity(self, image):
        """Sigmoid disparity resized bilinearly to the image's own size, float32 (values in (0, 1))."""
        disp, size = self.predict_disp_and_size(image)
        return image_io.resize_map(disp, size)

    def points(self, image, camera=None):
        """(N x 3 float32 points, N x 3 uint8 colours) of the image's depth, back-projected with `camera`
        (a camera.json path or a dict fx fy cx cy width height; None: the training camera), scaled to the
        image. Metres when self.metric. Raises utils.pointcloud.CameraError when the camera does not fit."""
        image = image_io.load_image(image)
        return pointcloud.CameraChoice(camera, self.trained_camera).points(self.depth(image), np.asarray(image))


def main(argv=None):
    opt = options.parse("predict", argv)
    try:
        setup_runtime(opt.device, opt.num_threads)
    except RuntimeSetupError as e:
        sys.exit(f"predict.py: error: {e}")
    try:
        paths = photo_loop.list_inputs(opt.color_path, opt.velo_filename, opt.calib_path)
        predictor = Predictor(opt.load_weights_folder, opt.pred_depth_scale_factor, opt.batch_coupled_filter,
                              refine=opt.refine, ddim_steps=opt.ddim_steps, strength=opt.strength,
                              noise_seed=opt.noise_seed)
        photo_loop.ground_setup(opt.camera_height, predictor.metric)
        camera = photo_loop.camera_choice(opt.camera, predictor.trained_camera, opt.save_ply, opt.camera_height)
    except (photo_loop.InputError, networks.CheckpointError) as e:
        sys.exit(f"predict.py: error: {e}")
    ground = (opt.camera_height, camera) if opt.camera_height else None   # metres from the road plane
    if predictor.scale_note and not ground:
        print(predictor.scale_note)
    if opt.engine == "ray":   # the same files from a Ray Data actor pool (deployment/ray_batch.py)
        from deployment import ray_batch
        return ray_batch.main(opt, paths, camera if opt.save_ply else None)
    lines, error = photo_loop.predict_and_report(
        "predict.py", paths, predictor.predict_disp, opt.output_dir or photo_loop.default_output_dir(opt.color_path),
        predictor.scale_factor, predictor.metric, predictor.min_depth, predictor.max_depth, opt.colormap,
        opt.save_png16, opt.velo_filename, opt.calib_path, opt.eval_mono, camera if opt.save_ply else None,
        opt.video_layout, ground)
    if lines:
        print("\n".join(lines))
    if error:
        sys.exit(error)


if __name__ == "__main__":
    main()
