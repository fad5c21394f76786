"""Data: KITTI raw loader (datasets.kitti), one's own sequences and camera (datasets.folder) (the synthetic KITTI generator is the top-level package synthetic)."""
import utils  # noqa: F401  (first: silences Paddle's import-time ccache warning before one-line errors)
from datasets.kitti import (ColorJitter, DataError, KITTIRAWDataset, MissingFileError, batch_to_float,
                            draw_color_jitter, parse_split_line, read_split)
from datasets.batch import collate
from datasets.folder import FolderDataset
from datasets.factory import split_files_folder, train_val_datasets
