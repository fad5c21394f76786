"""Data-parallel training with paddle.distributed.launch: two CPU processes (gloo) end with identical
weights, different from the initial ones, and only rank 0 writes the run folder."""
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

from tests.synthetic_fixture import synthetic_kitti, synthetic_kitti_hints  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs train.main in each process, then dumps that process's weights for the comparison.
DRIVER = f"""
import sys
sys.path.insert(0, {ROOT!r})
import paddle, paddle.distributed as dist
import train, trainer
states = {{}}
original_train = trainer.Trainer.train
def train_and_keep(self):
    result = original_train(self)
    states.update({{f"{{n}}/{{k}}": v for n, m in self.models.items() for k, v in m.state_dict().items()}})
    return result
trainer.Trainer.train = train_and_keep
train.main(sys.argv[2:])
paddle.save(states, f"{{sys.argv[1]}}/rank{{dist.get_rank()}}.pdparams")
"""


@pytest.mark.slow
def test_two_cpu_processes_end_with_identical_weights(synthetic_kitti_hints, tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    log_dir = tmp_path / "runs"
    args = ["--dataset", "synthetic", "--data_path", synthetic_kitti_hints["data_path"], "--log_dir", str(log_dir),
            "--height", "64", "--width", "64", "--batch_size", "1", "--max_steps", "2", "--num_workers", "0", "--device", "cpu"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
           "--log_dir", str(tmp_path / "launch_logs"), str(driver), str(tmp_path)] + args
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    logs = "".join(p.read_text(errors="replace")[-2000:] for p in (tmp_path / "launch_logs").glob("workerlog.*"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:] + logs

    rank0, rank1 = (paddle.load(str(tmp_path / f"rank{r}.pdparams")) for r in (0, 1))
    assert rank0.keys() == rank1.keys() and rank0
    for key in rank0:
        assert np.array_equal(rank0[key].numpy(), rank1[key].numpy()), key

    # training changed the weights (same seed, same build order as the Trainer: the initial ones)
    import networks
    paddle.seed(0)
    initial = networks.build_nets()
    moved = [k for k, v in initial["depth"].state_dict().items()
             if not np.array_equal(v.numpy(), rank0[f"depth/{k}"].numpy())]
    assert moved

    run = log_dir / "mlda"
    assert (run / "checkpoint" / "optimizer.pdopt").is_file()
    log_text = (run / "train.log").read_text()
    assert "x 2 process(es)" in log_text and log_text.count("training [0, -1, 1, 's']") == 1
