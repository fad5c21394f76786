"""KITTI raw's GPS/IMU (OXTS) records, Paddle-free: the speed of the vehicle and the distance it
travelled between two frames, for velocity supervision (PackNet-SfM, Guizilini et al. CVPR 2020).

Layout of a drive folder (KITTI raw's "sync" data):
    <drive>/oxts/data/<10-digit frame>.txt   one line of 30 numbers (OXTS_FIELDS), one file per frame
    <drive>/oxts/timestamps.txt              line i: "YYYY-MM-DD HH:MM:SS.fffffffff" of frame i
vf, vl, vu (fields 8, 9, 10) are the forward, leftward and upward velocities in m/s in the vehicle
frame, so the speed is sqrt(vf^2 + vl^2 + vu^2) whatever the heading.

Distance between frames i and j: the mean of the two speeds times |t_j - t_i| (the trapezoidal rule
for the path length). At KITTI's 10 Hz the path between neighbouring frames is all but straight,
so this is also the length of the straight translation the pose network predicts (the chord of a
circle of 20 m radius over 1.5 m is 0.05 % shorter than the arc); accelerations (KITTI: below
~3 m/s^2) change the speed by a few per cent within 0.1 s, which the mean of both ends follows.
"""
import os
from datetime import datetime, timezone

import numpy as np

OXTS_FIELDS = ("lat", "lon", "alt", "roll", "pitch", "yaw", "vn", "ve", "vf", "vl", "vu", "ax", "ay", "az",
               "af", "al", "au", "wx", "wy", "wz", "wf", "wl", "wu", "pos_accuracy", "vel_accuracy",
               "navstat", "numsats", "posmode", "velmode", "orimode")
VF, VL, VU = 8, 9, 10
OXTS_DIR = "oxts"


class OxtsError(ValueError):
    """A missing or malformed oxts file (the message names it)."""


def oxts_path(drive_dir, frame):
    """<drive_dir>/oxts/data/<10-digit frame>.txt"""
    return os.path.join(drive_dir, OXTS_DIR, "data", f"{int(frame):010d}.txt")


def timestamps_path(drive_dir):
    return os.path.join(drive_dir, OXTS_DIR, "timestamps.txt")


def read_oxts(path):
    """The 30 numbers of one oxts file, float64 array (OXTS_FIELDS order)."""
    try:
        with open(path) as f:
            values = np.array(f.read().split(), dtype=np.float64)
    except FileNotFoundError:
        raise OxtsError(f"missing oxts file: {path}") from None
    except ValueError:
        raise OxtsError(f"{path}: not {len(OXTS_FIELDS)} numbers") from None
    if values.size != len(OXTS_FIELDS):
        raise OxtsError(f"{path}: {values.size} numbers, expected {len(OXTS_FIELDS)}")
    return values


def speed(values):
    """Speed (m/s) of one oxts record: |(vf, vl, vu)|."""
    return float(np.linalg.norm(values[[VF, VL, VU]]))


def parse_timestamp(text):
    """Seconds since 1970 (float64) of a KITTI timestamp 'YYYY-MM-DD HH:MM:SS.fffffffff' (UTC).
    The fraction is read as a decimal (nanoseconds), which datetime alone would truncate."""
    text = text.strip()
    whole, _, fraction = text.partition(".")
    t = datetime.strptime(whole, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return t + (float("0." + fraction) if fraction else 0.0)


def read_timestamps(path):
    """Seconds (float64 array) of every line of a timestamps.txt."""
    try:
        with open(path) as f:
            lines = [line for line in f if line.strip()]
    except FileNotFoundError:
        raise OxtsError(f"missing oxts timestamps: {path}") from None
    try:
        return np.array([parse_timestamp(line) for line in lines])
    except ValueError as e:
        raise OxtsError(f"{path}: {e}") from None


def travel_distance(speed_a, speed_b, time_a, time_b):
    """Distance (m) between two frames: (speed_a + speed_b) / 2 x |time_b - time_a|."""
    return 0.5 * (speed_a + speed_b) * abs(time_b - time_a)


class DriveOxts:
    """The oxts of one drive folder, read lazily and cached (a dataset keeps one per drive)."""

    def __init__(self, drive_dir):
        self.drive_dir = drive_dir
        self._times = None
        self._speeds = {}

    def time(self, frame):
        if self._times is None:
            self._times = read_timestamps(timestamps_path(self.drive_dir))
        if not 0 <= frame < len(self._times):
            raise OxtsError(f"{timestamps_path(self.drive_dir)}: no line for frame {frame}")
        return self._times[frame]

    def speed(self, frame):
        if frame not in self._speeds:
            self._speeds[frame] = speed(read_oxts(oxts_path(self.drive_dir, frame)))
        return self._speeds[frame]

    def travel(self, frame_a, frame_b):
        """Distance (m) travelled between two frames (travel_distance)."""
        return travel_distance(self.speed(frame_a), self.speed(frame_b), self.time(frame_a), self.time(frame_b))
