"""The course: the code of the chapters, on top of the library (``mlcourse.data`` ... ``mlcourse.train``).

``experiments`` (shared chapter experiments), ``widgets`` / ``display`` / ``plots`` (what a student sees),
``exercises`` (graded exercises, one module per chapter) and one module per chapter where a chapter has its own
code: ``ch02_toy2d``, ``ch04_bilevel``, ``ch05_project``, ``ch06_applications``, ``ch06_rl``, ``ch08_scaling``.
The library never imports this package (``make test`` checks it with import-linter).
"""
