"""Training support of trainer.py and train_refine.py: the loop they share (checkpoints, stops),
resumable sampling, the checkpoint format, the run folder."""
from training.checkpoint import (ResumeError, choose_checkpoint, missing_file, optimizer_state, rename_prefixes,
                                 restore_state, save_checkpoint, state_bytes, trainer_state, write_state)
from training.loop import TrainingLoop, checkpoint_due, resume_from, resumed_options
from training.run_folder import RunFolderBusy, RunLock, disk_usage, human_size, run_log
from training.sampling import ResumableBatchSampler, SeededDataset, sample_seed
from training.stop import StopRequested, StopSignals, loader_batches, worker_init
