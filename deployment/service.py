"""The depth service's model and its HTTP contract, free of Ray (and of Paddle until a model is built):
what the replicas of serve.py (deployment/ray_serve.py) and the actors of predict.py --engine ray
(deployment/ray_batch.py) run. The API is described in docs/serving.md.

    model = DepthModel(opt, threads)       # predict.py's Predictor (opt.load_weights_folder) or inference.py's
                                           # DepthPredictor (opt.infer_files_dir), built as those scripts build them
    disps = model.disparities([photo, ...])   # network-size sigmoid disparities, one network call for all
    image, scale = read_photo(model, body, content_type, max_pixels)   # RequestError (4xx) for a bad upload
    body, media_type, headers = encode(model, disp, image.size, *parse_query(params), scale)

Scale, as predict.py's: metric depth is multiplied by the upload's focal ratio fx_photo / fx_train from its EXIF
(utils/cameras/photo.py; no EXIF focal length: the training camera's depth), unless --no-focal_rescale or
--pred_depth_scale_factor; the headers X-Depth-Scale-Factor, X-Depth-Focal-Rescale and X-Depth-Camera say which.
X-Depth-Weights says whether the weights are demonstration ones (trained on the synthetic scene), trained on
real data or of unknown training data, and X-Depth-Caption what the numbers mean (utils/geometry/provenance.py);
GET /info adds the training data record.

The network treats every image of a batch alone (the guided filter's attention is normalised per sample,
docs/MLDA_NET.md §3), so a photo's answer does not depend on the requests batched with it. A model with a
diffusion head runs its photos one by one (the head's fixed start noise is made for one image).
"""
import email.parser
import email.policy
import io
import json
import os
from typing import NamedTuple

import numpy as np
from PIL import Image

from utils.cameras.camera import CameraChoice, CameraError
from utils.cameras.photo import FocalRescale, PhotoCameras
from utils.geometry import provenance
from utils.io import image_io

# ?format= -> (the image_io.encode_prediction kind, media type)
FORMATS = {
    "png16": ("depth_png", "image/png"),              # uint16 depth x 256, as <stem>_depth.png
    "npy": ("depth_npy", "application/x-npy"),        # float32 depth at the photo's size, as <stem>_depth.npy
    "disp_npy": ("disp_npy", "application/x-npy"),    # network-size sigmoid disparity, as <stem>_disp.npy
    "color": ("disp_png", "image/png"),               # colour-mapped disparity, <stem>_disp.jpeg's look, lossless
}
DEFAULT_FORMAT = "png16"
IMAGE_FIELDS = ("image", "file")   # multipart field names taken for the photo (else the first file part)


class RequestError(Exception):
    """A request the service refuses: HTTP `status` (4xx) and a one-line `message`."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


def error_body(message):
    """The one-line JSON body of every refusal: {"error": message}."""
    return (json.dumps({"error": message}) + "\n").encode()


def folder_name(path):
    return os.path.basename(os.path.normpath(path))


class DepthModel:
    """The predictor of a weights folder (opt.load_weights_folder: predict.py's Predictor, compiled unless --eager)
    or of an export.py folder (opt.infer_files_dir: DepthPredictor on opt.backend), with `threads` CPU
    threads. scale_factor, metric, scale_note, min_depth, max_depth, height, width: the predictor's."""

    def __init__(self, opt, threads=0):
        if opt.get("load_weights_folder"):
            from deployment import Predictor
            from utils.system import setup_runtime

            setup_runtime(opt.get("device", "cpu"), threads)
            self.predictor = Predictor(opt.load_weights_folder, opt.get("pred_depth_scale_factor"),
                                       refine=opt.get("refine", True), ddim_steps=opt.get("ddim_steps"),
                                       strength=opt.get("strength"), noise_seed=opt.get("noise_seed"),
                                       eager=opt.get("eager", False), num_threads=threads)
            compiled = self.predictor.compiled   # predict.py's compiled program (None: eager, by choice or fallback)
            self.name, self.precision = folder_name(opt.load_weights_folder), "fp32"
            self.backend = "paddle (eager)" if compiled is None else f"{self.predictor.backend} (compiled)"
            self.trained_camera = self.predictor.trained_camera
            self.refined = self.predictor.refined is not None
            self._single = self.predictor.predict_disp
            # predict.py's call per image for a compiled program: ONNX Runtime's kernels for a batch of N round
            # differently (~1e-4), and a batch must not change an answer
            self.one_by_one = self.refined or compiled is not None
        else:
            from deployment import DepthPredictor

            self.predictor = DepthPredictor(opt.infer_files_dir, opt.backend, opt.get("device", "cpu"), threads,
                                            opt.get("onednn", True), opt.get("use_trt", False),
                                            opt.get("trt_precision", "fp32"),
                                            scale_factor=opt.get("pred_depth_scale_factor"))
            self.name, self.backend = folder_name(opt.infer_files_dir), opt.backend
            self.precision = self.predictor.config.get("precision", "fp32")
            self.trained_camera = self.predictor.config.get("camera")
            self.refined = self.predictor.refine is not None
            self._single = lambda image: self.predictor(image)[0, 0]   # as inference.py
            self.one_by_one = self.refined
        self.device = opt.get("device", "cpu")
        p = self.predictor
        self.height, self.width = int(p.height), int(p.width)
        self.scale_factor, self.metric, self.scale_note = float(p.scale_factor), bool(p.metric), p.scale_note
        self.min_depth, self.max_depth = float(p.min_depth), float(p.max_depth)
        self.provenance = p.provenance   # what the weights were trained on (utils/geometry/provenance.py)
        rescale = opt.get("focal_rescale", True) and self.metric and opt.get("pred_depth_scale_factor") is None
        self.focal = FocalRescale(PhotoCameras(None, self.trained_camera)) if rescale else None

    def disparities(self, images):
        """[h x w float32 sigmoid disparity] of RGB PIL images: one network call on their stacked
        image_io.preprocess inputs; one call each (`one_by_one`) for a diffusion head and for a weights folder's
        compiled program (the batch still shares decoding and the queue)."""
        if self.one_by_one:
            return [np.asarray(self._single(image), np.float32) for image in images]
        batch = np.concatenate([image_io.preprocess(image, self.height, self.width) for image in images])
        if self.backend == "paddle (eager)":
            import paddle

            with paddle.no_grad():
                disp = self.predictor.net.disparity(paddle.to_tensor(batch)).numpy()
        else:
            disp = self.predictor(batch)
        return [d[0].astype(np.float32) for d in disp]

    def info(self):
        """What GET /info says about the model (JSON-serialisable)."""
        camera = CameraChoice(None, self.trained_camera)
        return {"model": self.name, "backend": self.backend, "device": self.device, "precision": self.precision,
                "input_size": {"height": self.height, "width": self.width},
                "metric": self.metric, "depth_units": "metres" if self.metric else "relative",
                "scale_factor": self.scale_factor, "depth_note": self.scale_note,
                "min_depth": self.min_depth, "max_depth": self.max_depth, "diffusion_head": self.refined,
                "camera": camera.camera, "camera_source": camera.label, "focal_rescale": self.focal is not None,
                "png16_scale": image_io.KITTI_PNG_SCALE, "weights": self.provenance.kind,
                "caption": self.provenance.caption(), provenance.RECORD_KEY: self.provenance.record}


def parse_query(params):
    """(format, colormap) of the query parameters (a mapping): format one of FORMATS (default png16, or
    color when a colormap is given); colormap one of image_io.COLORMAPS, only with format=color."""
    unknown = sorted(set(params) - {"format", "colormap"})
    if unknown:
        raise RequestError(400, f"unknown query parameter {unknown[0]!r}: use format= and colormap=")
    colormap = params.get("colormap")
    fmt = params.get("format") or ("color" if colormap else DEFAULT_FORMAT)
    if fmt not in FORMATS:
        raise RequestError(400, f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if colormap is not None and colormap not in image_io.COLORMAPS:
        raise RequestError(400, f"unknown colormap {colormap!r}: choose one of {', '.join(image_io.COLORMAPS)}")
    if colormap is not None and fmt != "color":
        raise RequestError(400, f"colormap= colours format=color, not format={fmt}")
    return fmt, colormap or "magma"


def image_bytes(body, content_type):
    """The photo's file bytes of a request: the body itself, or for multipart/form-data the part named
    image (or file), else the first part with a file name."""
    if not body:
        raise RequestError(400, "empty body: send the photo's bytes, or a multipart form with an 'image' file")
    if not (content_type or "").lower().startswith("multipart/"):
        return body
    header = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    parts = list(message.iter_parts()) if message.is_multipart() else []
    named = {part.get_param("name", header="content-disposition"): part for part in parts}
    part = next((named[f] for f in IMAGE_FIELDS if f in named), None)
    part = part or next((p for p in parts if p.get_filename()), None)
    if part is None:
        raise RequestError(400, "multipart form without a file: send the photo in a field named 'image'")
    data = part.get_payload(decode=True)
    if not data:
        raise RequestError(400, "the form's image part is empty")
    return data


class PhotoScale(NamedTuple):
    """How an answer's depth is scaled: depth = `factor` x disp_to_depth; `focal_ratio` the photo's focal
    rescaling in it (1: none); `camera` "exif" when the upload's EXIF focal length gave that ratio, else
    "training" (the depth as the training camera sees it)."""
    factor: float
    focal_ratio: float = 1.0
    camera: str = "training"


def photo_scale(model, photo, size):
    """The PhotoScale of an upload (its file bytes) of `size` (width, height): model.scale_factor, times the
    photo's focal ratio from its EXIF when model.focal (utils/cameras/photo.py FocalRescale), as predict.py
    scales the photo. RequestError 400 for EXIF that cannot be used."""
    if model.focal is None:
        return PhotoScale(model.scale_factor)
    try:
        with Image.open(io.BytesIO(photo)) as image:   # reads the header only: the EXIF, not the pixels
            ratio, _, metadata = model.focal.of(image, *size)
    except CameraError as e:
        reason = str(e).split("; ")[0]
        raise RequestError(400, f"{reason}: send the photo without its EXIF (its focal length rescales metric "
                                "depth)") from None
    return PhotoScale(model.scale_factor * ratio, ratio, "exif" if metadata else "training")


def read_photo(model, body, content_type, max_pixels):
    """(RGB PIL image, PhotoScale) of a request: the photo of its body (image_bytes, load_upload) and its
    photo_scale."""
    data = image_bytes(body, content_type)
    image = load_upload(data, max_pixels)
    return image, photo_scale(model, data, image.size)


def load_upload(data, max_pixels):
    """The RGB PIL image of a photo's file bytes, refused with 413 above `max_pixels` before its pixels are
    decoded and with 400 when it is no readable image."""
    try:
        return image_io.load_image(data, max_pixels=max_pixels)
    except image_io.ImageTooLargeError as e:
        raise RequestError(413, f"{e}: send a smaller photo (--max_image_pixels)") from None
    except image_io.ImageLoadError as e:
        raise RequestError(400, f"{e}: send a photo (JPEG, PNG, ...)") from None


def encode(model, disp, size, fmt, colormap, scale=None):
    """(body, media type, headers) of a depth answer: the bytes predict.py writes for that kind
    (image_io.encode_prediction) with depth scaled by `scale` (a PhotoScale; None: the model's factor, no
    focal rescaling) and headers saying what they hold."""
    scale = scale or PhotoScale(model.scale_factor)
    kind, media_type = FORMATS[fmt]
    body = image_io.encode_prediction(disp, size, [kind], scale.factor, colormap, model.min_depth,
                                      model.max_depth)[kind]
    headers = {"X-Depth-Units": "metres" if model.metric else "relative",
               "X-Depth-Scale-Factor": f"{scale.factor:g}", "X-Depth-Focal-Rescale": f"{scale.focal_ratio:g}",
               "X-Depth-Camera": scale.camera, "X-Depth-Model": model.name,
               "X-Image-Size": f"{size[0]}x{size[1]}", "X-Depth-Format": fmt,
               "X-Depth-Weights": model.provenance.kind, "X-Depth-Caption": provenance.header_caption(
                   model.provenance, {"focal_rescale": scale.focal_ratio} if scale.camera == "exif" else None)}
    if fmt == "png16":
        headers["X-Depth-Png-Scale"] = f"{image_io.KITTI_PNG_SCALE:g}"
    return body, media_type, headers
