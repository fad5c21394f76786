"""MLDA-Net: multi-level encoder with global attention, dual-attention depth decoder, pose decoder."""
from networks.attention import AttentionGuidedFilter, GlobalAttention, GridAttention, attention_guided_filter
from networks.checkpoint import (DEFAULT_OPT, MODEL_NAMES, CheckpointError, build_model, build_models,
                                 load_models, load_state, original_state_dict, read_opt, save_models,
                                 save_opt)
from networks.decoder import DepthDecoder, PoseDecoder
from networks.encoder import NUM_CH_ENC, MultiLevelEncoder
from networks import lsuv  # noqa: F401
