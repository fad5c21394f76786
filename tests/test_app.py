"""app.py, the web page, driven in a real browser: app.py runs as a subprocess on a free loopback port with
tamed weights; headless Chromium (Debian's `chromium`, through Playwright) uploads a photo, and the colour
map the page shows and the depth it offers for download are compared with predict.py's files for the same
photo. Unreadable and oversized photos must get a message; a video must come back as a depth video. The
run also saves the page's screenshot as app.png in its tmp folder (copy it to docs/app.png, docs/page_and_notebook.md's
picture, to refresh that; tests never write into the checkout). In CI (CI=true) a missing browser is a
failure, elsewhere a skip that says how to install it. The page tests are marked slow: app.py's start,
the tamed weights and the browser take ~20 s before the first one runs."""
import io
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zipfile

import cv2
import numpy as np
import pytest
from PIL import Image

import app
import predict
from deployment import Predictor
from eval_fixtures import split_image_paths, synthetic_kitti, tamed_weights  # noqa: F401
from utils.geometry import pointcloud

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
PIXEL_LIMIT = 100_000   # --max_image_pixels of the test page: the 416 x 128 test photo passes, 400 x 300 does not
WAIT_MS = 60_000        # every wait on the page is bounded


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tamed_weights, tmp_path_factory):  # noqa: F811
    """URL of app.py serving the tamed weights; the process is ended after the module's tests."""
    tmp = tmp_path_factory.mktemp("app")
    port = free_port()
    env = dict(os.environ, GRADIO_TEMP_DIR=str(tmp / "gradio"), GRADIO_ANALYTICS_ENABLED="False")
    log_path = tmp / "app.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "app.py", "--load_weights_folder", tamed_weights, "--port", str(port),
                                 "--max_image_pixels", str(PIXEL_LIMIT)], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"app.py did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def browser():
    if not os.path.isfile(CHROMIUM):
        message = "Chromium not found: apt-get install chromium (what .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # WebGL by SwiftShader (the CPU): the 3-D view renders without a GPU
        chromium = p.chromium.launch(executable_path=CHROMIUM, timeout=WAIT_MS,
                                     args=["--use-angle=swiftshader", "--enable-unsafe-swiftshader"])
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(browser, url, width=1000):
    page = browser.new_page(viewport={"width": width, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    page.wait_for_selector("#photo input[type=file]", state="attached")
    return page


def fetch(page, url):
    response = page.request.get(url, timeout=WAIT_MS)
    assert response.ok, url
    return response.body()


def ply_vertices(data):
    header, body = data.split(b"end_header\n", 1)
    count = int(header.split(b"element vertex ")[1].split(b"\n")[0])
    return np.frombuffer(body, pointcloud.PLY_DTYPE, count)


def read_glb(data):
    """(glTF JSON, N x 3 positions, N x 4 uint8 colours) of app.write_glb's file, read by the glTF layout."""
    magic, version, length = struct.unpack("<III", data[:12])
    assert (magic, version, length) == (0x46546C67, 2, len(data)) and length % 4 == 0
    json_length, = struct.unpack("<I", data[12:16])
    gltf = json.loads(data[20:20 + json_length])
    blob = data[20 + json_length + 8:]
    n = gltf["accessors"][0]["count"]
    xyz = np.frombuffer(blob[:12 * n], "<f4").reshape(n, 3)
    return gltf, xyz, np.frombuffer(blob[12 * n:16 * n], np.uint8).reshape(n, 4)


@pytest.mark.slow
def test_photo_on_the_page_equals_predict_py(browser, server, synthetic_kitti, tamed_weights, tmp_path):  # noqa: F811
    _, paths = split_image_paths(synthetic_kitti)
    photo = tmp_path / "street.jpg"
    shutil.copy(paths[3], photo)
    page = open_page(browser, server)
    page.set_input_files("#photo input[type=file]", str(photo))
    page.wait_for_selector("#downloads a[download='street_points.ply']")
    page.wait_for_selector("#cloud canvas")
    links = {a.get_attribute("download"): a.get_attribute("href") for a in page.query_selector_all("#downloads a")}
    assert sorted(links) == ["street_depth.npy", "street_depth.png", "street_points.ply"]
    shown = [img.get_attribute("src") for img in page.query_selector_all("#depth_view img")]
    colour_map = [s for s in shown if s.endswith("street_disp.jpeg")]
    assert len(colour_map) == 1, shown

    # predict.py on the same file, in this process
    out = tmp_path / "predict_out"
    predict.main(["--load_weights_folder", tamed_weights, "--color_path", str(photo), "--output_dir", str(out),
                  "--save_png16", "--save_ply"])
    expected_map = np.asarray(Image.open(out / "street_disp.jpeg")).astype(int)
    page_map = np.asarray(Image.open(io.BytesIO(fetch(page, colour_map[0])))).astype(int)
    assert page_map.shape == expected_map.shape == (128, 416, 3)
    assert np.abs(page_map - expected_map).max() <= 1   # the same JPEG writer; 1 grey level for thread-order float
    expected_depth = np.load(out / "street_depth.npy")
    page_depth = np.load(io.BytesIO(fetch(page, links["street_depth.npy"])))
    assert page_depth.shape == expected_depth.shape and page_depth.dtype == np.float32
    np.testing.assert_allclose(page_depth, expected_depth, rtol=1e-5)
    png = cv2.imdecode(np.frombuffer(fetch(page, links["street_depth.png"]), np.uint8), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint16
    assert np.abs(png.astype(int) - cv2.imread(str(out / "street_depth.png"), cv2.IMREAD_UNCHANGED)).max() <= 1
    page_ply = ply_vertices(fetch(page, links["street_points.ply"]))
    expected_ply = ply_vertices((out / "street_points.ply").read_bytes())
    assert len(page_ply) == len(expected_ply) == 128 * 416
    np.testing.assert_allclose(page_ply["z"], expected_ply["z"], rtol=1e-5)
    # the 3-D view: every pixel of this small photo (below app.VIEW_POINTS), z = -depth in glTF's axes
    _, view_xyz, view_rgba = read_glb(fetch(page, page.get_attribute("#cloud a", "href")))
    np.testing.assert_allclose(-view_xyz[:, 2], expected_depth.ravel(), rtol=1e-5)
    np.testing.assert_array_equal(view_rgba[:, :3], np.asarray(Image.open(photo)).reshape(-1, 3))
    statement = page.inner_text("#depth_statement")
    assert "Metric depth (x5.4)" in statement   # weights without opt.json use_stereo
    assert "Unknown training data; metres assume the training camera" in statement   # no training data record

    page.set_viewport_size({"width": 1000, "height": 1000})
    image = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")
    image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(tmp_path / "app.png", optimize=True)
    page.close()


@pytest.mark.slow
@pytest.mark.parametrize("name, write, message", [
    ("broken.jpg", lambda p: p.write_bytes(b"\xff\xd8 not really a jpeg"), "broken.jpg: not a readable image"),
    ("large.png", lambda p: Image.new("RGB", (400, 300), (90, 120, 150)).save(p),
     "large.png: 400 x 300 = 0.1 MP is more than this page accepts"),
])
def test_bad_photos_get_a_message(browser, server, tmp_path, name, write, message):
    photo = tmp_path / name
    write(photo)
    page = open_page(browser, server)
    page.set_input_files("#photo input[type=file]", str(photo))
    page.wait_for_selector("#photo_summary :text('Not used')")   # in the page, where it stays (no toast)
    assert message in page.inner_text("#photo_summary")
    assert page.query_selector_all("#downloads a") == [] and page.query_selector_all("[data-testid=toast-body]") == []
    page.close()


@pytest.mark.slow
def test_video_tab_returns_the_depth_video(browser, server, synthetic_kitti, tamed_weights, tmp_path):  # noqa: F811
    _, paths = split_image_paths(synthetic_kitti)
    frames = [np.asarray(Image.open(p)) for p in paths[:3]]
    clip = tmp_path / "drive.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, frames[0].shape[1::-1])
    for frame in frames:
        writer.write(frame[..., ::-1])
    writer.release()
    page = open_page(browser, server)
    page.get_by_role("tab", name="Video").click()
    page.set_input_files("#video_in input[type=file]", str(clip))
    page.wait_for_selector("#video_in a[download='drive.avi']")
    page.click("#video_run")
    page.wait_for_selector("#video_out video")
    links = {a.get_attribute("download"): a.get_attribute("href") for a in page.query_selector_all("a[download]")}
    assert "drive_depth.avi" in links and "drive_frames.zip" in links, links
    with zipfile.ZipFile(io.BytesIO(fetch(page, links["drive_frames.zip"]))) as z:
        depths = [np.load(io.BytesIO(z.read(f"drive_{i:06d}_depth_raw.npy"))) for i in range(3)]
        aligned = [np.load(io.BytesIO(z.read(f"drive_{i:06d}_depth.npy"))) for i in range(3)]
    assert [a.shape for a in aligned] == [d.shape for d in depths]   # temporal (the tab's default): aligned
    assert "flicker" in page.inner_text("body")
    # each frame's raw depth is the Predictor's depth of that frame as the video decoder returned it
    capture = cv2.VideoCapture(str(clip))
    predictor = Predictor(tamed_weights)
    for depth in depths:
        ok, bgr = capture.read()
        assert ok
        np.testing.assert_allclose(depth, predictor.depth(bgr[..., ::-1].copy()), rtol=1e-5)
    capture.release()
    preview = page.get_attribute("#video_out video", "src")
    assert preview.endswith(".webm")
    page.close()


def test_glb_holds_the_points_in_gltf_axes(tmp_path):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(5, 3)).astype(np.float32)
    colours = rng.integers(0, 256, (5, 3), dtype=np.uint8)
    app.write_glb(tmp_path / "c.glb", points, colours)
    gltf, xyz, rgba = read_glb((tmp_path / "c.glb").read_bytes())
    np.testing.assert_array_equal(xyz, points * [1, -1, -1])   # camera (x right, y down, z ahead) -> glTF
    np.testing.assert_array_equal(rgba[:, :3], colours)
    assert (rgba[:, 3] == 255).all() and gltf["meshes"][0]["primitives"][0]["mode"] == 0   # POINTS
    np.testing.assert_allclose(gltf["accessors"][0]["min"], xyz.min(0))


def test_view_cloud_keeps_a_grid_of_the_full_cloud():
    depth = np.arange(1, 1 + 40 * 50, dtype=np.float32).reshape(40, 50)
    rgb = np.zeros((40, 50, 3), np.uint8)
    points, _ = app.view_cloud(depth, rgb, (30.0, 30.0, 25.0, 20.0), max_points=500)
    full, _ = pointcloud.cloud(depth, rgb, (30.0, 30.0, 25.0, 20.0))
    # stride ceil(sqrt(2000 / 500)) = 2: rows and columns 0, 2, 4, ...
    np.testing.assert_array_equal(points, full.reshape(40, 50, 3)[::2, ::2].reshape(-1, 3))
    assert len(points) <= 500


@pytest.fixture(scope="module")
def page_service(synthetic_kitti, tamed_weights, tmp_path_factory):  # noqa: F811
    """(service, opt) of the page on weights recorded as trained on the synthetic scene, and its request folders."""
    weights = tmp_path_factory.mktemp("demo") / "weights"
    shutil.copytree(tamed_weights, weights)
    opt = json.loads((weights / "opt.json").read_text())
    (weights / "opt.json").write_text(json.dumps({**opt, "dataset": "synthetic", "split": "synthetic"}))
    page_opt = app.options.parse("app", ["--load_weights_folder", str(weights), "--max_image_pixels",
                                         str(PIXEL_LIMIT), "--max_video_frames", "2"])
    return app.Service(page_opt), page_opt


def upload(path, name):
    """A Gradio file payload (FileData) of a file kept under a temporary folder, as the page receives it."""
    return {"path": str(path), "orig_name": name}


def test_demonstration_weights_are_captioned_on_the_page(page_service, synthetic_kitti, tmp_path):  # noqa: F811
    service, opt = page_service
    assert "Demonstration weights trained on the synthetic street scene" in service.depth_statement()
    assert "metres" not in service.depth_statement().lower()
    _, paths = split_image_paths(synthetic_kitti)
    shown, _, downloads, summary = app.photo_handler(service, app.Requests(), opt)(upload(paths[0], "cup.jpg"),
                                                                                    "magma")
    # the numbers carry the caption, not a unit
    assert re.search(r"median [0-9.]+: demonstration weights trained on the synthetic street scene", summary), summary
    assert len(downloads) == 3 and shown[1].endswith("cup_disp.jpeg")


@pytest.mark.parametrize("name, write, message", [
    ("broken.jpg", lambda p: p.write_bytes(b"\xff\xd8 not really a jpeg"), "broken.jpg: not a readable image"),
    ("large.png", lambda p: Image.new("RGB", (400, 300), (90, 120, 150)).save(p, "PNG"),
     "large.png: 400 x 300 = 0.1 MP is more than this page accepts"),
])
def test_a_bad_photo_leaves_a_message_and_one_console_line(page_service, tmp_path, capsys, name, write, message):
    """The page's own handler: outputs cleared, the message in the summary (it stays; a toast would vanish),
    no server path in it, one line in the console and no traceback."""
    service, opt = page_service
    stored = tmp_path / "gradio" / "a1b2c3" / "upload_x7"   # Gradio keeps uploads under hashed names
    stored.parent.mkdir(parents=True)
    write(stored)
    outputs = app.photo_handler(service, app.Requests(), opt)(upload(stored, name), "magma")
    assert outputs[:3] == (None, None, None)
    assert outputs[3].startswith("**Not used**: ") and message in outputs[3]
    assert str(tmp_path) not in outputs[3] and "upload_x7" not in outputs[3]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err and str(tmp_path) not in err


def test_a_bad_video_or_none_leaves_a_message(page_service, tmp_path, capsys):
    service, opt = page_service
    on_video = app.video_handler(service, app.Requests(), opt)
    assert on_video(None, "magma", "auto") == (None, None, "**Not used**: upload a video first.")
    fake = tmp_path / "tmpq1" / "clip"
    fake.parent.mkdir()
    fake.write_bytes(b"not a video at all")
    outputs = on_video(upload(fake, "holiday.mp4"), "magma", "auto")
    assert outputs[:2] == (None, None) and "holiday.mp4: not a video this page can read" in outputs[2]
    assert str(tmp_path) not in outputs[2] and capsys.readouterr().err.count("\n") == 1


def test_an_unexpected_error_keeps_the_page_usable(page_service, monkeypatch, tmp_path, caplog):
    """A bug (not the visitor's mistake) logs its traceback and tells the visitor in the page."""
    service, opt = page_service
    monkeypatch.setattr(app, "photo_outputs", lambda *a: 1 / 0)
    outputs = app.photo_handler(service, app.Requests(), opt)(upload(tmp_path / "x.jpg", "x.jpg"), "magma")
    assert outputs[:3] == (None, None, None) and "Something went wrong on the server" in outputs[3]
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)
