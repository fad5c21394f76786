"""predict.py and inference.py on videos: N frames in, N per-frame outputs and an N-frame depth video out,
streamed; unreadable videos and empty folders refused with one line and nothing written."""
import os

import cv2
import numpy as np
import pytest

import predict
from deployment import Predictor
from eval_fixtures import NET_H, NET_W, synthetic_kitti, tamed_weights  # noqa: F401
from test_export import exported, weights  # noqa: F401  (session fixtures: tamed weights, exported folders)
from utils.io import video
from utils.io.output_options import OutputOptions

FRAMES, H, W = 3, 64, 96


def write_video(path, frames=FRAMES, h=H, w=W):
    """A small video of moving gradients (Motion JPEG in .avi, MPEG-4 in .mp4); returns the RGB frames."""
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if str(path).endswith(".avi") else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, 7.0, (w, h))
    assert writer.isOpened()
    y, x = np.mgrid[0:h, 0:w]
    out = []
    for i in range(frames):
        rgb = np.stack([(x * 2 + i * 20) % 256, (y * 3) % 256, np.full_like(x, 40 * i)], -1).astype(np.uint8)
        writer.write(rgb[..., ::-1].copy())
        out.append(rgb)
    writer.release()
    return out


def read_video(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame[..., ::-1])
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return frames, fps


def test_layouts():
    frame, colours = np.zeros((4, 6, 3), np.uint8), np.ones((4, 6, 3), np.uint8)
    assert video.compose(frame, colours, "auto").shape == (4, 12, 3)      # 6 < 2 x 4: side by side
    assert video.compose(frame, colours, "stacked").shape == (8, 6, 3)
    wide = np.zeros((4, 8, 3), np.uint8)
    np.testing.assert_array_equal(video.compose(wide, wide + 1, "auto")[4:], wide + 1)  # 8 >= 2 x 4: stacked
    np.testing.assert_array_equal(video.compose(frame, colours, "side")[:, 6:], colours)


def test_video_gives_one_output_per_frame_and_a_depth_video(tamed_weights, tmp_path, capsys):  # noqa: F811
    source = tmp_path / "drive.avi"
    written = write_video(source)
    out = tmp_path / "out"
    shape = (2 * H, W)
    predict.main(["--load_weights_folder", tamed_weights, "--color_path", str(source), "--output_dir", str(out),
                  "--video_layout", "stacked"])
    assert sorted(os.listdir(out)) == ["drive", "drive_depth.avi"]  # no temporary left behind
    names = sorted(os.listdir(out / "drive"))
    assert names == sorted(f"drive_{i:06d}_{k}" for i in range(FRAMES) for k in ("disp.npy", "disp.jpeg", "depth.npy"))
    frames, fps = read_video(out / "drive_depth.avi")
    assert len(frames) == FRAMES and fps == pytest.approx(7.0)
    for i, frame in enumerate(frames):
        assert frame.shape == shape + (3,)
        disp = np.load(out / "drive" / f"drive_{i:06d}_disp.npy")
        assert disp.shape == (NET_H, NET_W) and np.load(out / "drive" / f"drive_{i:06d}_depth.npy").shape == (H, W)
        # the left / top half is the input frame (MJPG: lossy, so a loose bound)
        assert np.abs(frame[:H, :W].astype(int) - written[i].astype(int)).mean() < 12
    assert f"{FRAMES} frame(s) written" in capsys.readouterr().out


def test_unreadable_video_and_empty_folder_are_one_line_and_write_nothing(tamed_weights, tmp_path,  # noqa: F811
                                                                         capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 but nothing else" * 20)
    empty = tmp_path / "empty"
    empty.mkdir()
    for path, expect in [(broken, f"cannot read video {broken}"), (empty, "holds no images")]:
        with pytest.raises(SystemExit) as e:
            predict.main(["--load_weights_folder", tamed_weights, "--color_path", str(path),
                          "--output_dir", str(tmp_path / "out")])
        message = str(e.value.code)
        assert message.startswith("predict.py: error: ") and expect in message and "\n" not in message
    assert sorted(os.listdir(tmp_path)) == ["broken.mp4", "empty"] and os.listdir(empty) == []
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("ext", [".avi", ".mp4"])
def test_frames_in_order_and_a_failure_mid_video_leaves_earlier_outputs_untouched(tmp_path, ext):
    source = tmp_path / f"clip{ext}"
    write_video(source, frames=3)
    out = tmp_path / "out"
    calls = []

    def predict_disp(image):  # fails on the third frame
        calls.append(image.size)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return np.full((NET_H, NET_W), 0.5, np.float32)

    def mean_disp(image):  # a stand-in network: each frame's own mean colour, so frames are told apart
        return np.full((NET_H, NET_W), np.asarray(image).mean() / 255, np.float32)

    frames_written = video.predict_video(str(source), "clip", mean_disp, OutputOptions(str(out)))[0]
    decoded = read_video(source)[0]
    assert frames_written == len(decoded) == 3
    for i, frame in enumerate(decoded):  # frame i's files hold frame i's prediction: in order, none skipped
        np.testing.assert_allclose(np.load(out / "clip" / f"clip_{i:06d}_disp.npy"), frame.mean() / 255, rtol=1e-5)
    before = {n: os.path.getmtime(out / "clip" / n) for n in os.listdir(out / "clip")}
    with pytest.raises(RuntimeError):
        video.predict_video(str(source), "clip", predict_disp, OutputOptions(str(out)))
    assert sorted(os.listdir(out)) == ["clip", f"clip_depth{ext}"] and len(read_video(out / f"clip_depth{ext}")[0]) == 3
    assert {n: os.path.getmtime(out / "clip" / n) for n in os.listdir(out / "clip")} == before
    np.testing.assert_allclose(np.load(out / "clip" / "clip_000002_disp.npy"), decoded[2].mean() / 255, rtol=1e-5)


def test_inference_streams_the_same_video_outputs_and_points_as_predict(exported, weights,  # noqa: F811
                                                                        tmp_path, capsys):
    """inference.py shares the loop: same per-frame files (and point clouds) as predict.py; the deployed
    DepthPredictor's disparity / points agree with Predictor's."""
    import inference
    from deployment import DepthPredictor

    source = tmp_path / "clip.avi"
    write_video(source, frames=3)
    out = tmp_path / "out"
    inference.main(["--infer_files_dir", exported["combined"], "--backend", "onnxruntime", "--color_path",
                    str(source), "--output_dir", str(out), "--save_ply", "--no-temporal"])
    printed = capsys.readouterr().out
    assert printed.count("point clouds: KITTI's camera") == 1 and "3 frame(s) written" in printed
    assert sorted(os.listdir(out / "clip")) == sorted(
        f"clip_{i:06d}_{k}" for i in range(3) for k in ("disp.npy", "disp.jpeg", "depth.npy", "points.ply"))
    assert len(read_video(out / "clip_depth.avi")[0]) == 3
    frame = read_video(source)[0][2]
    deployed, eager = DepthPredictor(exported["combined"], backend="onnxruntime"), Predictor(weights)
    np.testing.assert_allclose(np.load(out / "clip" / "clip_000002_depth.npy"), eager.depth(frame), rtol=2e-3)
    np.testing.assert_allclose(deployed.disparity(frame), eager.disparity(frame), atol=1e-4)
    (p1, c1), (p2, c2) = deployed.points(frame), eager.points(frame)
    np.testing.assert_allclose(p1, p2, rtol=2e-3, atol=1e-4)
    np.testing.assert_array_equal(c1, c2)
