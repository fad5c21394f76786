"""Depth video without flicker, Paddle-free and streamed: each frame's scale smoothed over its neighbours,
one colour range for the whole video, and the flicker figure before and after.

    stab = TemporalStabiliser(StabiliserOptions(metric=False))
    for depth, frame in video:                  # depth: H x W, any units (relative or metres)
        for out in stab.push(depth, frame, motion):  # out half_window frames later, in order; motion
                                                # optional: (4 x 4 camera t-1 -> t, 3 x 3 K) in depth's units
            write(out.depth, out.colour_range, out.item)     # out.raw: the frame's own depth
    for out in stab.flush():                    # the last half_window frames
        write(...)
    print(stab.summary().describe())

The rule, for frames d_0, d_1, ... (valid pixels: finite and > 0, on a regular grid of about `samples`
pixels, every s-th row and column):
  scale step    delta_t = median over pixels valid in both of log(d_t / d_{t-1})  (pixel by pixel: robust to
                objects entering or leaving; the same pixel sees the road and the walls of a street at an
                unchanged depth while the camera drives on)
  log scale     c_0 = 0, c_t = c_{t-1} + delta_t: how the frame's scale moved since frame 0
  scene cut     |delta_t| > log(cut_ratio) starts a new segment (c_t restarts at 0); smoothing never
                crosses a cut
  smoothing     m_t = mean of c_j over the frames j of t's segment with |j - t| <= half_window (a centred
                moving average: it follows slow changes of the scene without lag and averages out jitter)
  correction    lambda_t = m_t - c_t; aligned depth = d_t exp(lambda_t)
  metric        weights whose depth is in metres (`metric=True`): lambda_t is clipped to
                +-log(max_correction), so no frame leaves its metric scale by more than that factor; being
                the high-pass part of c, the corrections also average to ~0 over the video (geometric mean
                of the factors ~1), so the video keeps the network's metric scale
  motion        frames pushed with their camera motion (e.g. the pose network's) are then blended with the
                previous output carried along that motion where both see one surface
                (utils/geometry/fusion.py; weight `blend`, agreement `agreement`; the translation scaled by
                the frame's correction, as its depth); frames without motion, the first frame, a size
                change or a scene cut restart the blend; blend 0 turns it off
  colour        one range for every frame: percentiles `colour_percentiles` of the inverse aligned depth
                pooled over the first half_window + 1 frames (each aligned as known when frame 0 leaves),
                fixed from then on; colour the inverse depth from lo to hi (utils.io.image_io.colorize)
  flicker       r_t = median(d_t) / median(d_{t-1}) (full-frame medians of the valid pixels); the figure is
                the standard deviation of log r_t over the video, for the frames as predicted and as output
Memory: the half_window + 1 frames held back, the previous output, and O(half_window) numbers, whatever the
video's length.
"""
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from utils.geometry.fusion import FusionOptions, fuse


@dataclass
class StabiliserOptions:
    metric: bool = False                      # depth in metres: corrections clipped to [1/max_correction, ...]
    half_window: int = 4                      # smoothing over the 2 half_window + 1 frames centred on each
    max_correction: float = 1.1               # metric only: the largest factor a frame's depth is moved by
    colour_percentiles: tuple = (1.0, 95.0)   # of the inverse depth: Monodepth2's look is min to 95th
    cut_ratio: float = 1.5                    # a frame-to-frame scale step above this factor is a scene cut
    samples: int = 16384                      # pixels per frame for the scale steps and the colour range
    blend: float = 0.5                        # weight of the previous output carried along the motion
    agreement: float = 0.1                    # largest relative difference of one surface seen from both

    def check(self):
        """ValueError naming the first option out of range."""
        if self.half_window < 0:
            raise ValueError(f"half_window must be >= 0, not {self.half_window}")
        if not self.max_correction >= 1:
            raise ValueError(f"max_correction must be >= 1, not {self.max_correction}")
        lo, hi = self.colour_percentiles
        if not 0 <= lo < hi <= 100:
            raise ValueError(f"colour_percentiles must be 0 <= lo < hi <= 100, not {self.colour_percentiles}")
        if not self.cut_ratio > 1 or self.samples < 1:
            raise ValueError("cut_ratio must be > 1 and samples >= 1")
        FusionOptions(self.blend, self.agreement).check()
        return self


@dataclass
class StabilisedFrame:
    """One frame out: `depth` = raw x `correction`, then blended along the motion on a share `blended` of
    its pixels (0 without motion); `colour_range` (lo, hi) of the inverse depth, the same
    for every frame; `item`: whatever was pushed with the frame (e.g. the RGB image to write beside it)."""
    index: int
    depth: np.ndarray
    raw: np.ndarray
    correction: float
    colour_range: tuple
    item: Any = None
    blended: float = 0.0


class RunningStd:
    """Mean and population standard deviation of a stream of numbers (Welford), O(1) memory."""

    def __init__(self):
        self.n, self.mean, self._m2 = 0, 0.0, 0.0

    def add(self, x):
        self.n += 1
        d = x - self.mean
        self.mean += d / self.n
        self._m2 += d * (x - self.mean)

    @property
    def std(self):
        return float(np.sqrt(self._m2 / self.n)) if self.n else float("nan")


@dataclass
class StabilityReport:
    """The flicker figure (std of the log median-depth ratio between consecutive frames) as predicted and
    as aligned, the range of the corrections and their geometric mean, the colour range."""
    frames: int
    flicker_raw: float
    flicker_aligned: float
    correction_min: float
    correction_max: float
    correction_geomean: float
    colour_range: tuple
    cuts: int
    blended: float = 0.0

    def describe(self):
        if self.frames < 2:
            return f"{self.frames} frame(s): no flicker figure"
        return (f"flicker (std of log median-depth ratio between frames): {100 * self.flicker_raw:.2f} % per frame, "
                f"{100 * self.flicker_aligned:.2f} % aligned; scale corrections {self.correction_min:.3f}-"
                f"{self.correction_max:.3f} (geometric mean {self.correction_geomean:.3f})"
                + (f"; {100 * self.blended:.0f} % of the pixels blended along the motion" if self.blended else "")
                + (f"; {self.cuts} scene cut(s)" if self.cuts else ""))


def grid_stride(shape, samples):
    """Row and column step s of the sampling grid: the smallest with (H / s)(W / s) <= samples."""
    return max(1, int(np.ceil(np.sqrt(shape[0] * shape[1] / samples))))


def valid_log(values):
    """log of the finite positive entries, NaN elsewhere (float64)."""
    values = np.asarray(values, np.float64)
    out = np.full(values.shape, np.nan)
    ok = np.isfinite(values) & (values > 0)
    out[ok] = np.log(values[ok])
    return out


def median_log(depth):
    """log of the median of the finite positive entries (NaN when none is)."""
    valid = depth[np.isfinite(depth) & (depth > 0)]
    return float(np.log(np.median(valid))) if valid.size else np.nan


def median_log_step(log_new, log_old):
    """median of log_new - log_old over the pixels valid in both (0 when none is)."""
    step = log_new - log_old
    step = step[np.isfinite(step)]
    return float(np.median(step)) if step.size else 0.0


class TemporalStabiliser:
    """The streamed rule of the module docstring. push() frames in order, then flush(); summary() any time."""

    def __init__(self, options=None):
        self.opt = (options or StabiliserOptions()).check()
        self._held = deque()          # [index, raw depth, item, log median, motion, segment] of frames not yet out
        self._scales = deque()        # (index, segment, c) of the frames within half_window of those held
        self._prev_log = None         # log of the previous frame's grid samples
        self._count, self._segment, self._c = 0, 0, 0.0
        self._prev_out = None         # (log median raw, log median out, segment, depth out) of the last frame out
        self.colour_range = None
        self._flicker_raw, self._flicker_aligned = RunningStd(), RunningStd()
        self._corr = [np.inf, -np.inf, 0.0, 0]   # min, max, sum of logs, count
        self._cuts, self._finished, self._blended = 0, False, RunningStd()

    def push(self, depth, item=None, motion=None):
        """Take the next frame (H x W depth; `motion`: None or (4 x 4 transform camera t-1 -> camera t, its
        translation in `depth`'s units; 3 x 3 K at depth's size)); returns the frames now ready
        (StabilisedFrame)."""
        if self._finished:
            raise RuntimeError("push() after flush(): start a new TemporalStabiliser for another video")
        depth = np.asarray(depth)
        if depth.ndim != 2:
            raise ValueError(f"a frame's depth must be H x W, not shape {depth.shape}")
        s = grid_stride(depth.shape, self.opt.samples)
        log_grid = valid_log(depth[::s, ::s])
        if self._prev_log is not None:
            step = median_log_step(log_grid, self._prev_log) if log_grid.shape == self._prev_log.shape else np.inf
            if abs(step) > np.log(self.opt.cut_ratio):
                self._segment, self._c, self._cuts = self._segment + 1, 0.0, self._cuts + 1
            else:
                self._c += step
        self._prev_log = log_grid
        log_median = median_log(depth)
        # a copy: callers may reuse buffers
        self._held.append([self._count, np.array(depth), item, log_median, motion, self._segment])
        self._scales.append((self._count, self._segment, self._c))
        self._count += 1
        ready = []
        while self._held and self._held[0][0] + self.opt.half_window < self._count:
            ready.append(self._release())
        return ready

    def flush(self):
        """The frames still held, at the end of the video."""
        self._finished = True
        return [self._release() for _ in range(len(self._held))]

    def _log_correction(self, index):
        """lambda of frame `index` from the log scales known now (module docstring)."""
        _, segment, c = next(x for x in self._scales if x[0] == index)
        near = [cj for j, seg, cj in self._scales if seg == segment and abs(j - index) <= self.opt.half_window]
        lam = float(np.mean(near)) - c
        if self.opt.metric:
            limit = np.log(self.opt.max_correction)
            lam = float(np.clip(lam, -limit, limit))
        return lam

    def _fix_colour_range(self):
        """Percentiles of the inverse aligned depth pooled over the frames held now (the first ones)."""
        pooled = []
        for index, depth, *_ in self._held:
            s = grid_stride(depth.shape, self.opt.samples)
            inv = -valid_log(depth[::s, ::s]) - self._log_correction(index)
            pooled.append(inv[np.isfinite(inv)])
        pooled = np.concatenate(pooled)
        if not pooled.size:
            return (0.0, 1.0)
        lo, hi = np.exp(np.percentile(pooled, self.opt.colour_percentiles))   # percentiles commute with exp
        return (float(lo), float(hi))

    def _release(self):
        if self.colour_range is None:
            self.colour_range = self._fix_colour_range()
        index, depth, item, log_median, motion, segment = self._held.popleft()
        lam = self._log_correction(index)
        while self._scales and self._scales[0][0] < index + 1 - self.opt.half_window:
            self._scales.popleft()   # no frame still to come looks further back than half_window
        factor = float(np.exp(lam))
        out, blended = depth * factor, 0.0
        prev = self._prev_out
        if (motion is not None and self.opt.blend > 0 and prev is not None and prev[2] == segment
                and prev[3].shape == depth.shape):
            transform = np.array(motion[0], np.float64)
            transform[:3, 3] *= factor
            fused, agree = fuse(prev[3], out, transform, motion[1], FusionOptions(self.opt.blend, self.opt.agreement))
            out, blended = fused.astype(depth.dtype, copy=False), float(agree.mean())
        self._blended.add(blended)
        log_out = log_median + lam if not blended else median_log(out)
        if prev is not None and np.isfinite(log_median) and np.isfinite(prev[0]):
            self._flicker_raw.add(log_median - prev[0])
            self._flicker_aligned.add(log_out - prev[1])
        self._prev_out = (log_median, log_out, segment, out)
        c = self._corr
        c[0], c[1], c[2], c[3] = min(c[0], lam), max(c[1], lam), c[2] + lam, c[3] + 1
        return StabilisedFrame(index, out, depth, factor, self.colour_range, item, blended)

    def summary(self):
        """StabilityReport of the frames out so far."""
        lo, hi, total, n = self._corr
        return StabilityReport(n, self._flicker_raw.std, self._flicker_aligned.std,
                               float(np.exp(lo)) if n else 1.0, float(np.exp(hi)) if n else 1.0,
                               float(np.exp(total / n)) if n else 1.0, self.colour_range, self._cuts,
                               self._blended.mean if n else 0.0)


def stabilise(depths, options=None, motions=None):
    """(aligned depths, StabilityReport) of a whole sequence in memory (a list or an iterable of H x W
    depths, and optionally each frame's motion as push takes it): push, flush, summary in one call, for
    evaluation and tests."""
    stab = TemporalStabiliser(options)
    out = []
    for depth, motion in zip(depths, motions if motions is not None else iter(lambda: None, 0)):
        out += stab.push(depth, motion=motion)
    out += stab.flush()
    return [f.depth for f in out], stab.summary()
