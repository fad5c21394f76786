"""Data: what every layout's dataset shares (datasets.mono), KITTI raw (datasets.kitti), one's own sequences
and camera (datasets.folder), the batches the loader sends (datasets.batch) and the factory of a split's
datasets (datasets.factory). The synthetic KITTI generator is the top-level package synthetic."""
import utils  # noqa: F401  (first: silences Paddle's import-time ccache warning before one-line errors)
from datasets.batch import ColorJitter, batch_to_float, collate, draw_color_jitter
from datasets.mono import DataError, MonoDataset
from datasets.kitti import KITTIRAWDataset, MissingFileError, parse_split_line, read_split
from datasets.folder import FolderDataset
from datasets.factory import DATASETS, split_files_folder, train_val_datasets
