"""DiffusionDepth-style refinement head on MLDA-Net (docs/DIFFUSION_REFINEMENT.md;
§5 is this design; the DDIM arithmetic is utils/diffusion/ddim.py).

    c, z_prior = neck(F_0..F_4, sigma_0), E(sigma_0)          once per image
    z = sqrt(ab_ts) z_prior + sqrt(1 - ab_ts) e              e: seeded noise, an input
    k times: z = DDIM(z, eps_theta(z, t, c))                 t over the last k of N timesteps
    depth = D(z)                                             metres

F_k are MLDA's five encoder features (H/2 .. H/32), sigma_0 its scale-0 sigmoid disparity. The
latent (16 channels) lives at H/2 x W/2, the size of F_0 and of the condition c, so nothing is
resized (no interpolate: the exported programs run under oneDNN and convert to ONNX). Every
shape follows from the input; the noise e is an input, so a photo gets the same depth whatever it
is batched with (eta = 0 and per-sample normalisations make the loop a function of the image).
"""
import math

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from utils.diffusion import ddim
from utils.diffusion.ddim import seeded_noise  # noqa: F401  (part of this module's API)
from networks.encoder import NUM_CH_ENC

# The head's options (saved as refine.json beside MLDA-Net's weights).
HEAD_DEFAULTS = dict(cond_channels=256, latent_channels=16, depth_mapping="mlda", paper_output_act=False,
                     num_train_timesteps=ddim.NUM_TRAIN_TIMESTEPS, min_depth=0.1, max_depth=100.0,
                     ddim_steps=20, strength=0.5, noise_seed=0)
DEPTH_MAPPINGS = ("mlda", "paper")
INITIAL_DEPTH = 10.0  # metres: the decoder's initial output (bias of its last convolution)


def _conv_bn(in_ch, out_ch, kernel=3, stride=1, act=None):
    layers = [nn.Conv2D(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias_attr=False),
              nn.BatchNorm2D(out_ch)]  # Paddle momentum 0.9 = torch's 0.1
    return nn.Sequential(*(layers + ([act] if act is not None else [])))


class GroupNorm(nn.Layer):
    """nn.GroupNorm's function (per sample: (x - mean) / sqrt(var + eps) over each group's channels
    and pixels, biased variance, then a per-channel affine; same parameter names) written with
    reshape, mean and var: paddle2onnx 2.1's group_norm conversion returned NaN or wrong values
    for freshly initialised layers (weight 1, bias 0), measured here."""

    def __init__(self, groups, channels, epsilon=1e-5):
        super().__init__()
        self.groups, self.epsilon = groups, epsilon
        self.weight = self.create_parameter([channels], default_initializer=nn.initializer.Constant(1.0))
        self.bias = self.create_parameter([channels], is_bias=True)

    def forward(self, x):
        g = x.reshape([0, self.groups, -1])
        inv_n = 1.0 / (x.shape[1] // self.groups * x.shape[2] * x.shape[3])  # sums: oneDNN's reduce_mean check prints
        mean = g.sum(axis=2, keepdim=True) * inv_n
        var = ((g - mean) ** 2).sum(axis=2, keepdim=True) * inv_n
        x = ((g - mean) / paddle.sqrt(var + self.epsilon)).reshape([0, self.weight.shape[0]] + list(x.shape[2:]))
        return x * self.weight.reshape([1, -1, 1, 1]) + self.bias.reshape([1, -1, 1, 1])


def _conv_gn_relu(in_ch, out_ch):
    return nn.Sequential(nn.Conv2D(in_ch, out_ch, 3, padding=1), GroupNorm(4, out_ch), nn.ReLU())


class ConditionNeck(nn.Layer):
    """FPN over the encoder's features to `channels` at H/2, plus the prior:
    P_4 = Lat_4(F_4); P_k = Lat_k(F_k) + Up_{k+1}(P_{k+1}), k = 3..0;
    c = P_0 + conv3x3(avgpool2x2(sigma_0)), so the head sees MLDA's depth even from pure noise.
    Lat = conv3x3 (no bias) + BN + ReLU; Up = ConvTranspose(2, stride 2, no bias) + BN + ReLU."""

    def __init__(self, num_ch_enc=NUM_CH_ENC, channels=256):
        super().__init__()
        self.laterals = nn.LayerList([_conv_bn(c, channels, act=nn.ReLU()) for c in num_ch_enc])
        self.ups = nn.LayerList([nn.Sequential(nn.Conv2DTranspose(channels, channels, 2, stride=2, bias_attr=False),
                                               nn.BatchNorm2D(channels), nn.ReLU())
                                 for _ in num_ch_enc[1:]])
        self.prior = nn.Conv2D(1, channels, 3, padding=1)

    def forward(self, features, disp):
        p = self.laterals[-1](features[-1])
        for k in range(len(features) - 2, -1, -1):
            p = self.laterals[k](features[k]) + self.ups[k](p)
        return p + self.prior(F.avg_pool2d(disp, 2))


class LeakyReLU(nn.Layer):
    """max(x, slope x), i.e. LeakyReLU for 0 < slope < 1, written out: Paddle 3.3's oneDNN predictor
    crashes (segfault) fusing a convolution with its leaky_relu op."""

    def __init__(self, slope=0.2):
        super().__init__()
        self.slope = slope

    def forward(self, x):
        return paddle.maximum(x, self.slope * x)


class LatentEncoder(nn.Layer):
    """E: sigma_0 B x 1 x H x W -> latent B x 16 x H/2 x W/2 in (-1, 1): conv3x3 stride 2 + BN +
    LeakyReLU(0.2), conv3x3 + BN, tanh (the paper's layers; here fed MLDA's disparity, and trained)."""

    def __init__(self, channels=16):
        super().__init__()
        self.net = nn.Sequential(_conv_bn(1, channels, stride=2, act=LeakyReLU(0.2)), _conv_bn(channels, channels),
                                 nn.Tanh())

    def forward(self, disp):
        return self.net(disp)


class Denoiser(nn.Layer):
    """eps_theta(z_t, t, c): h = c + Emb[t] + N(z_t); eps = Out(h).
    N = conv3x3(16->64)+GN+ReLU+conv3x3(64->C)+GN+ReLU; Out = conv3x3(C->64)+GN+ReLU+conv3x3(64->16),
    GroupNorm(4) throughout (per sample: batch-independent). The time embedding is a learnt table
    (one row per training timestep). `paper_output_act` ends Out with GN + ReLU as the paper's code
    (then eps >= 0 although its target is zero-mean; off by default)."""

    def __init__(self, channels=256, latent_channels=16, num_train=ddim.NUM_TRAIN_TIMESTEPS, paper_output_act=False):
        super().__init__()
        self.time_embed = nn.Embedding(num_train, channels, weight_attr=nn.initializer.Normal(0.0, 1.0))
        self.latent_in = nn.Sequential(_conv_gn_relu(latent_channels, 64), _conv_gn_relu(64, channels))
        out = [_conv_gn_relu(channels, 64)]
        out += [_conv_gn_relu(64, latent_channels)] if paper_output_act else [
            nn.Conv2D(64, latent_channels, 3, padding=1)]
        self.out = nn.Sequential(*out)

    def forward(self, z, t, cond):
        """z: B x 16 x h x w; t: int64 [1] (broadcast over the batch) or [B]; cond: B x C x h x w."""
        emb = self.time_embed(t.reshape([-1])).reshape([-1, cond.shape[1], 1, 1])
        return self.out(cond + emb + self.latent_in(z))


class LatentDecoder(nn.Layer):
    """D: latent B x 16 x h x w -> depth B x 1 x 2h x 2w in metres: ConvTranspose(4, stride 2, pad 1)
    + BN + ReLU, conv3x3(16->1), sigmoid s, then `depth_mapping`:
    mlda: depth = 1 / (1/max + (1/min - 1/max) s)  (MLDA's disp_to_depth, bounded to [min, max]);
    paper: depth = 1 / max(s, 1e-6) - 1."""

    def __init__(self, channels=16, depth_mapping="mlda", min_depth=0.1, max_depth=100.0):
        super().__init__()
        if depth_mapping not in DEPTH_MAPPINGS:
            raise ValueError(f"depth_mapping {depth_mapping!r}: expected one of {DEPTH_MAPPINGS}")
        self.depth_mapping, self.min_depth, self.max_depth = depth_mapping, min_depth, max_depth
        self.up = nn.Sequential(nn.Conv2DTranspose(channels, channels, 4, stride=2, padding=1),
                                nn.BatchNorm2D(channels), nn.ReLU())
        self.head = nn.Conv2D(channels, 1, 3, padding=1)

    def sigmoid_of(self, depth):
        """The decoder's sigmoid output s that maps to `depth` metres (the inverse mapping)."""
        if self.depth_mapping == "paper":
            return 1.0 / (depth + 1.0)
        return (1.0 / depth - 1.0 / self.max_depth) / (1.0 / self.min_depth - 1.0 / self.max_depth)

    def forward(self, z):
        # paddle.reciprocal, not 1.0 / x: the latter traces to full_batch_size_like, which paddle2onnx refuses
        s = F.sigmoid(self.head(self.up(z)))
        if self.depth_mapping == "paper":
            return paddle.reciprocal(paddle.clip(s, min=1e-6)) - 1.0
        min_disp, max_disp = 1.0 / self.max_depth, 1.0 / self.min_depth
        return paddle.reciprocal(min_disp + (max_disp - min_disp) * s)


def _timestep(t):
    return paddle.to_tensor([t], dtype="int64")


def _init_like_torch(layer):
    """PyTorch's default initialisation (the reference code's): weight, bias ~ U(+-1/sqrt(fan_in))."""
    for sub in layer.sublayers():
        if isinstance(sub, (nn.Conv2D, nn.Conv2DTranspose)):
            # dim 1 x k x k: in_channels x k x k of a Conv2D; of a Conv2DTranspose (weight in x out x k x k)
            # out_channels x k x k, which is also what torch computes for its transposed convolutions
            fan_in = sub.weight.shape[1] * math.prod(sub.weight.shape[2:])
            init = nn.initializer.Uniform(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
            init(sub.weight)
            if sub.bias is not None:
                init(sub.bias)
    return layer


class DiffusionHead(nn.Layer):
    """The trainable head: neck, latent encoder E, denoiser, decoder D, and the alpha_bar table.
    Options: HEAD_DEFAULTS (cond_channels narrows it; the others are docs/DIFFUSION_REFINEMENT.md §5's)."""

    def __init__(self, num_ch_enc=NUM_CH_ENC, **options):
        super().__init__()
        unknown = set(options) - set(HEAD_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown diffusion head options {sorted(unknown)}")
        self.config = dict(HEAD_DEFAULTS, **options)
        cfg = self.config
        self.neck = ConditionNeck(num_ch_enc, cfg["cond_channels"])
        self.encoder = LatentEncoder(cfg["latent_channels"])
        self.denoiser = Denoiser(cfg["cond_channels"], cfg["latent_channels"], cfg["num_train_timesteps"],
                                 cfg["paper_output_act"])
        self.decoder = LatentDecoder(cfg["latent_channels"], cfg["depth_mapping"], cfg["min_depth"], cfg["max_depth"])
        self.alphas_cumprod = ddim.alphas_cumprod(cfg["num_train_timesteps"])
        _init_like_torch(self)
        # [ours] the output starts near INITIAL_DEPTH metres, a street scene's typical depth, instead of
        # sigmoid 0.5 (0.2 m with the mlda mapping): the first steps then learn shape, not a 50x scale
        s0 = self.decoder.sigmoid_of(INITIAL_DEPTH)
        nn.initializer.Constant(math.log(s0 / (1 - s0)))(self.decoder.head.bias)

    # -------- the pieces the eager loop and the exported step model share
    def alpha_bar(self, t, below=1.0):
        """alpha_bar at int64 tensor t (any shape), `below` where t < 0 (1: set_alpha_to_one)."""
        table = paddle.to_tensor(self.alphas_cumprod)
        ab = paddle.gather(table, paddle.clip(t.reshape([-1]), min=0))
        return paddle.where(t.reshape([-1]) < 0, paddle.full_like(ab, below), ab)

    def prepare(self, features, disp, noise, t_start):
        """(c, z_start): the condition and the start latent E(sigma_0) noised to timestep t_start
        (int64 [1] tensor; -1 = pure noise: alpha_bar 0, z = e). noise: 16 x h x w or B x 16 x h x w."""
        cond = self.neck(features, disp)
        z_prior = self.encoder(disp)
        if noise.ndim == 3:
            noise = noise.unsqueeze(0)
        return cond, ddim.noise_latent(z_prior, noise, self.alpha_bar(t_start, below=0.0).reshape([-1, 1, 1, 1]))

    def step(self, z, t, t_prev, cond):
        """One denoiser call and DDIM update from timestep t to t_prev (int64 [1] tensors)."""
        eps = self.denoiser(z, t, cond)
        ab_t, ab_prev = self.alpha_bar(t), self.alpha_bar(t_prev)
        return ddim.ddim_update(z, eps, ab_t.reshape([-1, 1, 1, 1]), ab_prev.reshape([-1, 1, 1, 1]))

    def decode(self, z):
        return self.decoder(z)

    # -------- the loop
    def schedule(self, ddim_steps=None, strength=None):
        """(start timestep, [(t, t_prev)]) of a run (utils.diffusion.ddim.schedule; None: the head's options)."""
        return ddim.schedule(ddim_steps or self.config["ddim_steps"], strength or self.config["strength"],
                             self.config["num_train_timesteps"])

    def sample(self, features, disp, noise, ddim_steps=None, strength=None, grad_steps=0):
        """(depth, z_0, c): the full refinement. grad_steps K > 0 keeps autograd only for the last K
        denoiser calls (the earlier ones run under no_grad: memory bound for training)."""
        return self.run_schedule(features, disp, noise, self.schedule(ddim_steps, strength), grad_steps)

    def run_schedule(self, features, disp, noise, schedule, grad_steps=0):
        """sample() for a schedule (t_start, [(t, t_prev)]) computed beforehand (as the unrolled
        export does: its timesteps become constants of the program)."""
        t_start, pairs = schedule
        cond, z = self.prepare(features, disp, noise, _timestep(t_start))
        for i, (t, t_prev) in enumerate(pairs):
            if grad_steps and i < len(pairs) - grad_steps:
                with paddle.no_grad():
                    z = self.step(z, _timestep(t), _timestep(t_prev), cond).detach()
            else:
                z = self.step(z, _timestep(t), _timestep(t_prev), cond)
        return self.decode(z), z, cond

    def ddim_loss(self, z0, cond, t, noise):
        """Self-diffusion loss: mean((eps_theta(sqrt(ab_t) z0 + sqrt(1-ab_t) e, t, c) - e)^2) with
        t (int64 [B]) and e drawn by the caller."""
        ab = self.alpha_bar(t).reshape([-1, 1, 1, 1])
        z_t = ddim.noise_latent(z0, noise, ab)
        return ((self.denoiser(z_t, t, cond) - noise) ** 2).mean()


class RefinedDepthNet(nn.Layer):
    """MLDA-Net's DepthNet + DiffusionHead: (image B x 3 x H x W in [0, 1], noise 16 x H/2 x W/2)
    -> metric depth B x 1 x H x W. `refine` returns the intermediate maps too."""

    def __init__(self, depth_net, head):
        super().__init__()
        self.depth_net, self.head = depth_net, head

    def mlda(self, image):
        """(features F_0..F_4, sigma_0): MLDA-Net's encoder features and scale-0 disparity."""
        features = self.depth_net.encoder(image)
        return features, self.depth_net.decoder(features, scales=(0,))[("disp", 0)]

    def refine(self, image, noise, ddim_steps=None, strength=None, grad_steps=0, freeze_mlda=True):
        """{"depth", "latent" (z_0), "cond", "disp"}: with freeze_mlda MLDA runs without gradients."""
        if freeze_mlda:
            with paddle.no_grad():
                features, disp = self.mlda(image)
            features, disp = [f.detach() for f in features], disp.detach()
        else:
            features, disp = self.mlda(image)
        depth, z0, cond = self.head.sample(features, disp, noise, ddim_steps, strength, grad_steps)
        return {"depth": depth, "latent": z0, "cond": cond, "disp": disp}

    def forward(self, image, noise, ddim_steps=None, strength=None):
        return self.refine(image, noise, ddim_steps, strength)["depth"]

    def noise_for(self, image_height, image_width, seed=None):
        """The seeded start noise (a Paddle tensor) for inputs of image_height x image_width."""
        seed = self.head.config["noise_seed"] if seed is None else seed
        return paddle.to_tensor(seeded_noise(seed, image_height // 2, image_width // 2,
                                             self.head.config["latent_channels"]))
