"""An independent float64 numpy implementation of docs/MLDA_NET.md §5-6 (view synthesis and the
MLDA-Net loss), written from docs/MLDA_NET.md, used by tests/test_losses.py to pin the Paddle losses.

Arrays are numpy, images B x C x H x W, poses B x 4 x 4. Frame ids and dictionary keys follow
the trainer's: `frames` = [0, sources...], scales s with disp_s of size H/2^s x W/2^s.
"""
import numpy as np

SSIM_C1 = 0.01 ** 2
SSIM_C2 = 0.03 ** 2
HINT_PENALTY = 1000.0  # docs/MLDA_NET.md §6: added to the hint's photometric error where the hint is zero


def disp_to_depth(disp, min_depth, max_depth):
    """docs/MLDA_NET.md §5: depth = 1 / (1/max + (1/min - 1/max) disp)."""
    return 1.0 / (1.0 / max_depth + (1.0 / min_depth - 1.0 / max_depth) * disp)


def _resize_axis(x, out, axis):
    """Half-pixel linear resize of one axis: source coordinate (i + 0.5) n_in / n_out - 0.5,
    clamped at 0 (an edge pixel stays the edge value)."""
    n = x.shape[axis]
    src = np.maximum((np.arange(out) + 0.5) * n / out - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(int), n - 1)
    hi = np.minimum(lo + 1, n - 1)
    frac = src - lo
    shape = [1] * x.ndim
    shape[axis] = out
    frac = frac.reshape(shape)
    return np.take(x, lo, axis) * (1 - frac) + np.take(x, hi, axis) * frac


def resize_bilinear(x, h, w):
    """bilinear(x, (h, w)) with align_corners=False (spec notation), separable."""
    return _resize_axis(_resize_axis(x, h, 2), w, 3)


def project_pixels(depth, K, T):
    """Where each target pixel (u, v) lands in the source: X = depth K^-1 [u, v, 1], then
    p = (K T)[:3] [X; 1], pixel = p_xy / (p_z + 1e-7). Returns (x, y), each B x H x W."""
    b, _, h, w = depth.shape
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    pix = np.stack([u.ravel(), v.ravel(), np.ones(h * w)])  # 3 x HW
    out = []
    for i in range(b):
        Kin = np.linalg.inv(K[i])[:3, :3]
        X = depth[i].reshape(1, -1) * (Kin @ pix)
        p = (K[i] @ T[i])[:3] @ np.vstack([X, np.ones((1, h * w))])
        out.append(p[:2] / (p[2:3] + 1e-7))
    out = np.stack(out)  # B x 2 x HW
    return out[:, 0].reshape(b, h, w), out[:, 1].reshape(b, h, w)


def sample_border(img, x, y):
    """Bilinear sampling of img (B x C x H x W) at pixel coordinates x, y (B x H' x W'); a
    coordinate outside the image is clamped to the edge (border padding: the grid's [-1, 1]
    spans pixel centres 0 .. size - 1, i.e. align_corners=True)."""
    b, c, h, w = img.shape
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0 = np.minimum(np.floor(x).astype(int), w - 2)
    y0 = np.minimum(np.floor(y).astype(int), h - 2)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    bi = np.arange(b)[:, None, None]
    at = lambda yy, xx: img[bi, :, yy, xx].transpose(0, 3, 1, 2)  # noqa: E731  B x C x H' x W'
    return ((1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1))
            + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1)))


def warp(source, depth, K, T):
    """The source image seen from the target camera, given the target's depth and T (target -> source)."""
    x, y = project_pixels(depth, K, T)
    return sample_border(source, x, y)


def box3(x):
    """3 x 3 mean after reflection padding of 1 (the edge pixel is not repeated)."""
    p = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)], mode="reflect")
    h, w = x.shape[2:]
    return sum(p[:, :, i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9.0


def ssim_dissimilarity(a, b):
    """clip((1 - SSIM(a, b)) / 2, 0, 1) per pixel and channel."""
    mu_a, mu_b = box3(a), box3(b)
    var_a = box3(a * a) - mu_a ** 2
    var_b = box3(b * b) - mu_b ** 2
    cov = box3(a * b) - mu_a * mu_b
    ssim = ((2 * mu_a * mu_b + SSIM_C1) * (2 * cov + SSIM_C2)
            / ((mu_a ** 2 + mu_b ** 2 + SSIM_C1) * (var_a + var_b + SSIM_C2)))
    return np.clip((1 - ssim) / 2, 0, 1)


def pe(a, b):
    """docs/MLDA_NET.md §6: 0.85 mean_c SSIM-dissimilarity + 0.15 mean_c |a - b|, B x 1 x H x W."""
    return (0.85 * ssim_dissimilarity(a, b).mean(1, keepdims=True)
            + 0.15 * np.abs(a - b).mean(1, keepdims=True))


def choose(reproj, identity, hint_reproj=None):
    """Per-pixel argmin over [reproj, identity(, hint_reproj)], the first of equal minima winning:
    (reprojection mask = argmin != 1, hint mask = argmin == 2 or None)."""
    cands = [reproj, identity] + ([] if hint_reproj is None else [hint_reproj])
    idx = np.argmin(np.concatenate(cands, 1), axis=1)[:, None]  # numpy: first occurrence wins
    return (idx != 1).astype(np.float64), None if hint_reproj is None else (idx == 2).astype(np.float64)


def smoothness(disp, img):
    """docs/MLDA_NET.md §6 edge-aware term on the mean-normalised disparity."""
    d = disp / (disp.mean((2, 3), keepdims=True) + 1e-7)
    ix = np.abs(np.diff(img, axis=3)).mean(1, keepdims=True)
    iy = np.abs(np.diff(img, axis=2)).mean(1, keepdims=True)
    return (np.abs(np.diff(d, axis=3)) * np.exp(-ix)).mean() + (np.abs(np.diff(d, axis=2)) * np.exp(-iy)).mean()


def mlda_losses(colors, disps, K, poses, frames, scales, min_depth=0.1, max_depth=100.0,
                smooth_weight=1e-3, hint=None, hint_valid=None, stereo_T=None):
    """Everything docs/MLDA_NET.md §6 computes, returned in a dict for the tests:

    colors[(f, s)]: images (the target at every scale, sources at scale 0); disps[s]; K full
    resolution; poses[f] target -> source f (the stereo partner "s" uses stereo_T); hint and
    hint_valid B x 1 x H x W when depth hints are on.
    """
    target = colors[(0, 0)]
    h, w = target.shape[2:]
    sources = frames[1:]
    T = {f: (stereo_T if f == "s" else poses[f]) for f in sources}
    r = {"identity_pe": {f: pe(colors[(f, 0)], target) for f in sources}}
    r["identity"] = np.min(np.concatenate(list(r["identity_pe"].values()), 1), 1, keepdims=True)
    hint_reproj = None
    if hint is not None:
        r["hint_warp"] = warp(colors[("s", 0)], hint, K, stereo_T)
        hint_reproj = pe(r["hint_warp"], target) + HINT_PENALTY * (1 - hint_valid)
        r["hint_reproj"] = hint_reproj
    total = 0.0
    for s in scales:
        depth = disp_to_depth(resize_bilinear(disps[s], h, w), min_depth, max_depth)
        r[("depth", s)] = depth
        for f in sources:
            r[("warp", f, s)] = warp(colors[(f, 0)], depth, K, T[f])
            r[("pe", f, s)] = pe(r[("warp", f, s)], target)
        reproj = np.min(np.concatenate([r[("pe", f, s)] for f in sources], 1), 1, keepdims=True)
        mask, hint_mask = choose(reproj, r["identity"], hint_reproj)
        r[("reproj", s)], r[("mask", s)], r[("hint_mask", s)] = reproj, mask, hint_mask
        r[("reprojection", s)] = (reproj * mask).sum() / (mask.sum() + 1e-7)
        loss = r[("reprojection", s)]
        if hint is not None:
            err = np.log(np.abs(hint - depth) + 1) * hint_valid * hint_mask
            r[("hint", s)] = err.sum() / (hint_mask.sum() + 1e-7)
            loss = loss + r[("hint", s)]
        r[("smooth", s)] = smoothness(disps[s], colors[(0, s)])
        r[("loss", s)] = (loss + smooth_weight / 2 ** s * r[("smooth", s)]) / 2 ** s
        total += r[("loss", s)]
    r["loss"] = total
    return r


def sparse_depth(pred, gt, valid, kind="silog", silog_lambda=0.85):
    """The sparse-depth loss, image by image on the valid pixels only (float64):
    silog = mean(d^2) - lambda mean(d)^2 with d = log pred - log gt, l1 = mean |pred - gt|;
    0 for an image without valid pixels; the mean over the batch."""
    out = []
    for p, g, v in zip(pred, gt, valid.astype(bool)):
        p, g = p[v].astype(np.float64), g[v].astype(np.float64)
        if p.size == 0:
            out.append(0.0)
        elif kind == "silog":
            d = np.log(p) - np.log(g)
            out.append(np.mean(d ** 2) - silog_lambda * np.mean(d) ** 2)
        else:
            out.append(np.mean(np.abs(p - g)))
    return float(np.mean(out))


def velocity(translation, distance):
    """mean over the batch of | ||t|| - distance |."""
    t = translation.reshape(len(translation), -1).astype(np.float64)
    return float(np.mean(np.abs(np.linalg.norm(t, axis=1) - distance)))
