"""MLDA-Net: DepthNet (multi-level encoder with global attention + dual-attention depth decoder),
PoseNet (pose encoder + decoder), and weights folders of either layout."""
from networks.attention import AttentionGuidedFilter, GlobalAttention, GridAttention, attention_guided_filter
from networks.decoder import DepthDecoder, PoseDecoder
from networks.encoder import NUM_CH_ENC, MultiLevelEncoder
from networks.model import DepthNet, PoseNet, build_net, build_nets, weight_files
from networks.weights import (DEFAULT_OPT, FILE_NAMES, REFINE_FILE, CheckpointError, convert_folder, has_refine_head,
                              load_into, load_refine_head, load_weights_folder, read_opt, save_refine_head,
                              save_weights_folder)
from networks.diffusion import DiffusionHead, RefinedDepthNet, seeded_noise
