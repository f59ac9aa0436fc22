"""What every ``mlcourse`` command shares: a subcommand is a typed options dataclass that **tyro** parses (help with
defaults, choices from ``Literal`` types, a malformed or unknown option exits 2 naming it) and a handler that takes
the parsed options; a value out of its range is a :class:`CLIError`, printed as one line with exit status 2. Below
the library's and the course's commands, so that neither imports the other."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn, Optional

import tyro

EXIT_ERROR = 2


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """The top-level parser (it only picks the subcommand): errors are one line with exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


@dataclass(frozen=True)
class Command:
    """One subcommand: ``options`` is a dataclass (or a union of them, for sub-subcommands) that tyro builds the
    parser from; ``handler(options)`` runs it and returns the exit status."""

    help: str
    options: Any
    handler: Callable[[Any], int]
    description: Optional[str] = None

    def parse(self, name: str, words: Sequence[str]) -> Any:
        """The options of ``mlcourse NAME WORDS...`` (``--help`` prints the generated help and exits 0)."""
        description = self.description or getattr(self.options, "__doc__", None) or self.help
        return tyro.cli(
            self.options, args=list(words), prog=f"mlcourse {name}", description=" ".join(description.split())
        )


def arg(help: str, *, metavar: Optional[str] = None, default: Optional[str] = None) -> Any:
    """An option's help (``default``: how to say its default where tyro's own ``(default: X)`` would not; ``""``
    says nothing, as for an on/off flag)."""
    hint = (f"(default: {default})" if default else "") if default is not None else None
    if metavar is None:
        return tyro.conf.arg(help=help, help_behavior_hint=hint)
    return tyro.conf.arg(help=help, metavar=metavar, help_behavior_hint=hint)


def require(ok: bool, flag: str, value: Any, allowed: str) -> None:
    """Raise :class:`CLIError` ``--flag=value is not allowed; allowed: ...`` unless ``ok``."""
    if not ok:
        shown = f"{value:g}" if isinstance(value, float) else value
        raise CLIError(f"{flag}={shown} is not allowed; allowed: {allowed}")


#: an on/off option: ``--name`` turns it on, its absence leaves it off
Flag = Annotated[bool, tyro.conf.FlagCreatePairsOff]
