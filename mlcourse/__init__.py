"""mlcourse: the helper package behind the meta-learning course's notebooks.

Subpackages: ``data`` (data sets, episodic tasks), ``models``, ``algorithms`` (one functional core),
``train`` (loop, checkpoints, evaluation), ``widgets``/``plots`` (thin layers for the notebooks),
``bench`` and ``cli``.
"""

__version__ = "0.1.0"
