"""Reference solutions and checkers for the notebooks' exercises, one module per chapter (``ch02``, ...).

Each exercise cell in a notebook starts with ``answer = None`` for the student to replace; the
chapter's ``check_*`` function then grades the student's answer against the reference solution here
(or, when the answer is still ``None``, says so and shows the reference result). ``tests/`` tests
every reference solution.
"""
