"""deployment/service.py without Ray: a batch through DepthModel gives each photo's own answer, and the
request contract (query, multipart, refusals, encoded answers and their headers)."""
import io
import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
import requests
from munch import Munch
from PIL import Image

from deployment import Predictor, service
from eval_fixtures import split_image_paths, synthetic_kitti, tamed_weights  # noqa: F401
from test_export import exported, weights  # noqa: F401  (session fixtures: tamed weights, exported folders)
from utils.cameras import exif
from utils.cameras.photo import FocalRescale, PhotoCameras
from utils.geometry import provenance
from utils.geometry.provenance import Provenance
from utils.io import image_io, photo_loop
from utils.io.output_options import OutputOptions

NO_FOCAL = SimpleNamespace(scale_factor=1.0, focal=None)   # a model without focal rescaling


def test_batch_gives_each_photo_its_own_answer(synthetic_kitti, tamed_weights):  # noqa: F811
    _, paths = split_image_paths(synthetic_kitti)
    photos = [image_io.load_image(p) for p in paths[:3]] + [image_io.load_image(paths[0]).rotate(180)]
    model = service.DepthModel(Munch(load_weights_folder=tamed_weights), threads=1)
    eager = service.DepthModel(Munch(load_weights_folder=tamed_weights, eager=True), threads=1)
    assert model.info()["backend"].endswith("(compiled)") and eager.info()["backend"] == "paddle (eager)"
    # the same network either way (their agreement is pinned in tests/test_compiled.py)
    np.testing.assert_allclose(eager.disparities(photos), model.disparities(photos), rtol=1e-3, atol=1e-5)
    together = model.disparities(photos)
    alone = [model.disparities([p])[0] for p in photos]
    predictor = Predictor(tamed_weights)
    for a, b, photo in zip(alone, together, photos):
        np.testing.assert_allclose(b, a, atol=1e-6)
        np.testing.assert_allclose(b, predictor.predict_disp(photo), atol=1e-5)
    assert np.abs(together[0] - together[3]).max() > 1e-3   # different photos, different answers
    info = model.info()
    assert (info["input_size"], info["metric"], info["scale_factor"]) == (
        {"height": predictor.height, "width": predictor.width}, predictor.metric, predictor.scale_factor)
    assert info["focal_rescale"] == predictor.focal_rescale   # metric weights: as predict.py
    # opt.json without a training data record: said, not guessed
    assert (info["weights"], info["training_data"], info["caption"]) == ("unknown", None, predictor.caption)
    assert info["caption"].startswith("unknown training data")
    json.dumps(info)   # what GET /info sends


@pytest.mark.slow   # exports the networks (shared with test_export.py's session fixture)
@pytest.mark.parametrize("backend", ["onnxruntime", "paddle"])
def test_exported_model_batch_equals_inference_path(exported, synthetic_kitti, backend):  # noqa: F811
    from deployment import DepthPredictor

    _, paths = split_image_paths(synthetic_kitti)
    photos = [image_io.load_image(p) for p in paths[:3]]
    model = service.DepthModel(Munch(infer_files_dir=exported["split"], backend=backend), threads=1)
    reference = DepthPredictor(exported["split"], backend, cpu_threads=1)
    for got, photo in zip(model.disparities(photos), photos):
        np.testing.assert_allclose(got, reference(photo)[0, 0], atol=1e-5)   # inference.py's call
    assert model.info()["backend"] == backend and model.info()["model"] == "split"


@pytest.mark.parametrize("params, expect", [
    ({}, ("png16", "magma")),
    ({"format": "npy"}, ("npy", "magma")),
    ({"colormap": "turbo"}, ("color", "turbo")),
    ({"format": "color", "colormap": "gray"}, ("color", "gray")),
    ({"format": "disp_npy"}, ("disp_npy", "magma")),
])
def test_query(params, expect):
    assert service.parse_query(params) == expect


@pytest.mark.parametrize("params, words", [
    ({"format": "jpeg"}, "unknown format 'jpeg'"),
    ({"colormap": "rainbow"}, "unknown colormap 'rainbow'"),
    ({"format": "png16", "colormap": "gray"}, "not format=png16"),
    ({"size": "9"}, "unknown query parameter 'size'"),
])
def test_query_refused(params, words):
    with pytest.raises(service.RequestError) as e:
        service.parse_query(params)
    assert e.value.status == 400 and words in e.value.message


def test_multipart_gives_the_file_bytes_unchanged():
    rng = np.random.default_rng(0)
    for size in (1, 1000, 65537):
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes() + b"\r\n--\r\n"   # boundary-like bytes inside
        form = requests.Request("POST", "http://x/depth", files={"image": ("p.jpg", data, "image/jpeg")},
                                data={"note": "a text field first"}).prepare()
        assert service.image_bytes(form.body, form.headers["Content-Type"]) == data
    other = requests.Request("POST", "http://x", files={"upload": ("p.png", b"abc")}).prepare()
    assert service.image_bytes(other.body, other.headers["Content-Type"]) == b"abc"   # any part with a file name
    assert service.image_bytes(b"raw", "image/jpeg") == b"raw"


@pytest.mark.parametrize("body, content_type, status, words", [
    (b"", "image/jpeg", 400, "empty body"),
    (b"hello", "text/plain", 400, "cannot read image"),
    (b"--b\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--b--\r\n", "multipart/form-data; boundary=b",
     400, "without a file"),
])
def test_bad_uploads_refused(body, content_type, status, words):
    with pytest.raises(service.RequestError) as e:
        service.read_photo(NO_FOCAL, body, content_type, 10 ** 6)
    assert e.value.status == status and words in e.value.message and "\n" not in e.value.message
    line = service.error_body(e.value.message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and json.loads(line)["error"] == e.value.message


def test_pixel_limit_is_413():
    buffer = io.BytesIO()
    Image.new("RGB", (200, 100)).save(buffer, "PNG")
    assert service.read_photo(NO_FOCAL, buffer.getvalue(), "image/png", 20000)[0].size == (200, 100)
    with pytest.raises(service.RequestError) as e:
        service.read_photo(NO_FOCAL, buffer.getvalue(), "image/png", 19999)
    assert e.value.status == 413 and "more than 19999 pixels" in e.value.message


@pytest.mark.parametrize("metric, units", [(True, "metres"), (False, "relative")])
def test_encoded_answers_are_predict_files(metric, units, tmp_path):
    disp = np.random.default_rng(2).uniform(0.05, 0.95, (8, 16)).astype(np.float32)
    model = SimpleNamespace(scale_factor=5.4 if metric else 1.0, metric=metric, min_depth=0.1, max_depth=100.0,
                            name="w", provenance=Provenance(None, metric))
    files = image_io.write_prediction(str(tmp_path), "p", disp, (48, 24), model.scale_factor, "magma", True)
    for fmt, kind in (("png16", "depth_png"), ("npy", "depth_npy"), ("disp_npy", "disp_npy")):
        body, media_type, headers = service.encode(model, disp, (48, 24), fmt, "magma")
        assert body == open(files[kind], "rb").read()
        assert headers["X-Depth-Units"] == units and headers["X-Image-Size"] == "48x24"
        assert float(headers["X-Depth-Scale-Factor"]) == model.scale_factor
        meaning = "metres assume the training camera" if metric else "depth up to an unknown scale"
        assert headers["X-Depth-Weights"] == "unknown"
        assert headers["X-Depth-Caption"].startswith("unknown training data; " + meaning)
    depth = np.load(io.BytesIO(service.encode(model, disp, (48, 24), "npy", "magma")[0]))
    scaled = 1 / 100.0 + (1 / 0.1 - 1 / 100.0) * image_io.resize_map(disp, (48, 24)).astype(np.float64)
    np.testing.assert_allclose(depth, model.scale_factor / scaled, rtol=1e-6)
    assert os.path.getsize(files["depth_png"]) > 0


def png_bytes(size, exif_block=None):
    buffer = io.BytesIO()
    extra = {} if exif_block is None else {"exif": exif_block}
    Image.fromarray(np.random.default_rng(3).integers(0, 255, size[::-1] + (3,), dtype=np.uint8)).save(
        buffer, "PNG", **extra)
    return buffer.getvalue()


def test_metric_depth_rescaled_by_the_upload_s_exif_as_predict_writes_it(tmp_path):
    width, height, f35 = 64, 48, 28
    train = {"fx": 40.0, "fy": 40.0, "cx": 32.0, "cy": 24.0, "width": width, "height": height}
    tags = Image.Exif()
    tags[0x010F] = "Phone"                 # Make (a PNG's EXIF needs a tag in IFD0 to be written at all)
    tags.get_ifd(exif.EXIF_IFD)[exif.FOCAL_35] = f35
    data = png_bytes((width, height), tags)
    ratio = f35 * np.hypot(width, height) / np.hypot(36, 24) / train["fx"]   # the 35 mm rule, both at one width
    kitti = Provenance(provenance.training_record({"dataset": "kitti", "use_stereo": True}), True)
    model = SimpleNamespace(scale_factor=5.4, metric=True, min_depth=0.1, max_depth=100.0, name="w",
                            focal=FocalRescale(PhotoCameras(None, train)), provenance=kitti)
    image, scale = service.read_photo(model, data, "image/png", 10 ** 6)
    assert scale.camera == "exif" and scale.focal_ratio == pytest.approx(ratio)
    assert scale.factor == pytest.approx(5.4 * ratio)
    # predict.py's files of the same photo (photo_loop, the focal rescaling from its EXIF)
    (tmp_path / "p.png").write_bytes(data)
    disp = np.random.default_rng(4).uniform(0.05, 0.95, (16, 32)).astype(np.float32)
    out = OutputOptions(str(tmp_path / "out"), 5.4, focal=FocalRescale(PhotoCameras(None, train)), provenance=kitti)
    result = photo_loop.predict_photos([str(tmp_path / "p.png")], lambda photo: disp, out)
    files = result.written[0][1]
    body, _, headers = service.encode(model, disp, image.size, "npy", "magma", scale)
    assert body == open(files["depth_npy"], "rb").read()
    record = json.loads(open(files["depth_json"]).read())
    assert float(headers["X-Depth-Scale-Factor"]) == pytest.approx(record["depth_scale_factor"], rel=1e-5)
    assert float(headers["X-Depth-Focal-Rescale"]) == pytest.approx(record["focal_rescale"], rel=1e-5)
    assert headers["X-Depth-Camera"] == "exif"
    # the same caption: KITTI-trained metres, with the caveat that this photo's camera differs
    assert headers["X-Depth-Caption"] == record["caption"] and "this photo's camera differs" in record["caption"]
    assert headers["X-Depth-Weights"] == record["weights"] == "trained"
    # no EXIF focal length: the training camera's depth; no focal rescaling (relative depth, an explicit factor)
    assert service.read_photo(model, png_bytes((width, height)), "image/png", 10 ** 6)[1] == (5.4, 1.0, "training")
    assert service.read_photo(NO_FOCAL, data, "image/png", 10 ** 6)[1] == (1.0, 1.0, "training")
    with pytest.raises(service.RequestError) as e:
        service.read_photo(model, png_bytes((width, height), b"MM\x00*garbage"), "image/png", 10 ** 6)
    assert e.value.status == 400 and "corrupt EXIF" in e.value.message and "\n" not in e.value.message
