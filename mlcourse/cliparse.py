"""The argument parser every ``mlcourse`` command shares (``mlcourse.cli`` and ``mlcourse bench``): errors are one
line and exit with status 2. Below both, so that neither imports the other."""

from __future__ import annotations

import argparse
from typing import NoReturn

EXIT_ERROR = 2


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
