"""Self-supervised losses: photometric reprojection, auto-masking, depth hints, smoothness;
metric-scale losses: sparse depth, velocity."""
from losses.reprojection import generate_images_pred, reprojection_loss, sample, warp_image
from losses.total import compute_losses, hint_loss, min_over_sources, select_masks
from losses.sparse_depth import SPARSE_DEPTH_LOSSES, sparse_depth_loss, to_gt_size, velocity_loss
