"""The course: the code of the chapters, on top of the library (``mlcourse.data`` ... ``mlcourse.train``).

A folder per chapter (``ch00`` ... ``ch08``) owns that chapter's code, plots and widgets; its ``__init__`` names what
the chapter's notebook calls. The chapters do not import each other: what two chapters share lives in modules named
for what they hold (``sinusoid``, ``omniglot``, ``result_files``, ``bench_reports``, ``options``) and in what a student
sees everywhere (``plots``, ``display``). ``exercises`` holds the graded exercises, one module per chapter;
``book``, ``grading``, ``syllabus`` and ``subcommands`` serve the whole course. The library never imports this
package (``make test`` checks both rules with import-linter).
"""
