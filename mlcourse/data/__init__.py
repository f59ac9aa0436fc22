"""Data sets and episodic tasks for the course.

``load_omniglot``/``load_cifar100`` return an ``ImageClassDataset`` (the whole split as one uint8 tensor);
``EpisodeSampler`` turns it into ``TaskBatch``es of N-way K-shot tasks; ``SinusoidTasks`` samples MAML's
sinusoid regression tasks. Downloads are checksummed; ``import_*`` brings in a local copy (no network).
"""
from .cifar100 import (
                       CIFAR100_SCHEMES,
                       CIFAR100_SPLITS,
                       download_cifar100,
                       import_cifar100,
                       load_cifar100,
                       write_cifar100_split_files,
)
from .download import ChecksumError, DataError, DataFormatError, DownloadError
from .images import ImageClassDataset
from .omniglot import OMNIGLOT_SPLITS, download_omniglot, import_omniglot, load_omniglot
from .sampler import EpisodeSampler
from .sinusoid import SinusoidTasks
from .tasks import TaskBatch

__all__ = [
    "TaskBatch", "ImageClassDataset", "EpisodeSampler", "SinusoidTasks",
    "load_omniglot", "import_omniglot", "download_omniglot", "OMNIGLOT_SPLITS",
    "load_cifar100", "import_cifar100", "download_cifar100", "CIFAR100_SCHEMES", "CIFAR100_SPLITS",
    "write_cifar100_split_files",
    "DataError", "ChecksumError", "DownloadError", "DataFormatError",
]
