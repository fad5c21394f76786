"""Depth from images with a weights folder: the Python API behind predict.py and app.py.

    from deployment import Predictor
    predictor = Predictor("WEIGHTS")          # scale_factor=None: from the weights (see Predictor)
                                              # compiled (deployment/compiled.py) unless eager=True
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

By default the network runs compiled: exported once per weights folder and input size into a cache
(deployment/compiled.py; $MLDA_CACHE_DIR, else ~/.cache/mlda-net) and run on the fastest backend installed
(ONNX Runtime, else Paddle Inference with oneDNN), agreeing with the eager network to about 1e-4
(tests/test_compiled.py); the first build's time, or the use of the cache, is said in one line (`log`).
eager=True runs Paddle's dynamic graph instead; so does a network whose export fails (said in one line).
An exported model runs without Paddle through deployment.runtime.DepthPredictor, which has the same methods.
"""
import os

import numpy as np
import paddle

import networks
from deployment.compiled import CompileSpec, backends, compile_network
from deployment.config import DeployError
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

    Compiled unless `eager`: `backend` None takes the fastest installed (deployment.compiled.backends), or
    "onnxruntime" / "paddle"; `num_threads` its CPU threads (0: every core); `log(line)` is given the build
    or cache line once (`compile_note`; None: keep quiet). `compiled` is the DepthPredictor run and `backend`
    its backend (both None when eager); `refined` the diffusion head in use (None: MLDA-Net alone).
    """

    def __init__(self, weights_folder, scale_factor=None, batch_coupled_filter=False, device=None, refine=True,
                 ddim_steps=None, strength=None, noise_seed=None, focal_rescale=True, eager=False, backend=None,
                 num_threads=0, log=print):
        if device is not None:
            setup_runtime(device)
        if not os.path.isdir(weights_folder):
            raise networks.CheckpointError(f"weights folder {weights_folder} does not exist")
        self.opt = networks.read_opt(weights_folder)
        self.height, self.width = int(self.opt.height), int(self.opt.width)
        self.min_depth, self.max_depth = float(self.opt.min_depth), float(self.opt.max_depth)
        # a diffusion head (refine.pdparams, train_refine.py) gives metric depth: used when present and `refine`
        head = refine and networks.has_refine_head(weights_folder)
        # compiled: DepthPredictor of the cached export; eager: the networks (also when compiling failed)
        self.compiled, self.backend, self.compile_note = None, None, None
        if not eager:
            self._compile(weights_folder, batch_coupled_filter, head, backend, num_threads,
                          (ddim_steps, strength, noise_seed))
            if log and self.compile_note:
                log(self.compile_note)
        self.net = self.refined = None
        if self.compiled is not None:
            self.refined = self.compiled.refine   # the head's step programs and their host loop, or None
        else:
            self._build_eager(weights_folder, batch_coupled_filter, head, ddim_steps, strength, noise_seed)
        self.scale_factor, self.metric, self.scale_note = depth_scale(
            self.opt.get("use_stereo"), scale_factor, True if head else self.opt.get("metric"))
        self.trained_camera = self.opt.get("camera")  # recorded by the folder dataset; None: KITTI's
        self.focal_rescale = focal_rescale and scale_factor is None and self.metric   # utils/cameras/photo.py
        self.provenance = provenance.of_options(self.opt, self.metric)   # what the weights were trained on
        self.caption = self.provenance.caption()

    def _compile(self, weights_folder, batch_coupled_filter, head, backend, num_threads, refine_args):
        """self.compiled from the first backend that compiles (deployment/compiled.py); when none does, the
        note says why and the network runs eagerly."""
        device = "gpu" if paddle.get_device().startswith("gpu") else "cpu"
        failed = []
        for name in [backend] if backend else backends(device):
            spec = CompileSpec(self.height, self.width, bool(batch_coupled_filter), bool(head), name)
            try:
                result = compile_network(weights_folder, spec, device, num_threads, *refine_args)
            except DeployError as e:
                failed.append(f"{name}: {e}")
                continue
            self.compiled, self.backend, self.compile_note = result.predictor, name, result.note
            return
        self.compile_note = f"could not compile the network ({'; '.join(failed)}); running it eagerly"

    def _build_eager(self, weights_folder, batch_coupled_filter, head, ddim_steps, strength, noise_seed):
        self.opt, nets = networks.load_weights_folder(weights_folder, ("depth",), batch_coupled_filter)
        self.net = nets["depth"]
        if head:
            self.refined = networks.RefinedDepthNet(self.net, networks.load_refine_head(weights_folder)).eval()
            cfg = self.refined.head.config
            self.refine_args = (ddim_steps or cfg["ddim_steps"], strength or cfg["strength"])
            self.noise = self.refined.noise_for(self.height, self.width,
                                                cfg["noise_seed"] if noise_seed is None else noise_seed)

    @paddle.no_grad()
    def predict_disp(self, image):
        """Sigmoid disparity of scale 0, float32 H x W at the network size."""
        return self.predict_disp_and_size(image)[0]

    @paddle.no_grad()
    def predict_disp_and_size(self, image):
        img = image_io.load_image(image)
        x = image_io.preprocess(img, self.height, self.width)
        if self.compiled is not None:
            return self.compiled(x)[0, 0], img.size
        x = paddle.to_tensor(x)
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
