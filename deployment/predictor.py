"""Depth from images with a weights folder in eager Paddle: the Python API behind predict.py and app.py.

    from deployment import Predictor
    predictor = Predictor("WEIGHTS")          # scale_factor=None: from the weights (see Predictor)
    depth = predictor.depth("photo.jpg")      # H x W at the photo's size (also PIL / numpy input);
                                              # predictor(image) is the same
    predictor.metric, predictor.scale_factor  # metres or relative depth, and the factor used
    predictor.caption                         # the line to show beside the depth: the training data and
                                              # what the numbers mean (utils/geometry/provenance.py)
    disp = predictor.disparity("photo.jpg")   # sigmoid disparity resized to the photo's size
    xyz, rgb = predictor.points("photo.jpg", camera="camera.json")  # N x 3 float32 (metres if metric),
                                              # N x 3 uint8; camera: a path, a dict, or None (EXIF, else the
                                              # training camera); depth(image, camera) rescales metric depth
                                              # by the focal ratio (focal_rescale=False: never)
    disp = predictor.predict_disp("photo.jpg")  # network-size sigmoid disparity

An exported model runs without Paddle's dynamic graph through deployment.runtime.DepthPredictor, which
has the same methods.
"""
import numpy as np
import paddle

import networks
from utils.cameras.photo import PhotoCameras, focal_factor
from utils.geometry import provenance
from utils.geometry.depth import depth_scale
from utils.io import image_io
from utils.system import setup_runtime


class Predictor:
    """Depth from one image with the networks of a weights folder (network size from its opt.json).

    predictor(image) -> float32 depth at the image's own size, `scale_factor` x disp_to_depth depth.
    `image`: a path, a PIL image or an H x W (x 3|4) array. scale_factor None: from the weights
    (utils.geometry.depth.depth_scale: metres for stereo-trained weights, relative for monocular-only ones);
    `metric` says which and `scale_note` is the line to tell the user (or None).
    """

    def __init__(self, weights_folder, scale_factor=None, batch_coupled_filter=False, device=None, refine=True,
                 ddim_steps=None, strength=None, noise_seed=None, focal_rescale=True):
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
        self.focal_rescale = focal_rescale and scale_factor is None and self.metric   # utils/cameras/photo.py
        self.provenance = provenance.of_options(self.opt, self.metric)   # what the weights were trained on
        self.caption = self.provenance.caption()

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

    def depth(self, image, camera=None):
        """float32 depth at the image's own size: scale_factor x disp_to_depth of the resized disparity; metric
        depth also x the photo's focal ratio (`camera`, else its EXIF, against the training camera) when
        focal_rescale."""
        disp, size = self.predict_disp_and_size(image)
        factor = focal_factor(image, size, camera, self.trained_camera) if self.focal_rescale else 1.0
        return image_io.disparity_to_depth(disp, size, self.scale_factor * factor, self.min_depth, self.max_depth)

    __call__ = depth

    def disparity(self, image):
        """Sigmoid disparity resized bilinearly to the image's own size, float32 (values in (0, 1))."""
        disp, size = self.predict_disp_and_size(image)
        return image_io.resize_map(disp, size)

    def points(self, image, camera=None):
        """(N x 3 float32 points, N x 3 uint8 colours) of the image's depth, back-projected with `camera`
        (a camera.json path or a dict fx fy cx cy width height; None: the photo's EXIF focal length, else the
        training camera), scaled to the image. Metres when self.metric. Raises utils.cameras.camera.CameraError
        when the camera does not fit or the EXIF is corrupt."""
        cameras = PhotoCameras(camera, self.trained_camera)
        return cameras.points(self.depth(image, camera), np.asarray(image_io.load_image(image)), photo=image)
