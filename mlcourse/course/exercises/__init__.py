"""Visible checks of the notebooks' graded exercises, one module per chapter (``ch01``, ...).

Each check takes the student's function ``answer`` and tests *properties* of it (shape, sign, a limiting case, an
invariance, a finite-difference test), printing pass or fail with a hint and never an expected value. Nothing here
computes an exercise's answer: the reference solutions and the hidden tests live only in the instructor's copy of
the notebooks (the ``### BEGIN SOLUTION`` / ``### BEGIN HIDDEN TESTS`` blocks that ``make student`` strips).
"""
