"""Files in and out: reading images and videos, writing predictions, the photo/video output loop, atomic writes and manifests."""
