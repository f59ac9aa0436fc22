"""mlcourse: the helper package behind the meta-learning course's notebooks.

The library: ``data`` (data sets, episodic tasks), ``models``, ``algorithms`` (one functional core), ``train``
(loop, checkpoints, evaluation), ``shipped`` (the committed runs), ``bench`` and ``cli``. The course on top of it
lives in ``mlcourse.course`` (a module per chapter, ``widgets``, ``plots``, exercises, the book); the library never
imports it.

Importing the package changes nothing in the host process: the allocator setting of :mod:`mlcourse.hostmemory` is
applied where long work starts (:func:`mlcourse.train.train`, ``mlcourse bench``).
"""

__version__ = "0.1.0"
