"""The deployed depth network on Paddle Inference or ONNX Runtime: `DepthPredictor`, free of Paddle.

    from deployment import DepthPredictor
    predictor = DepthPredictor("inference_model", backend="onnxruntime")   # or backend="paddle"
    depth = predictor.depth("photo.jpg")   # H x W float32 at the photo's size (metres if predictor.metric)
    disp = predictor("photo.jpg")          # 1 x 1 x h x w sigmoid disparity at the network size
    disp = predictor.disparity("photo.jpg")   # the same resized to the photo's size
    xyz, rgb = predictor.points("photo.jpg", camera="camera.json")  # coloured point cloud, N x 3 each

A photo may be a path, a PIL image of any mode (converted to RGB) or an H x W x 3 uint8 array; a
float32 B x 3 x h x w array in [0, 1] (utils.io.image_io.preprocess) is passed to the network as it is.
Only numpy, PIL and cv2 are imported at module level: backend="onnxruntime" runs without Paddle;
paddle.inference is imported when a Paddle session is built.
"""
import os

import numpy as np

from deployment.config import (BACKENDS, CONFIG_NAME, LAYOUTS, DeployError, check_input_shapes, depth_scale,
                               expected_shapes, read_config)
from utils.diffusion import ddim
from utils.geometry import provenance
from utils.io import image_io


class _PaddleSession:
    """One Paddle Inference predictor: run(list of arrays in input order) -> list of arrays."""

    def __init__(self, prefix, device, cpu_threads, onednn, use_trt, trt_precision, input_shapes, bf16=False):
        try:
            import paddle
            from paddle import inference
        except ImportError:
            raise DeployError("backend paddle needs PaddlePaddle (pip install paddlepaddle), "
                              "or use --backend onnxruntime on a folder exported with --format onnx") from None
        if device == "gpu" and not paddle.is_compiled_with_cuda():
            raise DeployError("--device gpu: this Paddle build has no CUDA support; install paddlepaddle-gpu "
                              "or use --device cpu")
        if use_trt:
            prefix = _tensorrt_program(prefix, trt_precision, input_shapes)
        config = inference.Config(prefix + ".json", prefix + ".pdiparams")
        config.disable_glog_info()
        if device == "gpu":
            config.enable_use_gpu(256, 0)
        else:
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(cpu_threads)
            if onednn:
                config.enable_onednn()
                config.set_onednn_cache_capacity(8)  # a few batch sizes cached, not one per call
                if bf16:
                    config.enable_onednn_bfloat16()
            else:
                config.disable_onednn()
        # Paddle 3.3's PIR in-place pass lets oneDNN's broadcasting divide overwrite its input while a
        # later op still reads it: the guided filter's (l_a / sum) * l_a came out as (l_a / sum)^2, up
        # to 0.4 off in disparity. Without that pass the program computes the eager function.
        # The pass runs when the predictor is built, so the flag is restored right after.
        flag = "FLAGS_pir_apply_inplace_pass"
        saved = paddle.get_flags([flag])[flag]
        paddle.set_flags({flag: False})
        try:
            self.predictor = inference.create_predictor(config)
        finally:
            paddle.set_flags({flag: saved})
        self.input_names = self.predictor.get_input_names()
        self.output_names = self.predictor.get_output_names()

    def run(self, arrays):
        for name, a in zip(self.input_names, arrays):
            handle = self.predictor.get_input_handle(name)
            handle.reshape(list(a.shape))
            handle.copy_from_cpu(np.ascontiguousarray(a, dtype=np.float32))
        self.predictor.run()
        return [self.predictor.get_output_handle(n).copy_to_cpu() for n in self.output_names]


def _tensorrt_program(prefix, precision, input_shapes):
    """Paddle 3's PIR-TensorRT conversion of <prefix>.json (batch 1 to 8, optimised for 1) into a
    cache folder beside it; returns the converted program's prefix."""
    try:
        from paddle.tensorrt.export import Input, PrecisionMode, TensorRTConfig, convert
    except ImportError:
        raise DeployError("--use_trt: this Paddle build has no TensorRT support (paddle.tensorrt); "
                          "install a paddlepaddle-gpu build with TensorRT or drop --use_trt") from None
    inputs = [Input(min_input_shape=[1] + s[1:], optim_input_shape=[1] + s[1:], max_input_shape=[8] + s[1:],
                    name=name) for name, s in input_shapes]
    cache = os.path.join(os.path.dirname(prefix), "trt_cache", f"{os.path.basename(prefix)}_{precision}")
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    config = TensorRTConfig(inputs=inputs)
    config.precision_mode = PrecisionMode.FP16 if precision == "fp16" else PrecisionMode.FP32
    config.save_model_dir = cache
    convert(prefix, config)
    return cache


class _OnnxSession:
    def __init__(self, path, device, cpu_threads):
        try:
            import onnxruntime as ort
        except ImportError:
            raise DeployError("backend onnxruntime needs onnxruntime (pip install onnxruntime)") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = cpu_threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if device == "gpu":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise DeployError("--device gpu with onnxruntime needs the onnxruntime-gpu package "
                                  "(CUDAExecutionProvider); or use --device cpu")
            providers = ["CUDAExecutionProvider"] + providers
        try:
            self.session = ort.InferenceSession(path, options, providers=providers)
        except Exception as e:  # onnxruntime's InvalidProtobuf / Fail
            raise DeployError(f"{path}: unreadable ONNX model ({str(e).splitlines()[0][:200]}); "
                              "re-export with export.py --format onnx") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.input_shapes = {i.name: list(i.shape) for i in self.session.get_inputs()}

    def run(self, arrays):
        feed = {n: np.ascontiguousarray(a, dtype=np.float32) for n, a in zip(self.input_names, arrays)}
        return self.session.run(None, feed)


REFINE_CONFIG = "refine.json"  # written by deployment/export_refine.py


class _RefineLoop:
    """The diffusion head's step programs run by the host: cond, z = refine_prepare(image, noise,
    t_start); z = refine_step(z, t, t_prev, cond) over utils.diffusion.ddim.schedule(ddim_steps, strength);
    depth = refine_decode(z) in metres. noise: utils.diffusion.ddim.seeded_noise of the head's seed."""

    def __init__(self, model_dir, make_session, ddim_steps=None, strength=None, noise_seed=None):
        import json

        with open(os.path.join(model_dir, REFINE_CONFIG)) as f:
            self.config = json.load(f)
        head = self.config["head"]
        self.ddim_steps, self.strength = ddim_steps or head["ddim_steps"], strength or head["strength"]
        self.num_train = head["num_train_timesteps"]
        channels, h, w = self.config["shapes"]["noise"]
        self.noise = ddim.seeded_noise(head["noise_seed"] if noise_seed is None else noise_seed, h, w, channels)
        self.sessions = {part: make_session(part) for part in ("refine_prepare", "refine_step", "refine_decode")}

    def __call__(self, images):
        """Depth B x 1 x H x W (metres) of float32 network inputs B x 3 x H x W."""
        def scalar(t):
            return np.array([t], np.float32)
        t_start, pairs = ddim.schedule(self.ddim_steps, self.strength, self.num_train)
        cond, z = self.sessions["refine_prepare"].run([images, self.noise, scalar(t_start)])
        for t, t_prev in pairs:
            (z,) = self.sessions["refine_step"].run([z, scalar(t), scalar(t_prev), cond])
        return self.sessions["refine_decode"].run([z])[0]


class DepthPredictor:
    """The exported depth network of a deployment folder, on Paddle Inference or ONNX Runtime.

    `predictor.config` is deploy.json (height, width, min/max depth, metric, depth_scale_factor, ...);
    `predictor.scale_factor` and `predictor.metric` say how depth() scales (deploy.json's, unless
    `scale_factor` is given); `predictor.scale_note` is the line to tell the user about it, or None;
    `predictor.provenance` (utils/geometry/provenance.py) what the weights were trained on and
    `predictor.caption` the line to show beside their depth."""

    def __init__(self, model_dir, backend="paddle", device="cpu", cpu_threads=0, onednn=True,
                 use_trt=False, trt_precision="fp32", bf16=False, scale_factor=None, refine=True, ddim_steps=None,
                 strength=None, noise_seed=None):
        if backend not in BACKENDS:
            raise DeployError(f"backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        if use_trt and (backend != "paddle" or device != "gpu"):
            raise DeployError("--use_trt needs --backend paddle and --device gpu")
        self.config = read_config(model_dir, backend)
        bf16 = bf16 or self.config.get("precision") == "bf16"  # export.py --precision bf16 checked it
        self.height, self.width = self.config["height"], self.config["width"]
        self.min_depth, self.max_depth = self.config["min_depth"], self.config["max_depth"]
        self.scale_factor, self.metric = depth_scale(self.config)
        self.scale_note = self.config.get("depth_note")  # the line predict.py shows for these weights
        if scale_factor is not None:
            self.scale_factor, self.metric, self.scale_note = float(scale_factor), True, None
        threads = cpu_threads or os.cpu_count() or 1
        shapes = expected_shapes(self.config)
        self.sessions = []
        for part in LAYOUTS[self.config["layout"]]:
            info = self.config["parts"][part]
            if backend == "paddle":
                prefix = os.path.join(model_dir, info["files"]["program"][:-len(".json")])
                session = _PaddleSession(prefix, device, threads, onednn, use_trt, trt_precision,
                                         [(n, shapes[n]) for n in info["inputs"]], bf16)
            else:
                path = os.path.join(model_dir, info["files"]["onnx"])
                session = _OnnxSession(path, device, threads)
                check_input_shapes(self.config, model_dir, part, session.input_shapes, path)
            if list(session.input_names) != list(info["inputs"]):
                raise DeployError(f"{model_dir}: {part} model takes inputs {list(session.input_names)} but "
                                  f"{CONFIG_NAME} says {info['inputs']}; re-export with export.py")
            self.sessions.append(session)
        # the diffusion head's step programs (refine.json, exported beside MLDA-Net): metric depth
        self.refine = None
        if refine and os.path.isfile(os.path.join(model_dir, REFINE_CONFIG)):
            def make(part):
                if backend == "paddle":
                    return _PaddleSession(os.path.join(model_dir, part), device, threads, onednn, False, trt_precision,
                                          None)
                return _OnnxSession(os.path.join(model_dir, part + ".onnx"), device, threads)
            self.refine = _RefineLoop(model_dir, make, ddim_steps, strength, noise_seed)
            if scale_factor is None:
                self.scale_factor, self.metric, self.scale_note = 1.0, True, None
        self.provenance = provenance.of_options(self.config, self.metric)   # deploy.json's training data record
        self.caption = self.provenance.caption()

    def __call__(self, image):
        """Sigmoid disparity B x 1 x height x width of a photo (path, PIL image, H x W x 3 uint8
        array; B = 1) or of a float32 B x 3 x height x width network input."""
        if isinstance(image, np.ndarray) and image.ndim == 4:
            images = np.asarray(image, dtype=np.float32)
        else:
            images = image_io.preprocess(image_io.load_image(image), self.height, self.width)
        want = (3, self.height, self.width)
        if images.ndim != 4 or images.shape[1:] != want:
            raise DeployError(f"input of shape {list(images.shape)}: the model takes B x 3 x {self.height} x "
                              f"{self.width} (utils.io.image_io.preprocess(image, {self.height}, {self.width})), "
                              "or give it a photo")
        if self.refine is not None:  # metric depth as the sigmoid disparity that disp_to_depth maps back to it
            depth = np.clip(self.refine(images), self.min_depth, self.max_depth)
            return ((1.0 / depth - 1.0 / self.max_depth) / (1.0 / self.min_depth - 1.0 / self.max_depth)).astype(
                np.float32)
        arrays = [images]
        for session in self.sessions:
            arrays = session.run(arrays)
        return arrays[0]

    def depth(self, image):
        """float32 depth of a photo at its own size: scale_factor x disp_to_depth of the disparity,
        resized bilinearly (metres when self.metric; relative depth otherwise)."""
        image = image_io.load_image(image)
        return image_io.disparity_to_depth(self(image)[0, 0], image.size, self.scale_factor, self.min_depth,
                                           self.max_depth)

    def disparity(self, image):
        """Sigmoid disparity of a photo resized bilinearly to its own size, float32."""
        image = image_io.load_image(image)
        return image_io.resize_map(self(image)[0, 0], image.size)

    def points(self, image, camera=None):
        """(N x 3 float32 points, N x 3 uint8 colours) of a photo's depth back-projected with `camera`
        (camera.json path or dict; None: deploy.json's training camera, else KITTI's), as deployment.Predictor."""
        from utils.cameras.camera import CameraChoice
        from utils.geometry.pointcloud import cloud

        choice = CameraChoice(camera, self.config.get("camera"))
        image = image_io.load_image(image)
        return cloud(self.depth(image), np.asarray(image), choice.intrinsics(*image.size))
