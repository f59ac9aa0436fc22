"""The options of ``mlcourse train``, generated from :class:`mlcourse.train.TrainConfig`, and the command line of a
configuration.

Each ``TrainConfig`` field declares its help, its flag and its range (:func:`mlcourse.train.option`); this module
turns those declarations into the ``train`` sub-command's options (:func:`add_train_options`), parses them back into
a configuration (:func:`train_config_from_args`) and writes the command that re-runs a configuration
(:func:`train_command`: printed by chapters 01, 03 and 05, recorded in shipped results). Nothing here is typed twice.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import typing
from typing import Any

from .config import fast_mode
from .train import TrainConfig

# run control: options of `mlcourse train` that are not part of the configuration
RUN_OPTIONS = ("fast", "restart", "progress")


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


def add_train_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add one option per ``TrainConfig`` field (help and default shown), plus run control, to ``parser``."""
    for f in config_fields():
        meta, flag = f.metadata, _flag(f)
        default = f"(default: {f.default})" if f.default is not None else "(default: the data set's)"
        text = f"{meta['help']} {default}"
        if f.name in ("algo", "data"):  # always given a value, so train_command can spell them first
            parser.add_argument(flag, dest=f.name, default=f.default, help=text)
        elif meta.get("pair"):
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif meta.get("const") is not None:
            parser.add_argument(flag, dest=f.name, action="store_const", const=meta["const"], help=meta["help"])
        else:
            parser.add_argument(flag, dest=f.name, type=_value_type(f), metavar=f.name.upper(), help=text)
    parser.add_argument("--fast", action="store_true", help="fast mode sizes (also MLCOURSE_FAST=1)")
    parser.add_argument("--restart", action="store_true", help="ignore an existing checkpoint in --out")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return parser


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The ``TrainConfig`` of parsed ``mlcourse train`` arguments: the data set's defaults (fast mode's sizes with
    ``--fast`` or ``MLCOURSE_FAST=1``), then every option given; ``--out`` defaults to ``runs/ALGO-DATA-NwayKshot``."""
    given = {
        f.name: getattr(args, f.name)
        for f in config_fields()
        if f.name not in ("algo", "data") and getattr(args, f.name) is not None
    }
    config = TrainConfig.defaults(args.data, algo=args.algo, fast=bool(args.fast or fast_mode()), **given)
    if config.out_dir is None:
        shots = f"{config.n_way}way{config.k_shot}shot" if config.is_classification else f"{config.k_shot}shot"
        config = config.replace(out_dir=os.path.join("runs", f"{config.algo}-{config.data}-{shots}"))
    return config


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


__all__ = ["add_train_options", "train_config_from_args", "train_command", "config_fields", "RUN_OPTIONS"]
