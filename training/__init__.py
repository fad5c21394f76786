"""Training support of trainer.py: resumable sampling, the checkpoint format, the run folder."""
from training.checkpoint import (ResumeError, load_checkpoint, missing_file, optimizer_state, rename_prefixes,
                                 restore_state, save_checkpoint, trainer_state, write_state)
from training.run_folder import RunFolderBusy, RunLock, disk_usage, human_size, run_log
from training.sampling import ResumableBatchSampler, SeededDataset, sample_seed
