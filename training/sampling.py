"""Resumable, reproducible sampling: the order of an epoch and every sample's augmentation are
functions of (seed, epoch, index) only, so a resumed run, or one with another number of workers
or processes, sees exactly the data an uninterrupted one would have."""
import numpy as np
import paddle


def sample_seed(seed, epoch, index):
    """The augmentation seed of sample `index` in `epoch` (< 2^32, as RandomState needs)."""
    return ((seed * 1000003 + epoch) * 1000003 + index) % 2 ** 32


class SeededDataset(paddle.io.Dataset):
    """Wraps a dataset with `get_item(index, rng)` so that key `epoch * len + index` returns sample
    `index` augmented with a RandomState seeded by sample_seed(seed, epoch, index): no global
    random state is read or changed, whatever runs in the same process or worker."""

    def __init__(self, dataset, seed):
        self.dataset, self.seed = dataset, seed

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        epoch, index = divmod(int(key), len(self.dataset))
        return self.dataset.get_item(index, np.random.RandomState(sample_seed(self.seed, epoch, index)))


class ResumableBatchSampler(paddle.io.DistributedBatchSampler):
    """DistributedBatchSampler whose epoch order is a permutation seeded by (seed, epoch), that can
    start in the middle of an epoch, and that yields SeededDataset keys. Each process takes every
    nranks-th index of the padded permutation, so the ranks see disjoint samples."""

    def __init__(self, dataset, batch_size, shuffle, seed):
        super().__init__(dataset, batch_size, shuffle=shuffle, drop_last=True)
        self.seed, self.start_batch = seed, 0

    def set_epoch(self, epoch, start_batch=0):
        self.epoch, self.start_batch = epoch, start_batch

    def __iter__(self):
        n = len(self.dataset)
        order = (np.random.RandomState(self.seed + self.epoch).permutation(n) if self.shuffle
                 else np.arange(n))
        order = np.resize(order, self.total_size)  # pad by repeating, so every rank gets as many
        mine = order[self.local_rank::self.nranks] + self.epoch * n
        for b in range(self.start_batch, len(self)):
            yield mine[b * self.batch_size:(b + 1) * self.batch_size].tolist()

    def __len__(self):
        return self.num_samples // self.batch_size
