"""Disparity <-> depth conventions, free of Paddle so that the ONNX route runs without it."""

STEREO_SCALE_FACTOR = 5.4  # KITTI baseline 0.54 m over the training baseline 0.1


def disp_to_depth(disp, min_depth, max_depth):
    """Sigmoid output -> (scaled disparity, depth):
    scaled = 1/max + (1/min - 1/max) * disp, depth = 1 / scaled. Tensors or numpy arrays."""
    min_disp = 1.0 / max_depth
    max_disp = 1.0 / min_depth
    scaled_disp = min_disp + (max_disp - min_disp) * disp
    return scaled_disp, 1.0 / scaled_disp
