"""Data: KITTI raw loader (datasets.kitti) and the synthetic KITTI generator (datasets.synthetic)."""
from datasets.kitti import (DataError, KITTIRAWDataset, MissingFileError, draw_color_jitter, parse_split_line,
                            read_split)
