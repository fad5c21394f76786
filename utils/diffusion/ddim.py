"""The DDIM sampler of the diffusion refinement head as small pure functions
(docs/DIFFUSION_REFINEMENT.md §2, §5; DiffusionDepth's settings).

Forward process: beta_t linear from 1e-4 to 0.02 over T = 1000 steps (float32, as torch's linspace),
alpha_bar_t = prod_{i <= t} (1 - beta_i), t = 0 .. T-1, and
    z_t = sqrt(alpha_bar_t) z_0 + sqrt(1 - alpha_bar_t) e,   e ~ N(0, I).
The denoiser predicts e (epsilon prediction). One deterministic DDIM step (eta = 0, no clipping),
from t to prev = t - T // N, with alpha_bar_prev = 1 when prev < 0 (set_alpha_to_one):
    x0 = (z_t - sqrt(1 - ab_t) eps) / sqrt(ab_t)
    z_prev = sqrt(ab_prev) x0 + sqrt(1 - ab_prev) eps.
Every function here works on numpy arrays and on Paddle tensors alike (only arithmetic), and the
module needs only numpy: the Paddle-free runtime (deployment/runtime.py) runs the same schedule.
"""
import numpy as np

NUM_TRAIN_TIMESTEPS = 1000
BETA_START, BETA_END = 1e-4, 0.02


def alphas_cumprod(num_train=NUM_TRAIN_TIMESTEPS, beta_start=BETA_START, beta_end=BETA_END):
    """alpha_bar_t for t = 0 .. num_train-1 (float32 array): cumulative product of 1 - beta_t,
    beta linear from beta_start to beta_end (ab_0 = 0.9999, ab_450 ~ 0.126, ab_950 ~ 1.06e-4)."""
    betas = np.linspace(beta_start, beta_end, num_train, dtype=np.float32)
    return np.cumprod(np.float32(1.0) - betas, dtype=np.float32)


def ddim_timesteps(ddim_steps, strength=1.0, num_train=NUM_TRAIN_TIMESTEPS):
    """The timesteps a sampling run visits, in order. The full schedule of N = ddim_steps is
    [(N-1) r, ..., r, 0] with r = num_train // N; `strength` s in (0, 1] keeps its last
    k = max(1, int(N s)) entries (the SDEdit / img2img convention: s = 1 is the whole schedule)."""
    if ddim_steps < 1 or ddim_steps > num_train:
        raise ValueError(f"ddim_steps {ddim_steps}: must be in 1..{num_train}")
    if not 0 < strength <= 1:
        raise ValueError(f"strength {strength}: must be in (0, 1]")
    r = num_train // ddim_steps
    full = [(ddim_steps - 1 - i) * r for i in range(ddim_steps)]
    k = max(1, int(ddim_steps * strength + 1e-9))  # + 1e-9: 0.29 x 100 is 28.999... in binary
    return full[-k:]


def step_size(ddim_steps, num_train=NUM_TRAIN_TIMESTEPS):
    """r = num_train // N: the distance between two visited timesteps (prev = t - r)."""
    return num_train // ddim_steps


def noise_latent(z0, noise, ab):
    """z_t = sqrt(ab) z0 + sqrt(1 - ab) e: the forward process at alpha_bar ab. ab = 0 gives e
    exactly (the paper's pure-noise start; z0 then only fixes the batch size by broadcasting)."""
    return ab ** 0.5 * z0 + (1 - ab) ** 0.5 * noise


def ddim_update(z, eps, ab_t, ab_prev):
    """One DDIM step (eta = 0): predicted x0 from (z_t, eps), then re-noised to alpha_bar_prev."""
    x0 = (z - (1 - ab_t) ** 0.5 * eps) / ab_t ** 0.5
    return ab_prev ** 0.5 * x0 + (1 - ab_prev) ** 0.5 * eps


def start_timestep(ddim_steps, strength, num_train=NUM_TRAIN_TIMESTEPS):
    """Timestep the start latent is noised to: -1 (pure noise, z = e exactly: alpha_bar taken as 0)
    when the whole schedule runs (strength 1, the paper), else the schedule's first timestep t_s."""
    ts = ddim_timesteps(ddim_steps, strength, num_train)
    return -1 if len(ts) == ddim_steps else ts[0]


def schedule(ddim_steps, strength, num_train=NUM_TRAIN_TIMESTEPS):
    """(start timestep, [(t, t_prev), ...]): everything a host loop needs to run the sampler."""
    r = step_size(ddim_steps, num_train)
    return start_timestep(ddim_steps, strength, num_train), [(t, t - r) for t in ddim_timesteps(ddim_steps, strength,
                                                                                                  num_train)]


def seeded_noise(seed, height, width, channels=16):
    """The fixed start noise e of a latent of height x width: channels x height x width float32,
    standard normal from numpy's default_rng(seed); the same for every image and batch slot."""
    return np.random.default_rng(seed).standard_normal((channels, height, width), np.float32)
