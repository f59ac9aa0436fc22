"""The options of ``mlcourse train``, and the command line of a ``TrainConfig``.

One table of options serves the command line (:mod:`mlcourse.cli`), the commands that chapters 01, 03 and 05
print before training (:func:`train_command`) and the ``command`` recorded in a shipped run's results.json
(:mod:`mlcourse.shipped`). Library code: it imports the training layer only.
"""

from __future__ import annotations

import argparse
import os
import shlex
from typing import Any

from .cliparse import Parser
from .config import fast_mode
from .train import TrainConfig


def add_train_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``mlcourse train`` (one per ``TrainConfig`` field, plus run control) to ``parser``."""
    parser.add_argument(
        "--algo", default="maml", help="maml, fomaml, metasgd, reptile, anil, protonet, matchingnet, article, pretrain"
    )
    parser.add_argument("--data", default="omniglot", help="omniglot, cifar100 or sinusoid")
    parser.add_argument("--split", dest="split_scheme", help="omniglot: vinyals|lake; cifar100: article|cifar-fs|fc100")
    parser.add_argument("--n-way", dest="n_way", type=int)
    parser.add_argument("--k-shot", dest="k_shot", type=int)
    parser.add_argument("--n-query", dest="n_query", type=int, help="query examples per class")
    parser.add_argument("--inner-steps", dest="inner_steps", type=int)
    parser.add_argument("--test-inner-steps", dest="test_inner_steps", type=int)
    parser.add_argument("--inner-lr", dest="inner_lr", type=float)
    parser.add_argument("--outer-lr", dest="outer_lr", type=float)
    parser.add_argument("--meta-batch", dest="meta_batch_size", type=int, help="tasks per outer step")
    parser.add_argument("--iterations", type=int)
    parser.add_argument("--eval-every", dest="eval_every", type=int)
    parser.add_argument("--val-tasks", dest="val_tasks", type=int)
    parser.add_argument("--test-tasks", dest="test_tasks", type=int)
    parser.add_argument("--eval-batch", dest="eval_batch_size", type=int)
    parser.add_argument("--checkpoint-every", dest="checkpoint_every", type=int)
    parser.add_argument("--log-every", dest="log_every", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N, mps")
    parser.add_argument("--image-size", dest="image_size", type=int)
    parser.add_argument("--hidden", type=int)
    parser.add_argument("--no-rotations", dest="rotations", action="store_const", const=False)
    parser.add_argument("--first-order", dest="first_order", action="store_const", const=True)
    parser.add_argument(
        "--stratified",
        dest="stratified",
        action="store_const",
        const=True,
        help="the article's superclass-stratified sampling of training tasks",
    )
    parser.add_argument(
        "--attention",
        dest="attention",
        action="store_const",
        const=True,
        help="Conv-4 with the attention block (the article's MAML + attention)",
    )
    parser.add_argument("--no-vectorise", dest="vectorise", action="store_const", const=False)
    parser.add_argument(
        "--train-n-way",
        dest="train_n_way",
        type=int,
        help="classes per training task for protonet/matchingnet (default: --n-way)",
    )
    parser.add_argument("--lr-schedule", dest="lr_schedule", help="constant (default) or cosine (outer lr decays to 0)")
    parser.add_argument(
        "--compile",
        dest="compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.compile the learner (default: on for vectorised image runs of >= 1,000 iterations)",
    )
    parser.add_argument("--out", dest="out_dir", help="run directory (default runs/ALGO-DATA-NwayKshot)")
    parser.add_argument("--fast", action="store_true", help="fast mode sizes (also MLCOURSE_FAST=1)")
    parser.add_argument("--restart", action="store_true", help="ignore an existing checkpoint in --out")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    return parser


TRAIN_FIELDS = (
    "split_scheme",
    "n_way",
    "k_shot",
    "n_query",
    "inner_steps",
    "test_inner_steps",
    "inner_lr",
    "outer_lr",
    "meta_batch_size",
    "iterations",
    "eval_every",
    "val_tasks",
    "test_tasks",
    "eval_batch_size",
    "checkpoint_every",
    "log_every",
    "seed",
    "device",
    "image_size",
    "hidden",
    "rotations",
    "first_order",
    "stratified",
    "attention",
    "vectorise",
    "train_n_way",
    "lr_schedule",
    "compile",
    "out_dir",
)


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The ``TrainConfig`` of parsed ``mlcourse train`` arguments (data set defaults, fast mode, ``--out``)."""
    overrides = {name: getattr(args, name) for name in TRAIN_FIELDS if getattr(args, name) is not None}
    config = TrainConfig.defaults(args.data, algo=args.algo, fast=bool(args.fast or fast_mode()), **overrides)
    if config.out_dir is None:
        shots = f"{config.n_way}way{config.k_shot}shot" if config.is_classification else f"{config.k_shot}shot"
        config = config.replace(out_dir=os.path.join("runs", f"{config.algo}-{config.data}-{shots}"))
    return config


def _train_options() -> dict[str, argparse.Action]:
    """``dest -> action`` of the ``train`` options (one source for :func:`train_command`)."""
    parser = Parser(prog="mlcourse train")
    add_train_options(parser)
    return {a.dest: a for a in parser._actions if a.option_strings}


def train_command(config: Any) -> str:
    """The ``mlcourse train`` command line that runs exactly ``config`` (a ``TrainConfig``).

    Every field is spelled out, so the command means the same run in fast and full mode. Chapters 01
    and 03 print it in full mode: run it in a terminal (e.g. on a GPU machine) and the notebook reuses the
    finished run from its ``--out`` directory instead of training again.
    """
    options = _train_options()
    words = ["mlcourse", "train", "--algo", str(config.algo), "--data", str(config.data)]
    for name in TRAIN_FIELDS:
        value, action = getattr(config, name), options[name]
        if value is None:
            continue
        if isinstance(action, argparse.BooleanOptionalAction):
            words.append(action.option_strings[0] if value else action.option_strings[1])
            continue
        if isinstance(action, argparse._StoreConstAction):
            if value == action.const:
                words.append(action.option_strings[0])
            continue
        words += [action.option_strings[0], str(value)]
    return shlex.join(words)


__all__ = ["add_train_options", "train_config_from_args", "train_command", "TRAIN_FIELDS"]
