"""Ray casting of the scene's boxes and ground plane: camera images with exact depth, velodyne scans."""
import numpy as np

from synthetic.scene import CAMERA_HEIGHT, GROUND_TEXTURE, MAX_RANGE, SIDEWALK_TEXTURE, VELO_ELEVATIONS


def cast(origin, dirs, boxes, max_t, candidates=None):
    """Nearest hit of rays origin + t*dirs (N x 3) with the ground plane and the boxes.

    candidates(k) -> index array of the rays that may hit box k (None: all rays).
    Returns t (N,), surface id (N,: -1 nothing, 0 ground, k+1 box k), hit face axis (N,: 0 x, 1 y, 2 z).
    """
    n = dirs.shape[0]
    t_best = np.full(n, np.inf)
    surface = np.full(n, -1, np.int32)
    axis = np.full(n, 1, np.int8)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = (CAMERA_HEIGHT - origin[1]) / dirs[:, 1]
    ground = (dirs[:, 1] > 0) & (t_ground < max_t)
    t_best[ground] = t_ground[ground]
    surface[ground] = 0
    inv = 1.0 / np.where(np.abs(dirs) < 1e-12, 1e-12, dirs)
    inv_x, inv_y, inv_z = (np.ascontiguousarray(inv[:, i]) for i in range(3))
    for k, box in enumerate(boxes):
        idx = None if candidates is None else candidates(k)
        if idx is not None and idx.size == 0:
            continue
        ix, iy, iz = (inv_x, inv_y, inv_z) if idx is None else (inv_x[idx], inv_y[idx], inv_z[idx])
        ax, bx = (box[0] - origin[0]) * ix, (box[3] - origin[0]) * ix
        ay, by = (box[1] - origin[1]) * iy, (box[4] - origin[1]) * iy
        az, bz = (box[2] - origin[2]) * iz, (box[5] - origin[2]) * iz
        nx, ny, nz = np.minimum(ax, bx), np.minimum(ay, by), np.minimum(az, bz)
        t_near = np.maximum(np.maximum(nx, ny), nz)
        t_far = np.minimum(np.minimum(np.maximum(ax, bx), np.maximum(ay, by)), np.maximum(az, bz))
        current = t_best if idx is None else t_best[idx]
        hit = (t_near <= t_far) & (t_near > 1e-6) & (t_near < current)
        if not hit.any():
            continue
        face = np.where(nx[hit] >= np.maximum(ny[hit], nz[hit]), 0, np.where(ny[hit] >= nz[hit], 1, 2))
        rows = np.flatnonzero(hit) if idx is None else idx[hit]
        t_best[rows] = t_near[hit]
        surface[rows] = k + 1
        axis[rows] = face
    surface[t_best > max_t] = -1
    return t_best, surface, axis


def _box_candidates(boxes, origin, dist):
    """Boxes whose closest point lies within dist of origin."""
    closest = np.clip(origin, boxes[:, 0:3], boxes[:, 3:6])
    return boxes[np.linalg.norm(closest - origin, axis=1) < dist]


def _box_corners(box):
    return np.array(np.meshgrid([box[0], box[3]], [box[1], box[4]], [box[2], box[5]], indexing="ij")).reshape(3, 8).T


_BOX_EDGES = [(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1]


def _screen_candidates(boxes, rotation, centre, k, width, height):
    """candidates(k) for a pinhole camera: the pixels inside box k's projected bounding rectangle
    (the box clipped at a near plane first, so boxes reaching behind the camera are handled exactly)."""
    near = 0.05
    grid = np.arange(width * height).reshape(height, width)

    def candidates(i):
        cam = (_box_corners(boxes[i]) - centre) @ rotation      # world -> camera coordinates
        front = cam[:, 2] > near
        if not front.any():
            return np.empty(0, np.int64)
        pts = [cam[front]]
        for a, b in _BOX_EDGES:       # edges crossing the near plane
            if front[a] != front[b]:
                s = (near - cam[a, 2]) / (cam[b, 2] - cam[a, 2])
                pts.append((cam[a] + s * (cam[b] - cam[a]))[None])
        pts = np.concatenate(pts)
        u = pts[:, 0] / pts[:, 2] * k[0, 0] + k[0, 2]
        v = pts[:, 1] / pts[:, 2] * k[1, 1] + k[1, 2]
        c0, c1 = max(int(np.floor(u.min())), 0), min(int(np.ceil(u.max())) + 1, width)
        r0, r1 = max(int(np.floor(v.min())), 0), min(int(np.ceil(v.max())) + 1, height)
        if c0 >= c1 or r0 >= r1:
            return np.empty(0, np.int64)
        return grid[r0:r1, c0:c1].ravel()
    return candidates


def _azimuth_candidates(boxes, velo_to_world, azimuths, num_beams):
    """candidates(k) for the velodyne: the rays whose azimuth lies within box k's azimuth range
    (exact for a convex box that does not surround the scanner's vertical axis)."""
    step = azimuths[1] - azimuths[0]
    cols = azimuths.size
    grid = np.arange(num_beams * cols).reshape(num_beams, cols)
    world_to_velo = np.linalg.inv(velo_to_world)

    def candidates(i):
        pts = _box_corners(boxes[i]) @ world_to_velo[:3, :3].T + world_to_velo[:3, 3]
        az = np.arctan2(pts[:, 1], pts[:, 0])
        mid = np.arctan2(pts[:, 1].mean(), pts[:, 0].mean())
        rel = np.angle(np.exp(1j * (az - mid)))
        if rel.max() - rel.min() > np.pi * 0.9:   # scanner (nearly) inside the footprint: all rays
            return None
        c0 = int(np.floor((mid + rel.min() - azimuths[0]) / step)) - 1
        c1 = int(np.ceil((mid + rel.max() - azimuths[0]) / step)) + 2
        return grid[:, np.arange(c0, c1) % cols].ravel()
    return candidates


def _sample(pyramid, u, v, level):
    """Bilinear lookup of a tiling texture at texel coordinates (u, v) on mip level `level` (arrays)."""
    out = np.empty(u.shape + (3,), np.float32)
    for lev in np.unique(level):
        sel = level == lev
        img = pyramid[lev]
        h, w = img.shape[:2]
        flat = img.reshape(-1, 3)
        x = u[sel] * (0.5 ** lev) - 0.5
        y = v[sel] * (0.5 ** lev) - 0.5
        x0, y0 = np.floor(x), np.floor(y)
        fx, fy = (x - x0).astype(np.float32)[:, None], (y - y0).astype(np.float32)[:, None]
        x0 = x0.astype(np.int64) % w
        y0 = y0.astype(np.int64) % h
        x1, y1 = (x0 + 1) % w, (y0 + 1) % h
        y0 *= w
        y1 *= w
        top = flat[y0 + x0] + (flat[y0 + x1] - flat[y0 + x0]) * fx
        bottom = flat[y1 + x0] + (flat[y1 + x1] - flat[y1 + x0]) * fx
        out[sel] = top + (bottom - top) * fy
    return out


_LIGHT = np.array([-0.4, -1.0, -0.3]) / np.linalg.norm([-0.4, -1.0, -0.3])
_SKY_HORIZON, _SKY_ZENITH = np.array([0.86, 0.89, 0.93], np.float32), np.array([0.42, 0.58, 0.86], np.float32)
_ROAD_TINT, _SIDEWALK_TINT = (0.62, 0.62, 0.66), (0.85, 0.8, 0.75)


def _surface_params(p, s, a, boxes):
    """Per hit: texture id, tile size (m), tint (n x 3), texture coordinates (m) on the face's plane."""
    tu = np.where(a == 0, p[:, 2], p[:, 0])
    tv = np.where(a == 1, p[:, 2], p[:, 1])
    ground = s == 0
    sidewalk = ground & (np.abs(p[:, 0]) > 5.0)
    b = boxes[np.maximum(s - 1, 0)] if len(boxes) else np.zeros((s.size, 13))
    texture = np.where(ground, np.where(sidewalk, SIDEWALK_TEXTURE, GROUND_TEXTURE), b[:, 6]).astype(np.int64)
    tile = np.where(ground, np.where(sidewalk, 2.5, 4.0), b[:, 7])
    tint = np.where(ground[:, None], np.where(sidewalk[:, None], _SIDEWALK_TINT, _ROAD_TINT), b[:, 8:11])
    tu = tu + np.where(ground, 0, b[:, 11])
    tv = tv + np.where(ground, 0, b[:, 12])
    # dashed lane marking along the street centre
    lane = ground & (np.abs(p[:, 0]) < 0.08) & (np.mod(p[:, 2], 6.0) < 3.0)
    return texture, tile, tint.astype(np.float32), tu, tv, lane


def _shade(origin, dirs, t, surface, axis, boxes, textures, pixel_angle):
    """Colour of each ray: texture (mip level from the pixel footprint) x Lambert shading; sky gradient."""
    n = dirs.shape[0]
    colour = np.empty((n, 3), np.float32)
    length = np.sqrt(np.einsum("ij,ij->i", dirs, dirs))
    sky = surface < 0
    up = np.clip(-dirs[sky, 1] / length[sky], 0, 1).astype(np.float32)[:, None]
    colour[sky] = _SKY_HORIZON + up * (_SKY_ZENITH - _SKY_HORIZON)
    hit = np.flatnonzero(~sky)
    d, a = dirs[hit], axis[hit]
    p = origin + t[hit, None] * d
    texture, tile, tint, tu, tv, lane = _surface_params(p, surface[hit], a, boxes)
    d_axis = d[np.arange(hit.size), a]
    sign = -np.sign(d_axis)                                  # outward normal = sign * e_axis
    cosine = np.maximum(np.abs(d_axis) / length[hit], 0.3)   # |n . ray| (clipped: limits mip blur at grazing angles)
    distance = t[hit] * length[hit]
    rgb = np.empty((hit.size, 3), np.float32)
    for k in np.unique(texture):
        sel = texture == k
        pyr = textures[k]
        texels_per_m = pyr[0].shape[1] / tile[sel]
        footprint = distance[sel] * pixel_angle / cosine[sel] * texels_per_m
        level = np.clip(np.round(np.log2(np.maximum(footprint, 1))), 0, len(pyr) - 1).astype(np.int64)
        rgb[sel] = _sample(pyr, tu[sel] * texels_per_m, tv[sel] * texels_per_m, level)
    rgb[lane] = 0.95
    tint[lane] = 1.0
    light = (0.4 + 0.6 * np.maximum(sign * _LIGHT[a], 0)).astype(np.float32)
    colour[hit] = np.clip(rgb * tint * light[:, None], 0, 1)
    return colour


_RAYS = {}


def _camera_rays(k, width, height):
    """Rays K^-1 [u, v, 1] of every pixel (0-based), cached per camera."""
    key = (width, height, float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]))
    if key not in _RAYS:
        cols, rows = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
        _RAYS.clear()
        _RAYS[key] = np.stack([(cols - k[0, 2]) / k[0, 0], (rows - k[1, 2]) / k[1, 1], np.ones_like(cols)], -1).reshape(-1, 3)
    return _RAYS[key]


def render_camera(rotation, centre, k, width, height, boxes, textures, max_t):
    """Image (H x W x 3 uint8) and camera-z depth (H x W float32, 0 = sky) of a pinhole camera."""
    # unnormalised directions, so the ray parameter t is the camera z (einsum: BLAS is slow for N x 3 @ 3 x 3)
    dirs = np.einsum("ij,kj->ik", _camera_rays(k, width, height), rotation)
    near = _box_candidates(boxes, centre, max_t * 1.8)
    t, surface, axis = cast(centre, dirs, near, max_t, _screen_candidates(near, rotation, centre, k, width, height))
    colour = _shade(centre, dirs, t, surface, axis, near, textures, 1.0 / k[0, 0])
    depth = np.where(surface >= 0, t, 0).astype(np.float32).reshape(height, width)
    image = (colour.reshape(height, width, 3) * 255 + 0.5).astype(np.uint8)
    return image, depth


def render_velodyne(velo_to_world, boxes, azimuth_step):
    """Velodyne scan (N x 4 float32: x, y, z in the velodyne frame, reflectance) by ray casting.

    Reflectance is a per-surface constant (the loaders ignore it)."""
    elev = np.deg2rad(np.linspace(VELO_ELEVATIONS[0], VELO_ELEVATIONS[1], 64))
    azim = np.deg2rad(np.arange(-180, 180, azimuth_step))
    el, az = np.meshgrid(elev, azim, indexing="ij")
    local = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], -1).reshape(-1, 3)
    origin = velo_to_world[:3, 3]
    dirs = np.einsum("ij,kj->ik", local, velo_to_world[:3, :3])
    near = _box_candidates(boxes, origin, MAX_RANGE)
    t, surface, axis = cast(origin, dirs, near, MAX_RANGE, _azimuth_candidates(near, velo_to_world, azim, elev.size))
    hit = surface >= 0
    reflect = np.where(surface[hit] == 0, 0.3, near[np.maximum(surface[hit] - 1, 0), 8:11].mean(1) * 0.8)
    return np.hstack([local[hit] * t[hit, None], reflect[:, None]]).astype(np.float32)
