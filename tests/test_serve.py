"""serve.py's service on a local Ray (one module-scoped start): answers equal to Predictor's, batching
that changes no answer, every bad request refused with its 4xx and one JSON line, a full queue answered
503 without hanging, a killed replica replaced, Ray gone at the end; and the project importing without
Ray."""
import io
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from PIL import Image

import options
import predict
from deployment import Predictor
from eval_fixtures import split_image_paths, synthetic_kitti, tamed_weights  # noqa: F401
from tests.support.local_ray import children, free_port, shutdown
from utils.cameras import exif
from utils.io import image_io

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_PIXELS = 200_000
QUEUE = 12   # requests the proxy queues beyond the replica's 8


@pytest.fixture(scope="module")
def service(tamed_weights):  # noqa: F811
    """URL of the service on tamed_weights: batches of up to 4 requests (100 ms wait), 8 requests in the
    replica and 12 more in the proxy's queue; Ray and its processes gone at the end."""
    from deployment import ray_cluster, ray_serve

    port = free_port()
    opt = options.parse("serve", ["--load_weights_folder", tamed_weights, "--port", str(port), "--worker_cpus", "1",
                                  "--max_batch_size", "4", "--batch_wait_ms", "100", "--max_ongoing_requests", "8",
                                  "--max_queued_requests", str(QUEUE), "--max_upload_mb", "1",
                                  "--max_image_pixels", str(MAX_PIXELS)])
    before = children()
    ray_cluster.connect()
    try:
        ray_serve.start(opt)
        yield f"http://127.0.0.1:{port}"
    finally:
        assert shutdown(before=before) == []   # no stray Ray process


@pytest.fixture(scope="module")
def photos(synthetic_kitti, tmp_path_factory):  # noqa: F811
    """16 distinct photos (the synthetic test frames, flipped, cropped) as JPEG files."""
    _, paths = split_image_paths(synthetic_kitti)
    folder = tmp_path_factory.mktemp("serve_photos")
    out = []
    for i in range(16):
        image = Image.open(paths[i % len(paths)])
        if i >= len(paths):
            image = image.transpose(Image.FLIP_LEFT_RIGHT).crop((i, 0, image.width - 3 * i, image.height))
        out.append(str(folder / f"photo{i}.jpg"))
        image.save(out[-1], quality=95)
    return out


def post(url, path, fmt=None, **kwargs):
    with open(path, "rb") as f:
        return requests.post(f"{url}/depth", data=f.read(), params={"format": fmt} if fmt else None, timeout=60,
                             **kwargs)


def npy(response):
    assert response.status_code == 200, response.text
    return np.load(io.BytesIO(response.content))


def assert_refusal(response, status, words):
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    assert response.text.endswith("\n") and response.text.count("\n") == 1
    assert words in json.loads(response.text)["error"]


@pytest.mark.slow   # the service: a local Ray and Serve
def test_depth_equals_predictor(service, photos, tamed_weights, tmp_path):  # noqa: F811
    predictor = Predictor(tamed_weights)
    photo = photos[0]
    depth = predictor.depth(photo)
    got = npy(post(service, photo, "npy"))
    assert got.shape == depth.shape and got.dtype == np.float32
    disp = predictor.predict_disp(photo)
    np.testing.assert_allclose(npy(post(service, photo, "disp_npy")), disp, atol=1e-6)
    # depth = 1 / (a + b disp): 1e-7 of float rounding in these untrained weights' near-zero disparities
    # is ~1e-4 of depth
    np.testing.assert_allclose(got, depth, rtol=2e-4)
    # the 16-bit PNG is KITTI's depth x 256 (numpy's own rounding here), with headers saying so
    png = post(service, photo)
    assert png.headers["content-type"] == "image/png" and png.headers["x-depth-units"] == "metres"
    assert float(png.headers["x-depth-scale-factor"]) == predictor.scale_factor
    assert png.headers["x-depth-png-scale"] == "256"
    assert png.headers["x-depth-camera"] == "training" and png.headers["x-depth-focal-rescale"] == "1"   # no EXIF
    # the photo with an EXIF focal length: its metric depth rescaled as Predictor and predict.py rescale it
    tags = Image.Exif()
    tags[0x010F] = "Phone"   # Make
    tags.get_ifd(exif.EXIF_IFD)[exif.FOCAL_35] = 28
    (tmp_path / "exif").mkdir()
    tagged = str(tmp_path / "exif" / "tagged.jpg")
    Image.open(photo).save(tagged, quality=95, exif=tags)
    answer = post(service, tagged, "npy")
    np.testing.assert_allclose(npy(answer), Predictor(tamed_weights).depth(tagged), rtol=2e-4)
    w, h = Image.open(tagged).size
    ratio = 28 * np.hypot(w, h) / np.hypot(36, 24) / w / 0.58   # 35 mm rule; KITTI's camera, fx = 0.58 W
    assert answer.headers["x-depth-camera"] == "exif"
    assert float(answer.headers["x-depth-focal-rescale"]) == pytest.approx(ratio, rel=1e-5)
    assert float(answer.headers["x-depth-scale-factor"]) == pytest.approx(predictor.scale_factor * ratio, rel=1e-5)
    expect = np.clip(np.round(depth.astype(np.float64) * 256), 1, 65535)
    served = np.asarray(Image.open(io.BytesIO(png.content))).astype(np.float64)
    assert (np.abs(served - expect) <= 2e-4 * expect + 1).all()
    # predict.py's <stem>_depth.png (the same up to that rounding), and the colour map of its <stem>_disp.jpeg
    predict.main(["--load_weights_folder", tamed_weights, "--color_path", photo, "--output_dir", str(tmp_path),
                  "--save_png16"])
    written = np.asarray(Image.open(tmp_path / "photo0_depth.png")).astype(np.float64)
    assert served.shape == written.shape and (np.abs(served - written) <= 2e-4 * written + 1).all()
    colour = requests.post(f"{service}/depth", data=open(photo, "rb").read(), params={"colormap": "gray"}, timeout=60)
    grey = np.asarray(Image.open(io.BytesIO(colour.content)))[..., 0]
    full = image_io.resize_map(disp, Image.open(photo).size).astype(np.float64)
    t = np.clip((full - full.min()) / (np.percentile(full, 95) - full.min()), 0, 1)
    assert np.abs(grey.astype(int) - np.minimum(t * 256, 255).astype(int)).max() <= 1
    # a multipart form gives the same answer as the raw body
    with open(photo, "rb") as f:
        form = requests.post(f"{service}/depth", files={"image": ("p.jpg", f, "image/jpeg")},
                             params={"format": "npy"}, timeout=60)
    np.testing.assert_array_equal(npy(form), got)
    info = requests.get(f"{service}/info", timeout=10).json()
    assert info["input_size"] == {"height": predictor.height, "width": predictor.width}
    assert info["metric"] is True and info["precision"] == "fp32"
    assert info["backend"] == f"{predictor.backend} (compiled)"   # predict.py's compiled program, as Predictor


@pytest.mark.slow   # the service: a local Ray and Serve
def test_concurrent_batched_answers_equal_one_by_one(service, photos):
    alone = [npy(post(service, p, "disp_npy")) for p in photos]
    with ThreadPoolExecutor(16) as pool:
        together = list(pool.map(lambda p: npy(post(service, p, "disp_npy")), photos))
    for a, b in zip(alone, together):
        np.testing.assert_allclose(b, a, atol=1e-6)
    # the burst really was batched (else this test would not test batching)
    batches = requests.get(f"{service}/info", timeout=10).json()["replica_batches"]
    assert max(int(k) for k in batches) > 1


@pytest.mark.slow   # the service: a local Ray and Serve
def test_bad_requests_refused_and_service_still_answers(service, photos):
    jpeg = open(photos[0], "rb").read()
    url = f"{service}/depth"
    big = io.BytesIO()
    Image.new("RGB", (1000, 1000), (90, 120, 150)).save(big, "PNG")   # 1 MP in a few kB
    cases = [
        (requests.post(url, data=b"", timeout=30), 400, "empty body"),
        (requests.post(url, data=b"plain text, not a photo", timeout=30), 400, "cannot read image"),
        (requests.post(url, data=jpeg[: len(jpeg) // 2], timeout=30), 400, "cannot read image"),
        (requests.post(url, data=os.urandom(2 << 20), timeout=30), 413, "max_upload_mb"),
        (requests.post(url, data=(os.urandom(1 << 16) for _ in range(40)), timeout=30), 413, "max_upload_mb"),
        (requests.post(url, data=big.getvalue(), timeout=30), 413, f"more than {MAX_PIXELS} pixels"),
        (requests.post(url, data=jpeg, params={"format": "tiff"}, timeout=30), 400, "unknown format"),
        (requests.post(url, data=jpeg, params={"colormap": "rainbow"}, timeout=30), 400, "unknown colormap"),
        (requests.post(url, data=jpeg, params={"format": "npy", "colormap": "gray"}, timeout=30), 400, "colormap"),
        (requests.post(url, data=jpeg, params={"scale": "2"}, timeout=30), 400, "unknown query parameter"),
        (requests.post(url, files={"other": ("x.txt", b"")}, timeout=30), 400, "empty"),
        (requests.get(url, timeout=30), 405, "takes POST"),
        (requests.get(f"{service}/nothing", timeout=30), 404, "no route"),
    ]
    for response, status, words in cases:
        assert_refusal(response, status, words)
    assert requests.get(f"{service}/healthz", timeout=10).json() == {"status": "ok"}
    assert npy(post(service, photos[1], "npy")).shape == Image.open(photos[1]).size[::-1]


@pytest.mark.slow   # the service: a local Ray and Serve
def test_overload_answers_503_and_nothing_hangs(service, photos):
    """A burst of 48 against 8 places in the replica and 12 in the queue: the rest get 503 at once, with
    Retry-After, and every request is answered (none waits in an unbounded queue)."""
    started = time.monotonic()
    with ThreadPoolExecutor(48) as pool:
        answers = list(pool.map(lambda p: post(service, p, "npy"), photos * 3))
    elapsed = time.monotonic() - started
    codes = [a.status_code for a in answers]
    assert set(codes) == {200, 503}, codes
    assert codes.count(200) >= 8, codes   # the replica's places were used, not refused wholesale
    assert all(a.headers.get("retry-after") == "1" for a in answers if a.status_code == 503)
    assert elapsed < 60   # every request answered; none waited in an unbounded queue


@pytest.mark.slow   # the service: a local Ray and Serve
def test_killed_replica_is_replaced(service, photos):
    """Runs last: the replica's actor killed (a crash, as Ray sees one), Serve starts another."""
    import ray
    from ray import serve

    def replicas():
        return {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                if a["name"].startswith("SERVE_REPLICA::")}

    (killed,) = replicas()
    ray.kill(ray.get_actor(killed, namespace="serve"), no_restart=True)
    deadline, replaced = time.monotonic() + 120, False
    while time.monotonic() < deadline and not replaced:
        time.sleep(1)
        replaced = bool(replicas() - {killed}) and serve.status().applications["mlda_depth"].status == "RUNNING"
    assert replaced, "the killed replica was not replaced"
    assert requests.get(f"{service}/healthz", timeout=60).status_code == 200
    assert post(service, photos[2], "npy").status_code == 200


def test_serve_without_ray_says_how_to_install(monkeypatch, tamed_weights, capsys):  # noqa: F811
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(SystemExit) as e:
        options.parse("serve", ["--load_weights_folder", tamed_weights])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "pip install -r requirements-serve.txt" in err and err.count("\n") == 1


def test_options_refused_before_ray(tamed_weights, capsys):  # noqa: F811
    for argv, words in [([], "give one of --load_weights_folder"),
                        (["--load_weights_folder", tamed_weights, "--max_queued_requests", "0"], "bounded"),
                        (["--load_weights_folder", tamed_weights, "--max_batch_size", "8",
                          "--max_ongoing_requests", "4"], "at least --max_batch_size"),
                        (["--load_weights_folder", tamed_weights, "--replicas", "2", "--max_replicas", "1"],
                         "--max_replicas 1")]:
        with pytest.raises(SystemExit):
            options.parse("serve", argv)
        assert words in capsys.readouterr().err


def test_project_imports_without_ray():
    code = ("import sys, predict, inference, app, options, deployment, deployment.service, deployment.ray_cluster, "
            "utils.io.image_io, utils.io.photo_loop, deployment.ray_batch; import serve; "
            "sys.exit('ray imported' if any(m == 'ray' or m.startswith('ray.') for m in sys.modules) else 0)")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def serve_refusal(argv):
    """serve.main's exit message for `argv` in a fresh process, and whether that process imported Ray (this
    one has Ray running for the module's service)."""
    code = ("import json, sys, serve\n"
            "try:\n    serve.main(json.loads(sys.argv[1]))\n    message = None\n"
            "except SystemExit as e:\n    message = str(e.code)\n"
            "print(json.dumps([message, any(m == 'ray' or m.startswith('ray.') for m in sys.modules)]))")
    run = subprocess.run([sys.executable, "-c", code, json.dumps(argv)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_serve_refuses_a_taken_port_and_a_broken_export_before_ray(tamed_weights, tmp_path):  # noqa: F811
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        message, ray_imported = serve_refusal(["--load_weights_folder", tamed_weights, "--port", str(port)])
    assert f"127.0.0.1:{port} is already in use" in message and not ray_imported
    message, ray_imported = serve_refusal(["--infer_files_dir", str(tmp_path), "--port", str(free_port())])
    assert "no deploy.json" in message and "\n" not in message and not ray_imported
