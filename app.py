"""A web page for depth (Gradio): drop a photo or take one with the webcam, see its colour-mapped depth
beside it, turn its point cloud with the mouse, download the files; or give a video for its depth video.

    python app.py --load_weights_folder WEIGHTS                 # then open http://127.0.0.1:7860
    python app.py --infer_files_dir inference_model [--backend onnxruntime] [--port 8000]
    python app.py --load_weights_folder WEIGHTS --host 0.0.0.0  # reachable from other machines

The page runs the predictors of predict.py (deployment.Predictor: compiled, or eager Paddle with --eager) or
inference.py (deployment.DepthPredictor, an exported model) and writes with their writers
(utils.io.image_io.write_prediction, utils.io.video.predict_video), so what it shows and offers is what the
scripts write for the same photo: the colour map is <stem>_disp.jpeg, the downloads are <stem>_depth.npy, the
16-bit <stem>_depth.png and <stem>_points.ply. Metres or relative depth follow the weights as for predict.py
(utils.geometry.depth.depth_scale; deploy.json for an exported model; --pred_depth_scale_factor F always wins)
and the page says which, with the weights' caption (utils/geometry/provenance.py: demonstration weights trained
on the synthetic scene, or metres only with the caveat that they assume the training camera). The camera of
the point cloud is --camera, else the photo's EXIF focal length, else the training camera, and metric depth is
rescaled by the photo's focal ratio (utils/cameras/photo.py; --no-focal_rescale turns it off), as predict.py
does. The 3-D view shows a subsample of the point cloud (at most VIEW_POINTS points, as binary glTF); the .ply
holds every pixel.
Photos or video frames above --max_image_pixels, videos above --max_video_frames and files above
--max_upload_mb are refused; so are files that are not readable images or videos: the message (naming the
visitor's file) stays on the page in place of the summary, and the console gets one line. Gradio's
queue runs one prediction at a time and lets the other visitors wait their turn. Files live in a temporary
folder, removed after an hour and when the page stops.
"""
import utils  # noqa: F401  (first import: silences Paddle's import-time ccache warning)
import atexit
import json
import logging
import os
import re
import shutil
import signal
import struct
import sys
import tempfile
import time

import cv2
import numpy as np
from PIL import Image

import options
from utils.cameras.camera import CameraError
from utils.cameras.photo import FocalRescale, PhotoCameras
from utils.geometry import pointcloud, provenance
from utils.io import image_io, video
from utils.io.output_options import OutputOptions

VIEW_POINTS = 80_000       # points in the 3-D view: enough to see the scene, light for a browser
KEEP_SECONDS = 3600        # request folders (and Gradio's copies) older than this are deleted
PREVIEW_FOURCC = "VP80"    # VP8 WebM: browsers play it and OpenCV's own FFmpeg writes it (no ffmpeg binary)


def folder_name(path):
    return os.path.basename(os.path.normpath(path))


class Service:
    """The predictor of the page, built as predict.py or inference.py builds it: `predict_disp(PIL image)`
    -> network-size sigmoid disparity; scale_factor, metric, scale_note, min_depth, max_depth as theirs;
    `camera` the point clouds' utils.cameras.photo.PhotoCameras (--camera, else EXIF, else the training camera),
    `focal` the FocalRescale of metric depth (None: relative depth, an explicit factor or --no-focal_rescale)."""

    def __init__(self, opt):
        if opt.load_weights_folder:
            from deployment import Predictor
            from utils.system import setup_runtime

            setup_runtime(opt.device)
            predictor = Predictor(opt.load_weights_folder, opt.pred_depth_scale_factor, eager=opt.eager)
            self.predict_disp, trained_camera = predictor.predict_disp, predictor.trained_camera
            how = f"compiled, {predictor.backend}" if predictor.backend else "eager Paddle"
            self.source = f"weights {folder_name(opt.load_weights_folder)} ({how}, {opt.device})"
        else:
            from deployment import DepthPredictor

            predictor = DepthPredictor(opt.infer_files_dir, opt.backend, opt.device, opt.cpu_threads, opt.onednn,
                                       opt.use_trt, opt.trt_precision, scale_factor=opt.pred_depth_scale_factor)
            self.predict_disp = lambda image: predictor(image)[0, 0]   # as inference.py
            trained_camera = predictor.config.get("camera")
            self.source = f"exported model {folder_name(opt.infer_files_dir)} ({opt.backend}, {opt.device})"
        self.scale_factor, self.metric, self.scale_note = predictor.scale_factor, predictor.metric, predictor.scale_note
        self.provenance = predictor.provenance   # what the weights learned from (utils/geometry/provenance.py)
        self.min_depth, self.max_depth = predictor.min_depth, predictor.max_depth
        self.camera = PhotoCameras(opt.camera, trained_camera)
        rescale = opt.focal_rescale and self.metric and opt.pred_depth_scale_factor is None
        self.focal = FocalRescale(PhotoCameras(opt.camera, trained_camera)) if rescale else None

    def depth_statement(self):
        """The page's lines on what the depth means: the weights' caption, then predict.py's note on the scale."""
        caption = self.provenance.caption()
        text = f"**{caption[0].upper()}{caption[1:]}.**"
        if self.scale_note:
            head, _, rest = self.scale_note.partition(": ")
            text += f"  \n{head.capitalize()}: {rest}."
        return text


class PageError(ValueError):
    """What to tell the visitor about an upload the page cannot use; one line."""


def upload_path(payload):
    """(path, the visitor's file name) of a Gradio file payload (a FileData dict; preprocess=False)."""
    if isinstance(payload, str):
        return payload, os.path.basename(payload)
    path = payload.get("path") if isinstance(payload, dict) else None
    if not path:
        raise PageError("the upload did not arrive; try again")
    return path, payload.get("orig_name") or os.path.basename(path)


def safe_stem(name, fallback):
    """A file stem from the visitor's file name: letters, digits, '-', '_' and '.', at most 60 characters."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.splitext(os.path.basename(name))[0]).strip("._")[:60]
    return stem or fallback


def check_pixels(name, width, height, limit):
    if width * height > limit:
        raise PageError(f"{name}: {width} x {height} = {width * height / 1e6:.1f} MP is more than this page accepts "
                        f"({limit / 1e6:g} MP, app.py --max_image_pixels); resize it first")


def read_photo(path, name, limit):
    """The RGB PIL photo (utils.io.image_io.load_image: any mode, EXIF orientation); the size is checked
    from the header before the pixels are decoded."""
    try:
        with Image.open(path) as header:
            check_pixels(name, *header.size, limit)
    except PageError:
        raise
    except Exception:  # noqa: BLE001  (load_image below names the reason)
        pass
    try:
        return image_io.load_image(path)
    except image_io.ImageLoadError as e:
        reason = str(e).split("cannot read image", 1)[-1].strip(" ()") or "unknown format"
        raise PageError(f"{name}: not a readable image ({reason}); use a JPEG, PNG, WebP, BMP or TIFF") from None


def write_glb(path, points, colours):
    """Binary glTF 2.0 (.glb) of a coloured point cloud: one POINTS primitive, POSITION float32 VEC3 (with
    the min/max glTF requires) and COLOR_0 normalised uint8 VEC4 (alpha 255: 4-byte aligned). Points are
    camera coordinates (x right, y down, z forward) turned into glTF's (y up, looking along -z): (x, -y, -z)."""
    xyz = (np.asarray(points, np.float32).reshape(-1, 3) * np.float32([1, -1, -1])).astype("<f4")
    rgba = np.concatenate([np.asarray(colours, np.uint8).reshape(-1, 3), np.full((len(xyz), 1), 255, np.uint8)], 1)
    n = len(xyz)
    blob = xyz.tobytes() + rgba.tobytes()
    gltf = {
        "asset": {"version": "2.0", "generator": "MLDA-Net app.py"},
        "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0, "COLOR_0": 1}, "mode": 0}]}],
        "buffers": [{"byteLength": len(blob)}],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": 12 * n, "target": 34962},
                        {"buffer": 0, "byteOffset": 12 * n, "byteLength": 4 * n, "target": 34962}],
        "accessors": [{"bufferView": 0, "componentType": 5126, "count": n, "type": "VEC3",
                       "min": xyz.min(0).tolist(), "max": xyz.max(0).tolist()},
                      {"bufferView": 1, "componentType": 5121, "normalized": True, "count": n, "type": "VEC4"}],
    }
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)  # chunks are 4-byte aligned: JSON padded with spaces
    blob += b"\0" * (-len(blob) % 4)
    with open(path, "wb") as f:
        f.write(struct.pack("<III", 0x46546C67, 2, 12 + 8 + len(text) + 8 + len(blob)))  # magic "glTF", version 2
        f.write(struct.pack("<II", len(text), 0x4E4F534A) + text)                        # chunk "JSON"
        f.write(struct.pack("<II", len(blob), 0x004E4942) + blob)                        # chunk "BIN\0"


def view_cloud(depth, rgb, intrinsics, max_points=VIEW_POINTS):
    """utils.geometry.pointcloud.cloud of every s-th row and column (s the smallest stride giving at most
    max_points)."""
    h, w = depth.shape
    stride = max(1, int(np.ceil(np.sqrt(h * w / max_points))))
    keep = np.zeros((h, w), bool)
    keep[::stride, ::stride] = True
    return pointcloud.cloud(np.where(keep, depth, 0), rgb, intrinsics)


def browser_video(source, target):
    """Re-encode `source` (utils.io.video's MPEG-4 / Motion JPEG, which browsers do not play) as VP8 WebM."""
    capture = cv2.VideoCapture(source)
    fps = capture.get(cv2.CAP_PROP_FPS) or video.DEFAULT_FPS
    writer = None
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if writer is None:
                writer = cv2.VideoWriter(target, cv2.VideoWriter_fourcc(*PREVIEW_FOURCC), fps, frame.shape[1::-1])
            writer.write(frame)
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    return target if writer is not None and os.path.getsize(target) > 0 else None


class Requests:
    """One fresh folder per request under a temporary root; folders older than KEEP_SECONDS are removed."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="mlda_app_")
        atexit.register(shutil.rmtree, self.root, True)

    def new(self):
        now = time.time()
        for name in os.listdir(self.root):
            folder = os.path.join(self.root, name)
            if now - os.path.getmtime(folder) > KEEP_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
        return tempfile.mkdtemp(dir=self.root)


def photo_outputs(service, requests, payload, colormap, max_pixels):
    """Everything the photo tab shows for one upload: ((photo, colour map) image paths, .glb path or None,
    [depth .npy, depth .png, .ply], a Markdown summary). Raises PageError."""
    path, name = upload_path(payload)
    image = read_photo(path, name, max_pixels)
    folder, stem = requests.new(), safe_stem(name, "photo")
    rgb = np.asarray(image)
    try:
        points = (rgb, service.camera.intrinsics(*image.size, photo=path))
        cloud_note = service.camera.source.replace("point clouds: ", "point cloud: ")
        if path in service.camera.notes:
            cloud_note = f"point cloud: {service.camera.notes[path]}"
    except CameraError as e:
        points, cloud_note = None, f"no point cloud: {e}"
    try:
        factor, focal_note, metadata = service.focal.of(path, *image.size) if service.focal else (1.0, None, None)
    except CameraError as e:
        raise PageError(str(e).replace(path, name)) from None
    disp = service.predict_disp(image)
    files = image_io.write_prediction(folder, stem, disp, image.size, service.scale_factor * factor, colormap, True,
                                      service.min_depth, service.max_depth, points=points, metadata=metadata)
    shown = os.path.join(folder, f"{stem}_photo.jpeg")   # the photo as the network saw it (RGB, EXIF-turned)
    image.save(shown, quality=95)
    depth = np.load(files["depth_npy"])
    model = None
    if points is not None:
        xyz, colours = view_cloud(depth, rgb, points[1])
        if len(xyz):
            model = os.path.join(folder, f"{stem}_view.glb")
            write_glb(model, xyz, colours)
    caption = service.provenance.caption(provenance.camera_state(metadata))   # metres only with their caveat
    summary = (f"**{name}**: {image.width} x {image.height} pixels; depth {depth.min():.3g} to "
               f"{depth.max():.3g}, median {np.median(depth):.3g}: {caption}.  \n"
               f"{cloud_note[0].upper()}{cloud_note[1:]}.")
    if focal_note:
        summary += f"  \n{focal_note[0].upper()}{focal_note[1:]}."
    downloads = [files[k] for k in ("depth_npy", "depth_png", "points_ply") if k in files]
    return (shown, files["disp_jpeg"]), model, downloads, summary


def video_outputs(service, requests, payload, colormap, layout, max_pixels, max_frames, temporal=True):
    """The video tab's outputs for one upload: (browser-playable depth video, [depth video as
    predict.py writes it, zip of the per-frame files], a Markdown summary). `temporal`: as predict.py
    --temporal (one colour scale, aligned frames, the flicker figure in the summary). Raises PageError."""
    path, name = upload_path(payload)
    try:
        capture, fps, count, first = video.open_video(path)
        capture.release()
    except video.VideoError:
        raise PageError(f"{name}: not a video this page can read (OpenCV decodes MP4, AVI, MOV, MKV, WebM ...)") \
            from None
    check_pixels(f"{name} (its frames)", first.shape[1], first.shape[0], max_pixels)
    if count > max_frames:
        raise PageError(f"{name}: {count} frames are more than this page accepts ({max_frames}, app.py "
                        "--max_video_frames); cut the video first")
    folder, stem = requests.new(), safe_stem(name, "video")
    try:
        factor = service.focal.of()[0] if service.focal else 1.0   # a given camera's focal ratio (no EXIF in frames)
        out = OutputOptions(folder, service.scale_factor * factor, service.min_depth, service.max_depth, colormap,
                            video_layout=layout, progress="app.py", temporal=temporal, metric=service.metric,
                            video_camera=service.camera, save_raw=temporal)
        frames, frame_folder, depth_video, stability = video.predict_video(path, stem, service.predict_disp, out)
    except video.VideoError as e:
        raise PageError(str(e).replace(path, name)) from None
    archive = shutil.make_archive(os.path.join(folder, f"{stem}_frames"), "zip", frame_folder)
    preview = browser_video(depth_video, os.path.join(folder, f"{stem}_depth_preview.webm"))
    caption = service.provenance.caption(provenance.camera_state(service.focal.of()[2] if service.focal else None))
    summary = (f"**{name}**: {frames} frame(s) at {fps:g} fps; {caption}. The zip holds each frame's _disp.npy, "
               "_disp.jpeg and _depth.npy " + ("(aligned, one colour range for the video; _depth_raw.npy: as "
                                               "predicted).  \n" + stability.describe() if stability is not None else
                                               "(each frame's colour map uses its own range)."))
    return preview, [depth_video, archive], summary


def page_reply(outputs, blanks, payload=None):
    """`outputs()` (a tab's outputs, its Markdown summary last), or for an upload the page cannot use (PageError)
    `blanks` empty outputs and the message in that Markdown, where it stays until the next upload (a toast
    vanishes and leaves broken outputs). Messages name the visitor's file, never the server's temporary path;
    the console gets one line (an unexpected error: its traceback, the page a line saying so)."""
    try:
        return outputs()
    except PageError as e:
        message = str(e)
    except Exception:  # noqa: BLE001  (a bug, not the visitor's mistake: the page stays usable)
        logging.getLogger("app").exception("unexpected error")
        return (None,) * blanks + ("**Something went wrong on the server** (its console has the details); "
                                   "try another file.",)
    if isinstance(payload, dict) and payload.get("path"):   # the temporary file and its folder -> the file's name
        path, name = payload["path"], payload.get("orig_name") or os.path.basename(payload["path"])
        message = message.replace(path, name).replace(os.path.dirname(path) + os.sep, "")
    print(f"app.py: refused an upload: {message}", file=sys.stderr, flush=True)
    return (None,) * blanks + (f"**Not used**: {message}",)


def photo_handler(service, requests, opt):
    """The photo tab's handler: (photo payload, colour map) -> photo_outputs through page_reply."""
    def on_photo(payload, colormap):
        if payload is None:   # cleared
            return None, None, None, ""
        return page_reply(lambda: photo_outputs(service, requests, payload, colormap, opt.max_image_pixels), 3,
                          payload)
    return on_photo


def video_handler(service, requests, opt):
    """The video tab's handler: (video payload, colour map, layout, temporal) -> video_outputs through page_reply."""
    def on_video(payload, colormap, layout, temporal=True):
        if payload is None:
            return None, None, "**Not used**: upload a video first."
        return page_reply(lambda: video_outputs(service, requests, payload, colormap, layout, opt.max_image_pixels,
                                                opt.max_video_frames, temporal), 2, payload)
    return on_video


def build_page(service, opt):
    """The Gradio Blocks of the page (not launched)."""
    import gradio as gr

    requests = Requests()
    on_photo = photo_handler(service, requests, opt)
    video_reply = video_handler(service, requests, opt)

    def on_video(payload, colormap, layout, temporal, progress=gr.Progress(track_tqdm=True)):   # Gradio's progress bar
        return video_reply(payload, colormap, layout, temporal)

    colormaps = list(image_io.COLORMAPS)
    with gr.Blocks(title="MLDA-Net depth", analytics_enabled=False, delete_cache=(KEEP_SECONDS, KEEP_SECONDS)) as page:
        gr.Markdown(f"## MLDA-Net: depth from one photo\n{service.depth_statement()}  \nServing {service.source}.",
                    elem_id="depth_statement")
        with gr.Tab("Photo"):
            with gr.Row():
                with gr.Column():
                    photo = gr.Image(label="photo (upload, paste or webcam)", sources=["upload", "webcam", "clipboard"],
                                     type="filepath", image_mode=None, elem_id="photo", height=300)
                    colormap = gr.Dropdown(colormaps, value=opt.colormap, label="colour map", elem_id="colormap")
                with gr.Column():
                    slider = gr.ImageSlider(label="photo | colour-mapped depth (drag the handle)", type="filepath",
                                            elem_id="depth_view", interactive=False, max_height=300)
                    summary = gr.Markdown(elem_id="photo_summary")
            with gr.Row():
                cloud = gr.Model3D(label="point cloud (drag to turn, scroll to zoom)", elem_id="cloud",
                                   clear_color=(0.1, 0.1, 0.12, 1.0), height=360, interactive=False)
                downloads = gr.File(label="downloads: depth .npy, 16-bit depth .png (depth x 256), point cloud .ply",
                                    file_count="multiple", interactive=False, elem_id="downloads")
            gr.on([photo.change, colormap.change], on_photo, inputs=[photo, colormap],
                  outputs=[slider, cloud, downloads, summary], preprocess=False, concurrency_id="predictor")
        with gr.Tab("Video"):
            with gr.Row():
                # a file, not gr.Video: its preview refuses (with an error) what browsers cannot play, e.g. AVI
                clip = gr.File(label="video (MP4, AVI, MOV, MKV, WebM ...)", file_types=list(video.VIDEO_EXTENSIONS),
                               elem_id="video_in", height=300)
                depth_clip = gr.Video(label="depth video", interactive=False, elem_id="video_out", height=300)
            with gr.Row():
                video_colormap = gr.Dropdown(colormaps, value=opt.colormap, label="colour map")
                layout = gr.Radio(list(video.LAYOUTS), value="auto", label="layout (auto: stacked for wide frames)")
                temporal = gr.Checkbox(value=True, label="temporal: one colour scale, frames aligned (no flicker)")
                run = gr.Button("Depth video", variant="primary", elem_id="video_run")
            video_summary = gr.Markdown(elem_id="video_summary")
            video_files = gr.File(label="downloads: depth video, per-frame files (.zip)", file_count="multiple",
                                  interactive=False)
            run.click(on_video, inputs=[clip, video_colormap, layout, temporal], outputs=[depth_clip, video_files, video_summary],
                      preprocess=False, concurrency_id="predictor")   # one predictor: one request at a time
    page.work_root = requests.root
    return page


def main(argv=None):
    opt = options.parse("app", argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")   # no calls home
    logging.getLogger("httpx").setLevel(logging.WARNING)   # Gradio's start-up self-checks, one INFO line each
    try:
        import gradio as gr
    except ImportError:
        sys.exit("app.py: error: the web page needs Gradio: pip install gradio (or pip install -r requirements.txt)")
    from deployment import DeployError
    from utils.system import RuntimeSetupError

    refusals = (DeployError, RuntimeSetupError, CameraError)
    if opt.load_weights_folder:   # networks imports Paddle, which an exported ONNX model does not need
        from networks import CheckpointError
        refusals += (CheckpointError,)
    try:
        service = Service(opt)
    except refusals as e:
        sys.exit(f"app.py: error: {e}")
    print(service.depth_statement().replace("**", ""))
    # `kill` stops the page as Ctrl-C does (Gradio closes, atexit removes the request folders)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    page = build_page(service, opt)
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],   # no web fonts: works offline
                              font_mono=["ui-monospace", "monospace"])
    try:
        page.queue(default_concurrency_limit=1, max_size=64).launch(
            server_name=opt.host, server_port=opt.port, share=opt.share, allowed_paths=[page.work_root],
            max_file_size=opt.max_upload_mb * 1024 * 1024, ssr_mode=False, theme=theme, footer_links=[])
    except OSError as e:
        sys.exit(f"app.py: error: cannot serve on {opt.host}:{opt.port} ({str(e).splitlines()[0]}); "
                 "pick another --port")


if __name__ == "__main__":
    main()
