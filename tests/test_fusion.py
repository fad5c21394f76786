"""utils/geometry/fusion.py: carrying the previous output along the motion, against a known geometry (a
plane facing the camera and a camera driving towards it), the agreement test, and the blend's variance
reduction on a static scene against its closed form (1 - w) / (1 + w)."""
import numpy as np
import pytest

from utils.geometry.fusion import FusionOptions, carry_previous, fuse

K = np.array([[50.0, 0, 32], [0, 50.0, 24], [0, 0, 1]])
H, W = 48, 64


def _forward(dz):
    """Camera t-1 -> camera t for a camera moving dz along its optical axis."""
    t = np.eye(4)
    t[2, 3] = -dz
    return t


def test_a_wall_seen_after_driving_towards_it_is_carried_to_its_new_distance():
    previous = np.full((H, W), 20.0)
    current = np.full((H, W), 19.0)                       # exact: 1 m closer
    carried, sampled, z_prev = carry_previous(previous, current, _forward(1.0), K)
    inner = (slice(8, -8), slice(8, -8))                 # points that stay in frame t-1's view
    np.testing.assert_allclose(carried[inner], 19.0, rtol=1e-9)
    np.testing.assert_allclose(sampled[inner], 20.0, rtol=1e-9)
    np.testing.assert_allclose(z_prev[inner], 20.0, rtol=1e-9)
    fused, agree = fuse(previous, current * 1.05, _forward(1.0), K, FusionOptions(blend=0.5))
    assert agree[inner].all()
    np.testing.assert_allclose(fused[inner], np.sqrt(19.0 * 19.0 * 1.05), rtol=1e-9)   # geometric mean


def test_surfaces_that_disagree_stand_alone():
    previous = np.full((H, W), 20.0)
    current = np.full((H, W), 19.0)
    current[20:30, 20:40] = 5.0                           # an object entered: frame t-1 saw the wall there
    fused, agree = fuse(previous, current, _forward(1.0), K, FusionOptions(agreement=0.1))
    assert not agree[20:30, 20:40].any() and np.array_equal(fused[20:30, 20:40], current[20:30, 20:40])
    np.testing.assert_allclose(fuse(previous, current, _forward(1.0), K, FusionOptions(blend=0.0))[0], current, rtol=1e-12)


def test_blend_keeps_one_minus_w_over_one_plus_w_of_independent_noise():
    rng = np.random.default_rng(0)
    w = 0.5
    truth = np.full((H, W), 10.0)
    out, logs = None, []
    for _ in range(200):
        frame = truth * np.exp(rng.normal(0, 0.05, (H, W)))
        out = frame if out is None else fuse(out, frame, np.eye(4), K, FusionOptions(blend=w, agreement=1.0))[0]
        logs.append(np.log(out / truth))
    share = np.var(np.array(logs[50:])) / 0.05 ** 2
    assert share == pytest.approx((1 - w) / (1 + w), rel=0.05)


def test_options_out_of_range_are_refused():
    for bad in (dict(blend=1.0), dict(blend=-0.1), dict(agreement=0.0)):
        with pytest.raises(ValueError):
            FusionOptions(**bad).check()
