"""What the loader workers send and how it becomes the networks' inputs where batch_to_float runs
(the main process, or the device for GPU training): uint8 images, each network input's colour jitter
as a 3 x 4 affine map, and, with resize_on_device, the full-size frames that Lanczos-resize there.
The keys are KITTIRAWDataset's (datasets/kitti.py's docstring)."""
import numpy as np
import paddle
from paddle.io.dataloader.collate import default_collate_fn

from datasets import lanczos

_LUMA = np.array([0.299, 0.587, 0.114])                      # PIL's (ITU-R 601-2) grey
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def _hue_rotation(turns):
    """3 x 3 hue rotation by `turns` of a full turn: rotate the chroma plane (I, Q) of YIQ."""
    c, s = np.cos(2 * np.pi * turns), np.sin(2 * np.pi * turns)
    return np.linalg.inv(_RGB_TO_YIQ) @ np.array([[1, 0, 0], [0, c, -s], [0, s, c]]) @ _RGB_TO_YIQ


class ColorJitter:
    """One draw of brightness, contrast, saturation (factors in [1 - x, 1 + x]) and hue (shift in
    [-h, h] turns), applied in a random order, as torchvision's ColorJitter.

    Every step is affine in the colour, so the whole jitter of an image is one 3 x 3 matrix and an
    offset, applied to the float image and clipped to [0, 1] once (a few ms for a whole sample,
    against ~25 ms for PIL's per-step uint8 passes):
        brightness b:  x -> b x
        saturation s:  x -> s x + (1 - s) grey(x)          grey(x) = 0.299 r + 0.587 g + 0.114 b
        contrast c:    x -> c x + (1 - c) mean(grey(x))    mean over the image
        hue h:         rotation by 2 pi h of the YIQ chroma plane (grey preserved)
    """

    def __init__(self, rng, brightness=0.2, contrast=0.2, saturation=0.2, hue=0.1):
        """Draws the four factors, then the order, from `rng` (np.random.RandomState or Generator)."""
        self.factors = {"brightness": rng.uniform(1 - brightness, 1 + brightness),
                        "contrast": rng.uniform(1 - contrast, 1 + contrast),
                        "saturation": rng.uniform(1 - saturation, 1 + saturation),
                        "hue": rng.uniform(-hue, hue)}
        names = list(self.factors)
        self.order = [names[i] for i in rng.permutation(len(names))]

    _NAMES = ("brightness", "contrast", "saturation", "hue")

    def vector(self):
        """The draw as 8 float64s (the four factors, then the order as indices into them): what a
        worker sends when the image the jitter's contrast step needs is made on the device."""
        return np.array([self.factors[n] for n in self._NAMES] + [self._NAMES.index(n) for n in self.order])

    @classmethod
    def from_vector(cls, v):
        """The ColorJitter whose vector() is v."""
        jitter = cls.__new__(cls)
        jitter.factors = {n: float(x) for n, x in zip(cls._NAMES, v[:4])}
        jitter.order = [cls._NAMES[int(i)] for i in v[4:8]]
        return jitter

    def affine(self, channel_mean):
        """(M, b) with jitter(x) = M x + b for an image whose per-channel mean is channel_mean."""
        m, b = np.eye(3), np.zeros(3)
        grey = np.outer(np.ones(3), _LUMA)
        for name in self.order:
            f = self.factors[name]
            if name == "brightness":
                step, offset = f * np.eye(3), np.zeros(3)
            elif name == "saturation":
                step, offset = f * np.eye(3) + (1 - f) * grey, np.zeros(3)
            elif name == "contrast":
                mean_now = m @ channel_mean + b
                step, offset = f * np.eye(3), (1 - f) * (_LUMA @ mean_now) * np.ones(3)
            else:
                step, offset = _hue_rotation(f), np.zeros(3)
            m, b = step @ m, step @ b + offset
        return m, b

    def __call__(self, chw):
        """Jitter a 3 x H x W float image in [0, 1]."""
        m, b = self.affine(chw.reshape(3, -1).mean(1, dtype=np.float64))
        out = np.einsum("ij,jhw->ihw", m.astype(np.float32), chw) + b.astype(np.float32)[:, None, None]
        return np.clip(out, 0, 1, out=out)


def draw_color_jitter(rng, brightness=0.2, contrast=0.2, saturation=0.2, hue=0.1):
    """One random colour jitter (drawn now from `rng`), a function of a 3 x H x W float image."""
    return ColorJitter(rng, brightness, contrast, saturation, hue)


IDENTITY_JITTER = np.concatenate([np.eye(3), np.zeros((3, 1))], axis=1).astype(np.float32)


def jitter_params(jitter, chw):
    """The 3 x 4 float32 [M | b] of `jitter` on the float image `chw` (its contrast step needs the
    image's mean, so it is taken here, from the same float values ColorJitter.__call__ would see)."""
    return _affine_params(jitter, chw.reshape(3, -1).mean(1, dtype=np.float64))


def _affine_params(jitter, channel_mean):
    """[M | b] (3 x 4 float32) of jitter.affine(channel_mean)."""
    m, b = jitter.affine(channel_mean)
    return np.concatenate([m, b[:, None]], axis=1).astype(np.float32)


def _jitter(params, x):
    """clip(M x + b, 0, 1) per pixel for ... x 3 x 4 params and ... x 3 x H x W float32 x (numpy or
    Paddle): the products summed over the input channels in order 0, 1, 2, then b, each rounded to
    float32, which are ColorJitter.__call__'s numbers bit for bit."""
    channels = []
    for i in range(3):
        out = params[..., i, 0][..., None, None] * x[..., 0, :, :]
        for j in (1, 2):
            out = out + params[..., i, j][..., None, None] * x[..., j, :, :]
        channels.append(out + params[..., i, 3][..., None, None])
    if isinstance(x, np.ndarray):
        return np.clip(np.stack(channels, axis=-3), 0, 1)
    return paddle.clip(paddle.stack(channels, axis=-3), 0, 1)


def _apply_jitter(params, x):
    """_jitter on the images whose params are not the identity (x itself for the others: the
    identity's numbers are x's, so only the work is saved); a sample or a batch."""
    p = params if isinstance(params, np.ndarray) else params.numpy()
    if p.ndim == 2:
        return x if np.array_equal(p, IDENTITY_JITTER) else _jitter(params, x)
    rows = np.flatnonzero((p != IDENTITY_JITTER).any(axis=(1, 2)))
    if len(rows) == 0:
        return x
    if isinstance(x, np.ndarray):
        out = x.copy()
        out[rows] = _jitter(p[rows], x[rows])
        return out
    index = paddle.to_tensor(rows, place=x.place)
    return paddle.scatter(x, index, _jitter(paddle.gather(params, index), paddle.gather(x, index)))


NO_JITTER_DRAW = np.zeros(8)   # the jitter_draw of an image that is not jittered


def _jitter_from_draws(draws, x):
    """[M | b] of ("jitter_draw", f, 0) rows (ColorJitter.vector(); an all-zero row: no jitter) on
    their float images x (3 x H x W or N x 3 x H x W, numpy or Paddle), as jitter_params takes them
    from the worker's image (a numpy sample: the same numbers; a Paddle batch: the mean's float64 sum
    in another order, a few 1e-16 apart)."""
    d = draws if isinstance(draws, np.ndarray) else draws.numpy()
    if isinstance(x, np.ndarray):
        means = x.reshape(x.shape[:-2] + (-1,)).mean(-1, dtype=np.float64)
    else:
        means = x.astype("float64").mean(axis=[-2, -1]).numpy()
    params = np.stack([_affine_params(ColorJitter.from_vector(v), mu) if v.any() else IDENTITY_JITTER
                       for v, mu in zip(d.reshape(-1, 8), means.reshape(-1, 3))]).reshape(d.shape[:-1] + (3, 4))
    return params if isinstance(x, np.ndarray) else paddle.to_tensor(params, place=x.place)


def resize_on_device(inputs):
    """Make the ("color", f, s) uint8 images of a batch that carries full-size frames instead (a
    dataset with resize_on_device), where this runs:
        ("raw", f)          N x Hmax x Wmax x 3 uint8, frame f of each sample as decoded, in the
                            top-left ("raw_hw", f) = (h, w) corner (a batch mixes image sizes)
        "raw_flip"          1 where the sample's frames are to be mirrored left-right (before resizing)
        ("raw_scales", f)   scales to make: s = 0 from the frame, each further one from the previous
        "resize_to"         (height, width) of scale 0
    with datasets.lanczos, PIL's Lanczos to the bit: the images the workers would have made (their
    ("jitter_draw", f, 0), ColorJitter.vector(), become the jitter in batch_to_float). A
    numpy sample (a dataset's get_item; 3-D frames) or numpy batch is made on the CPU and returned
    as numpy."""
    frames = [k[1] for k in inputs if isinstance(k, tuple) and k[0] == "raw"]
    if not frames:
        return inputs
    as_numpy = isinstance(inputs[("raw", frames[0])], np.ndarray)
    single = inputs[("raw", frames[0])].ndim == 3

    def host(key):   # the small per-sample values, as numpy, one row per sample
        x = inputs.pop(key)
        x = np.asarray(x) if as_numpy else x.numpy()
        return x[None] if single else x

    def returned(x):
        return (x.numpy()[0] if single else x.numpy()) if as_numpy else x

    height, width = (int(v) for v in host("resize_to").reshape(-1, 2)[0])
    flips = host("raw_flip")
    for f in frames:
        x = inputs.pop(("raw", f))
        x = paddle.to_tensor(x[None] if single else x) if as_numpy else x
        sizes, scales = host(("raw_hw", f)), int(host(("raw_scales", f)).reshape(-1)[0])
        image = lanczos.resize_padded(x, sizes, flips, (height, width))
        for s in range(scales):
            if s:
                image = lanczos.resize_nhwc(image, (height // 2 ** s, width // 2 ** s))
            inputs[("color", f, s)] = returned(image.transpose([0, 3, 1, 2]))
    return inputs


def pad_to_common_size(arrays):
    """H x W x C uint8 arrays of several sizes -> one N x Hmax x Wmax x C array, each image in its
    top-left corner (zeros elsewhere): the one copy a worker makes of them."""
    height = max(a.shape[0] for a in arrays)
    width = max(a.shape[1] for a in arrays)
    out = np.empty((len(arrays), height, width) + arrays[0].shape[2:], arrays[0].dtype)
    for o, a in zip(out, arrays):
        o[:a.shape[0], :a.shape[1]] = a
        o[a.shape[0]:] = 0
        o[:, a.shape[1]:] = 0
    return out


def collate(samples):
    """paddle.io's default collation, after padding the samples' ("raw", f) frames to a common size
    (pad_to_common_size): the DataLoader collate_fn of a dataset with resize_on_device."""
    raw = [k for k in samples[0] if isinstance(k, tuple) and k[0] == "raw"]
    batch = default_collate_fn([{k: v for k, v in s.items() if k not in raw} for s in samples])
    batch.update({k: pad_to_common_size([s[k] for s in samples]) for k in raw})
    return batch


def batch_to_float(inputs):
    """Turn a sample or batch as the loader sends it (uint8 ("color", f, s) and ("jitter", f, s),
    or the full-size frames and jitter draws of resize_on_device, numpy or Paddle) into the network's inputs, in
    place, and return it:
        ("color", f, s)     = uint8 x float32(1/255)             (image_io.to_chw's arithmetic)
        ("color_aug", f, s) = clip(M color + b, 0, 1)           ([M | b] = ("jitter", f, s), then dropped; only
                                                                  where a jitter key is: the network inputs)
        "depth_hint_mask"   = float32(depth_hint > 0)           (when "depth_hint" is there)
    Runs where it is called (the main process, on the device for GPU batches); a dict already
    converted is returned unchanged, so every consumer may call it."""
    resize_on_device(inputs)
    if "depth_hint" in inputs and "depth_hint_mask" not in inputs:
        hint = inputs["depth_hint"]
        inputs["depth_hint_mask"] = (hint > 0).astype(np.float32 if isinstance(hint, np.ndarray) else "float32")
    for key in [k for k in inputs if isinstance(k, tuple) and k[0] == "color"]:
        x = inputs[key]
        if isinstance(x, np.ndarray):
            if x.dtype != np.uint8:
                continue
            x = x.astype(np.float32)
            x *= np.float32(1 / 255)
        else:
            if x.dtype != paddle.uint8:
                continue
            # scale: the same float32 product as `* float32(1/255)`, faster than a broadcast multiply on the CPU
            x = paddle.scale(x.astype("float32"), float(np.float32(1 / 255)))
        inputs[key] = x
        params = inputs.pop(("jitter",) + key[1:], None)
        draws = inputs.pop(("jitter_draw",) + key[1:], None)   # resize_on_device's: the mean is x's
        if draws is not None:
            params = _jitter_from_draws(draws, x)
        if params is not None:    # only the images a network reads have a jitter (and so a colour_aug)
            inputs[("color_aug",) + key[1:]] = _apply_jitter(params, x)
    return inputs
