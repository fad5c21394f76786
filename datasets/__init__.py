"""Data: KITTI raw loader (datasets.kitti), one's own sequences and camera (datasets.folder) (the synthetic KITTI generator is the top-level package synthetic)."""
import utils  # noqa: F401  (first: silences Paddle's import-time ccache warning before one-line errors)
from datasets.batch import ColorJitter, batch_to_float, collate, draw_color_jitter
from datasets.kitti import DataError, KITTIRAWDataset, MissingFileError, parse_split_line, read_split
from datasets.folder import FolderDataset
from datasets.factory import split_files_folder, train_val_datasets
