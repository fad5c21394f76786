"""Training support of trainer.py: resumable sampling, the checkpoint format, the run folder."""
from training.checkpoint import (ResumeError, load_checkpoint, optimizer_state, rename_prefixes,
                                 save_checkpoint, trainer_state)
from training.run_folder import RunFolderBusy, RunLock, disk_usage, human_size
from training.sampling import ResumableBatchSampler, SeededDataset, sample_seed
