"""deployment/video_predictor.py: the stateful video predictor gives each frame's depth as Predictor does
(raw), per frame at once without temporal, and with temporal in order half_window frames later, one colour
range, the flicker summary at the end."""
import numpy as np

from deployment import Predictor
from deployment.video_predictor import VideoPredictor
from eval_fixtures import split_image_paths, synthetic_kitti, tamed_weights  # noqa: F401
from utils.geometry.stabilise import StabiliserOptions


def test_video_predictor_streams_frames_in_order(synthetic_kitti, tamed_weights):  # noqa: F811
    _, paths = split_image_paths(synthetic_kitti)
    eager = Predictor(tamed_weights)
    expected = [eager.depth(p) for p in paths]

    per_frame = VideoPredictor(tamed_weights, temporal=False)
    for i, path in enumerate(paths):
        (out,) = per_frame.push(path, item=i)
        assert out.index == out.item == i and out.correction == 1.0
        np.testing.assert_array_equal(out.depth, expected[i])
    assert per_frame.flush() == []

    video = VideoPredictor(tamed_weights, options=StabiliserOptions(metric=eager.metric, half_window=2))
    out = []
    for i, path in enumerate(paths):
        ready = video.push(path, item=i)
        assert len(ready) == (1 if i >= 2 else 0)
        out += ready
    out += video.flush()
    assert [o.index for o in out] == [o.item for o in out] == list(range(len(paths)))
    assert len({o.colour_range for o in out}) == 1
    for o in out:
        np.testing.assert_array_equal(o.raw, expected[o.index])
        assert o.depth.shape == o.raw.shape and np.isfinite(o.depth).all() and (o.depth > 0).all()
    report = video.summary()
    assert report.frames == len(paths) and "flicker" in report.describe()
