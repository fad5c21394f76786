"""Self-supervised losses: photometric reprojection, auto-masking, depth hints, smoothness."""
from losses.reprojection import generate_images_pred, reprojection_loss, sample, warp_image
from losses.total import compute_losses, hint_loss, min_over_sources, select_masks
