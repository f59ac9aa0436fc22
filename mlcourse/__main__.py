"""``python -m mlcourse ...``: the same as the ``mlcourse`` command (see ``mlcourse.cli``)."""

from mlcourse.cli import main

if __name__ == "__main__":
    main()
