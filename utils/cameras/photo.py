"""The camera of each photo of a prediction run, and the focal-length rescaling of metric depth. Paddle-free.

Camera, in this order: the user's (--camera camera.json, or a dict), the photo's EXIF focal length
(utils/cameras/exif.py; centred principal point), the weights' training camera (opt.json / deploy.json
"camera"), KITTI's. The given, training and KITTI's cameras are utils/cameras/camera.py's CameraChoice (read
and checked there), said as before.

Focal rescaling (Metric3D's canonical-camera rule). A network that learned metric depth from one camera
judges distance by apparent size: an object of size S at depth Z spans fx S / Z pixels. Shown a photo whose
focal length differs, it answers with the depth at which the TRAINING camera would have seen that span:
    fx_train S / Z_pred = fx_photo S / Z_true   =>   Z_true = Z_pred * fx_photo / fx_train
with both focal lengths in pixels at the same image width (the network sees every photo resized to its
input width): fx_photo / W_photo against fx_train / W_train (KITTI's 0.58). It holds for metric weights
(stereo with a real baseline, sparse depth, KITTI stereo x5.4) on photos with the training images' aspect
ratio and no strong distortion; it does not fix relative depth (no scale to correct), a photo of another
aspect ratio (the resize then stretches it, and the vertical focal ratio differs from the horizontal one),
cropped photos with the full frame's EXIF, or scenes unlike the training ones.
"""
import os

from utils.cameras.camera import CameraChoice, CameraError
from utils.cameras.exif import ExifError, exif_camera
from utils.geometry import pointcloud


class PhotoCameras(CameraChoice):
    """CameraChoice (the user's, the training or KITTI's camera) that first asks each photo's EXIF when no camera
    was given: intrinsics(width, height, photo) -> (fx, fy, cx, cy); `notes` {photo: which camera, for EXIF ones}."""

    def __init__(self, camera=None, trained_camera=None, exif=True):
        super().__init__(camera, trained_camera)
        self.trained_camera = trained_camera
        self.given = camera is not None
        self.exif = exif and not self.given
        self.notes = {}
        self._exif = {}

    def exif_camera(self, photo, width, height):
        """The EXIF camera dict of a photo (a path or PIL image) at width x height, or None (no EXIF focal length,
        EXIF not asked). Raises CameraError for corrupt EXIF."""
        photo = os.fspath(photo) if isinstance(photo, os.PathLike) else photo
        if not self.exif or not (isinstance(photo, str) or hasattr(photo, "getexif")):
            return None   # no EXIF wanted, or an array (no EXIF to read)
        key = (photo, width, height) if isinstance(photo, str) else None   # a path is read once per size
        if key is None or key not in self._exif:
            try:
                found = exif_camera(photo, width, height)
            except ExifError as e:
                raise CameraError(str(e)) from None
            if key is None:
                return found[0] if found else None
            self._exif[key] = found
            if found is not None:
                self.notes[photo] = f"camera from its {found[1]}"
        found = self._exif[key]
        return found[0] if found else None

    def intrinsics(self, width, height, photo=None):
        camera = self.exif_camera(photo, width, height)
        if camera is None:
            return super().intrinsics(width, height)
        return camera["fx"], camera["fy"], camera["cx"], camera["cy"]

    def points(self, depth, rgb, photo=None):
        """pointcloud.cloud of a depth map and its colours with the photo's camera at their size."""
        h, w = depth.shape
        return pointcloud.cloud(depth, rgb, self.intrinsics(w, h, photo))


def normalised_fx(camera):
    """fx / width of a camera dict (KITTI's normalised camera has width 1)."""
    return camera["fx"] / camera["width"]


class FocalRescale:
    """Per photo, the factor depth_true / depth_pred = (fx_photo / W) / (fx_train / W_train) of metric weights
    (module docstring). The photo's camera: the given one, else its EXIF; neither: factor 1 (its camera is
    taken to be the training camera), no note. of(photo, width, height) -> (factor, note or None, metadata)."""

    def __init__(self, cameras):
        self.cameras = cameras
        self.trained = normalised_fx(CameraChoice(None, cameras.trained_camera).camera)

    def of(self, photo=None, width=None, height=None):
        if self.cameras.given:
            if width:
                self.cameras.intrinsics(width, height)   # CameraError for a photo the camera does not fit
            fx_w, source = normalised_fx(self.cameras.camera), self.cameras.label
        else:
            camera = self.cameras.exif_camera(photo, width, height) if width else None
            if camera is None:
                return 1.0, None, None
            fx_w, source = normalised_fx(camera), "its EXIF"
        factor = fx_w / self.trained
        note = (f"metric depth x {factor:.4g} for the photo's focal length (fx {fx_w:.4g} W from {source}; the weights "
                f"were trained at fx {self.trained:.4g} W; --no-focal_rescale turns this off)")
        metadata = {"focal_rescale": factor, "fx_over_width_photo": fx_w, "fx_over_width_train": self.trained,
                    "photo_camera": source}
        return factor, note, metadata


def focal_factor(photo, size, camera=None, trained_camera=None):
    """FocalRescale's factor of one photo (a path or PIL image; `size` its width, height) for the Python API."""
    return FocalRescale(PhotoCameras(camera, trained_camera)).of(photo, *size)[0]
