"""mlcourse: the helper package behind the meta-learning course's notebooks.

Subpackages: ``data`` (data sets, episodic tasks), ``models``, ``algorithms`` (one functional core),
``train`` (loop, checkpoints, evaluation), ``widgets``/``plots`` (thin layers for the notebooks),
``bench`` and ``cli``.
"""

from .hostmemory import keep_freed_memory

__version__ = "0.1.0"

# glibc: reuse freed memory instead of page-faulting it in again every training step (bit-identical; eager steps up
# to ~1.5x faster on a 2-core CPU; MLCOURSE_MALLOC=default turns it off). See mlcourse.hostmemory.
keep_freed_memory()
