"""The options of ``mlcourse train``, generated from :class:`mlcourse.train.TrainConfig` with **tyro**, and the command
line of a configuration.

Each ``TrainConfig`` field declares its help, its flag and its range (:func:`mlcourse.train.option`); this module
turns those declarations into an options dataclass that tyro builds the ``train`` sub-command from (help with
defaults, ``--x/--no-x`` pairs, single flags), parses a command line back into a configuration
(:func:`parse_train_args`) and writes the command that re-runs a configuration (:func:`train_command`: printed by
chapters 01, 03 and 05, recorded in shipped results). Nothing here is typed twice.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import typing
from collections.abc import Sequence
from typing import Annotated, Any, Optional

import tyro

from .config import fast_mode
from .train import TrainConfig

DESCRIPTION = "Meta-train a learner; re-running the same command resumes from the last checkpoint in --out."


def _flag(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _value_type(f: dataclasses.Field) -> type:
    """``int``, ``float`` or ``str`` from the field's annotation (``Optional[int]`` -> ``int``)."""
    hint = typing.get_type_hints(TrainConfig)[f.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    return args[0]


def config_fields() -> tuple[dataclasses.Field, ...]:
    """The configuration's fields, in order (every one is an option of ``mlcourse train``)."""
    return dataclasses.fields(TrainConfig)


def _option(f: dataclasses.Field) -> tuple[str, Any, Any]:
    """``(name, annotation, default)`` of the option of field ``f``: what tyro builds the flag from.

    Values the user does not give stay ``None`` and the data set's defaults fill them (``TrainConfig.defaults``);
    ``tyro.conf.DisallowNone`` keeps ``None`` off the command line (``--compile`` / ``--no-compile``, ``--n-way N``);
    a ``const`` field is one flag that sets its value (``--first-order``, ``--no-rotations``)."""
    meta, name = f.metadata, _flag(f)[2:]
    default = f"(default: {f.default})" if f.default is not None else "(default: the data set's)"
    arg = tyro.conf.arg(name=name, help=f"{meta['help']} {default}", help_behavior_hint="")
    if f.name in ("algo", "data"):  # always given a value, so train_command can spell them first
        return f.name, Annotated[str, arg, tyro.conf.arg(metavar=f.name.upper())], f.default
    if meta.get("pair"):
        return f.name, Annotated[Optional[bool], tyro.conf.DisallowNone, arg], None
    if meta.get("const") is not None:
        flag = tyro.conf.arg(name=name, help=meta["help"], help_behavior_hint="")
        return f.name, Annotated[bool, tyro.conf.FlagCreatePairsOff, flag], False
    metavar = tyro.conf.arg(metavar=f.name.upper())
    return f.name, Annotated[Optional[_value_type(f)], tyro.conf.DisallowNone, arg, metavar], None


def _run_option(name: str, help_text: str) -> tuple[str, Any, Any]:
    return (
        name,
        Annotated[bool, tyro.conf.FlagCreatePairsOff, tyro.conf.arg(help=help_text, help_behavior_hint="")],
        False,
    )


TrainOptions = dataclasses.make_dataclass(
    "TrainOptions",
    [_option(f) for f in config_fields()]
    + [
        _run_option("fast", "fast mode sizes (also MLCOURSE_FAST=1)"),
        _run_option("restart", "ignore an existing checkpoint in --out"),
        _run_option("no_progress", "no progress bar"),
    ],
)
TrainOptions.__doc__ = DESCRIPTION


@dataclasses.dataclass(frozen=True)
class RunControl:
    """What ``mlcourse train`` does with the configuration: fast sizes, start over, show a progress bar."""

    fast: bool = False
    restart: bool = False
    progress: bool = True


def parse_train_args(words: Sequence[str], prog: str = "mlcourse train") -> tuple[TrainConfig, RunControl]:
    """The configuration and run control of the ``mlcourse train`` options ``words`` (tyro; ``--help`` prints the
    generated help and exits 0, a malformed option exits 2 naming the flag): the data set's defaults (fast mode's
    sizes with ``--fast`` or ``MLCOURSE_FAST=1``), then every option given; ``--out`` defaults to
    ``runs/ALGO-DATA-NwayKshot``."""
    return train_config(tyro.cli(TrainOptions, args=list(words), prog=prog, description=DESCRIPTION))


def train_config(options: Any) -> tuple[TrainConfig, RunControl]:
    """The configuration and run control of parsed ``TrainOptions`` (see :func:`parse_train_args`)."""
    control = RunControl(fast=options.fast, restart=options.restart, progress=not options.no_progress)
    given = {}
    for f in config_fields():
        value = getattr(options, f.name)
        if f.name in ("algo", "data") or value is None:
            continue
        if f.metadata.get("const") is not None:
            if value:
                given[f.name] = f.metadata["const"]
            continue
        given[f.name] = value
    config = TrainConfig.defaults(options.data, algo=options.algo, fast=bool(control.fast or fast_mode()), **given)
    if config.out_dir is None:
        shots = f"{config.n_way}way{config.k_shot}shot" if config.is_classification else f"{config.k_shot}shot"
        config = config.replace(out_dir=os.path.join("runs", f"{config.algo}-{config.data}-{shots}"))
    return config, control


def train_command(config: Any) -> str:
    """The ``mlcourse train`` command line that runs exactly ``config`` (a ``TrainConfig``).

    Every field is spelled out, so the command means the same run in fast and full mode. Chapters 01
    and 03 print it in full mode: run it in a terminal (e.g. on a GPU machine) and the notebook reuses the
    finished run from its ``--out`` directory instead of training again.
    """
    words = ["mlcourse", "train"]
    for f in config_fields():
        value, meta, flag = getattr(config, f.name), f.metadata, _flag(f)
        if value is None:
            continue
        if meta.get("pair"):
            words.append(flag if value else "--no-" + flag[2:])
        elif meta.get("const") is not None:
            if value == meta["const"]:
                words.append(flag)
        else:
            words += [flag, str(value)]
    return shlex.join(words)


__all__ = ["parse_train_args", "train_config", "train_command", "config_fields", "RunControl", "TrainOptions"]
