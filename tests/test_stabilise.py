"""utils/geometry/stabilise.py: the streamed scale smoothing against a whole-sequence numpy computation of
its rule, one colour range for every frame, jitter removed from relative depth, metric depth kept metric,
scene cuts not smoothed across, the flicker figure, and memory that does not grow with the video."""
import tracemalloc

import numpy as np
import pytest

from utils.geometry.stabilise import StabiliserOptions, TemporalStabiliser, stabilise


def _scene(rng, h=48, w=64):
    """A depth map with structure (a ramp like a road plus random boxes), 2-60 m."""
    ramp = np.linspace(40, 3, h)[:, None] * np.ones((1, w))
    ramp[rng.uniform(size=(h, w)) < 0.2] = 60.0
    return ramp


def _frames(rng, n, jitter, drift=0.0):
    """n frames of one scene times a per-frame factor exp(jitter_t) and a slow drift exp(drift t)."""
    base = _scene(rng)
    return base, [base * np.exp(j + drift * t) for t, j in enumerate(jitter)]


def _expected_log_corrections(frames, half_window, limit=None):
    """The rule of the module docstring on the whole sequence at once (no cut): c = cumulative median of
    the pixel log ratios, m = centred mean over the frames within half_window, lambda = m - c."""
    logs = [np.log(f) for f in frames]
    c = np.concatenate([[0.0], np.cumsum([np.median(b - a) for a, b in zip(logs, logs[1:])])])
    m = np.array([c[max(0, t - half_window): t + half_window + 1].mean() for t in range(len(c))])
    lam = m - c
    return np.clip(lam, -limit, limit) if limit is not None else lam


def _run(frames, opt):
    stab = TemporalStabiliser(opt)
    out = []
    for i, f in enumerate(frames):
        got = stab.push(f, item=i)
        assert len(got) == (1 if i >= opt.half_window else 0)   # frames leave half_window frames later
        out += got
    out += stab.flush()
    return out, stab.summary()


def test_corrections_follow_the_rule_computed_on_the_whole_sequence():
    rng = np.random.default_rng(0)
    _, frames = _frames(rng, 30, rng.normal(0, 0.04, 30), drift=-0.01)
    opt = StabiliserOptions(half_window=3)
    out, _ = _run(frames, opt)
    assert [o.index for o in out] == [o.item for o in out] == list(range(30))
    expected = _expected_log_corrections(frames, 3)
    assert np.allclose([np.log(o.correction) for o in out], expected, atol=1e-12)
    for o, f in zip(out, frames):
        assert o.raw is not f and np.array_equal(o.raw, f)
        assert np.allclose(o.depth, f * o.correction)


def test_one_colour_range_for_every_frame_from_the_first_frames():
    rng = np.random.default_rng(1)
    _, frames = _frames(rng, 20, rng.normal(0, 0.05, 20))
    opt = StabiliserOptions(half_window=4, colour_percentiles=(1.0, 95.0))
    out, report = _run(frames, opt)
    ranges = {o.colour_range for o in out}
    assert len(ranges) == 1 and report.colour_range in ranges
    # numpy: percentiles of 1 / aligned depth pooled over frames 0..4, each aligned with the log scales of
    # frames 0..4 (those known when frame 0 leaves)
    lam = _expected_log_corrections(frames[:5], 4)
    pooled = np.concatenate([(1.0 / (f * np.exp(l))).ravel() for f, l in zip(frames[:5], lam)])
    assert np.allclose(ranges.pop(), np.percentile(pooled, [1.0, 95.0]), rtol=1e-9)


def test_relative_depth_jitter_is_removed():
    """A jitter of period 2 half_window + 1 averages out exactly inside the video: constant scale;
    white jitter keeps about 1 / sqrt(2 half_window + 1) of its spread."""
    rng = np.random.default_rng(2)
    n, hw = 45, 4
    periodic = 0.08 * np.sin(2 * np.pi * np.arange(n) / (2 * hw + 1))
    base, frames = _frames(rng, n, periodic)
    out, report = _run(frames, StabiliserOptions(half_window=hw))
    scales = np.array([np.median(np.log(o.depth / base)) for o in out])
    inner = scales[hw:n - hw]
    assert np.ptp(inner) < 1e-9 and np.ptp(np.log([np.median(f / base) for f in frames])) > 0.15
    assert report.flicker_raw > 0.03 and report.flicker_aligned < 0.25 * report.flicker_raw

    white = rng.normal(0, 0.05, 400)
    base, frames = _frames(rng, 400, white)
    aligned, _ = stabilise(frames, StabiliserOptions(half_window=hw))
    spread = np.std([np.median(np.log(a / base)) for a in aligned])
    assert spread < 0.45 * np.std(white)


def test_metric_depth_stays_metric():
    """Depth in metres with jitter around the true scale: every factor within [1/r, r], their geometric
    mean ~1, and the aligned video's mean scale still the truth's."""
    rng = np.random.default_rng(3)
    jitter = rng.normal(0, 0.06, 200)
    base, frames = _frames(rng, 200, jitter)
    opt = StabiliserOptions(metric=True, half_window=4, max_correction=1.08)
    out, report = _run(frames, opt)
    factors = np.array([o.correction for o in out])
    assert factors.min() >= 1 / 1.08 - 1e-12 and factors.max() <= 1.08 + 1e-12
    assert np.isclose(factors.min(), 1 / 1.08) or np.isclose(factors.max(), 1.08)   # the clip was needed
    assert abs(np.log(report.correction_geomean)) < 0.01
    assert np.isclose(report.correction_geomean, np.exp(np.mean(np.log(factors))))
    scale_out = np.mean([np.median(np.log(o.depth / base)) for o in out])
    assert abs(scale_out) < 0.01 and abs(scale_out - np.mean(jitter)) < 0.01
    # unclipped, the same frames are smoothed as the relative rule says
    expected = _expected_log_corrections(frames, 4, np.log(1.08))
    assert np.allclose(np.log(factors), expected, atol=1e-12)


def test_metric_trend_is_not_corrected():
    """A scene that really comes closer (1 % a frame) keeps its depths: the centred mean has no lag."""
    rng = np.random.default_rng(4)
    _, frames = _frames(rng, 40, np.zeros(40), drift=-0.01)
    out, report = _run(frames, StabiliserOptions(metric=True, half_window=4))
    assert np.allclose([o.correction for o in out[4:-4]], 1.0, atol=1e-9)
    assert report.flicker_raw == pytest.approx(0.0, abs=1e-9)


def test_a_scene_cut_is_not_smoothed_across():
    rng = np.random.default_rng(5)
    base = _scene(rng)
    frames = [base] * 15 + [3.0 * base] * 15     # a cut to a scene three times farther
    out, report = _run(frames, StabiliserOptions(half_window=4))
    assert report.cuts == 1
    assert np.allclose([o.correction for o in out], 1.0)
    out, report = _run(frames, StabiliserOptions(half_window=4, cut_ratio=4.0))   # not a cut for this rule
    assert report.cuts == 0 and not np.allclose([o.correction for o in out], 1.0)


def test_flicker_figure_against_numpy():
    rng = np.random.default_rng(6)
    _, frames = _frames(rng, 25, rng.normal(0, 0.03, 25))
    frames[3][0, :5] = 0.0          # invalid pixels are left out of the medians
    out, report = _run(frames, StabiliserOptions(half_window=2))

    def spread(maps):
        medians = [np.median(m[m > 0]) for m in maps]
        return np.std(np.diff(np.log(medians)))
    assert report.frames == 25
    assert report.flicker_raw == pytest.approx(spread(frames), rel=1e-9)
    assert report.flicker_aligned == pytest.approx(spread([o.depth for o in out]), rel=1e-9)
    assert "per frame" in report.describe() and "aligned" in report.describe()


def test_memory_does_not_grow_with_the_video():
    """tracemalloc over a 1500-frame stream: the memory held after 150 frames and after 1500 is the same
    (within an eighth of a frame), and the peak stays a few times the half_window + 1 frames held back (the
    colour range's pooled samples of those frames at the start; all 1500 frames would be 300 times more)."""
    h, w, hw = 64, 64, 4
    frame_bytes = h * w * 8
    rng = np.random.default_rng(7)
    base = _scene(rng, h, w)
    stabilise([base] * 12, StabiliserOptions(half_window=hw))   # numpy's first-call set-ups, outside the count
    stab = TemporalStabiliser(StabiliserOptions(half_window=hw))
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        held = []
        for t in range(1500):
            for out in stab.push(base * np.exp(0.03 * np.sin(t)), item=t):
                del out
            if t in (149, 1499):
                held.append(tracemalloc.get_traced_memory()[0])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert held[1] - held[0] < frame_bytes / 8
    assert peak - start < 4 * (hw + 2) * frame_bytes


def test_options_and_misuse_are_refused():
    with pytest.raises(ValueError, match="half_window"):
        TemporalStabiliser(StabiliserOptions(half_window=-1))
    with pytest.raises(ValueError, match="max_correction"):
        TemporalStabiliser(StabiliserOptions(max_correction=0.9))
    with pytest.raises(ValueError, match="colour_percentiles"):
        TemporalStabiliser(StabiliserOptions(colour_percentiles=(95, 5)))
    stab = TemporalStabiliser()
    with pytest.raises(ValueError, match="H x W"):
        stab.push(np.ones((2, 3, 4)))
    stab.flush()
    with pytest.raises(RuntimeError, match="flush"):
        stab.push(np.ones((4, 4)))
