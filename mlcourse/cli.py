"""The ``mlcourse`` command line (also ``python -m mlcourse`` and ``python -m mlcourse.cli``).

::

    mlcourse train --algo maml --data omniglot --n-way 5 --k-shot 1 --inner-steps 5 --inner-lr 0.4 \\
                   --outer-lr 1e-3 --device auto --out runs/NAME [--iterations N] [--fast]
    mlcourse eval runs/NAME [--tasks 600]
    mlcourse data import omniglot PATH | mlcourse data import cifar100 PATH
    mlcourse data download omniglot|cifar100
    mlcourse export runs/NAME results/omniglot/NAME
    mlcourse bench [--tiny] [--device cpu|cuda]             # meta-gradient throughput
    mlcourse frontier [--budget S] [--jobs N]                # accuracy against training time, every learner
    mlcourse sinusoid-paper | article-vs-maml | cifar-grid | scaling   # the chapters' full-scale experiments
    mlcourse book [--fast] [--out build/book]                # the course as a static site (make book)

Each subcommand is a typed options dataclass parsed by tyro (``mlcourse COMMAND --help``; see
``mlcourse.cliparse``). Re-running the same ``train`` command continues from the last checkpoint in ``--out``
(``--restart`` starts over). A malformed option exits 2 naming it; a value out of range or a failed run exits 2 with
a one-line message (``MLCOURSE_DEBUG=1`` shows tracebacks).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional, Union

import tyro

from . import bench, distributed, frontier
from .algorithms import PROTOCOLS
from .checkpoint import resolve_checkpoint_path
from .cliparse import EXIT_ERROR, CLIError, Command, Flag, arg, require
from .cliparse import Parser as _Parser
from .commands import DESCRIPTION as TRAIN_DESCRIPTION
from .commands import TrainOptions, train_config
from .config import resolve_device
from .shipped import export_run, record_extra_test, record_protocol_test
from .train import TEST_SEED, evaluate, load_trained, test_sampler, train
from .train.experiment import _data_api

COMMANDS_GROUP = "mlcourse.commands"  # entry points: ``register() -> {name: Command}`` (the course's)


Protocol = Literal[PROTOCOLS]  # type: ignore[valid-type]
DataSet = Literal["omniglot", "cifar100"]


@dataclass(frozen=True)
class EvalOptions:
    """Evaluate a checkpoint on the test split (by default the protocol's fixed test tasks)."""

    checkpoint: Annotated[str, tyro.conf.Positional, arg("checkpoint file or run directory", metavar="RUN")]
    tasks: Annotated[int, arg("number of test tasks (>= 1)")] = 600
    inner_steps: Annotated[
        Optional[int], tyro.conf.DisallowNone, arg("inner steps", default="the run's test inner steps")
    ] = None
    batch: Annotated[
        Optional[int],
        tyro.conf.DisallowNone,
        arg("tasks per evaluation batch", default="the run's meta-batch, at most 25"),
    ] = None
    device: Annotated[
        Optional[str], tyro.conf.DisallowNone, arg("auto, cpu, cuda, cuda:N", default="the checkpoint's")
    ] = None
    n_way: Annotated[
        Optional[int],
        tyro.conf.DisallowNone,
        arg("test another number of classes (protonet, matchingnet, pretrain)", default="the run's"),
    ] = None
    k_shot: Annotated[
        Optional[int],
        tyro.conf.DisallowNone,
        arg("test another number of support examples per class", default="the run's"),
    ] = None
    seed: Annotated[
        Optional[int], tyro.conf.DisallowNone, arg("test-task seed", default="the protocol's fixed test tasks")
    ] = None
    compile: Annotated[Flag, arg("torch.compile the evaluation (pays off for many tasks)", default="")] = False
    protocol: Annotated[
        Optional[Protocol],
        tyro.conf.DisallowNone,
        arg(
            "transductive: the queries normalised as one batch; support: with the support set's statistics; single: "
            "each query alone",
            default="non-transductive: the run's own mode, or support for a transductive run",
        ),
    ] = None
    record: Annotated[
        Flag,
        arg("add the result to the run's results.json (extra_tests; with --protocol: test_by_protocol)", default=""),
    ] = False
    no_progress: Annotated[Flag, arg("no progress bar", default="")] = False


@dataclass(frozen=True)
class ExportOptions:
    """Copy a finished run's results.json and fp32 weights (no optimiser state)."""

    run: Annotated[str, tyro.conf.Positional, arg("run directory (runs/NAME)", metavar="RUN")]
    dest: Annotated[
        str, tyro.conf.Positional, arg("destination directory (e.g. results/omniglot/NAME)", metavar="DEST")
    ]


@dataclass(frozen=True)
class DataImport:
    """Import a local copy into the data directory."""

    dataset: Annotated[DataSet, tyro.conf.Positional, arg("the data set", metavar="DATASET")]
    path: Annotated[str, tyro.conf.Positional, arg("the local copy (a folder or an archive)", metavar="PATH")]
    root: Annotated[
        Optional[str],
        tyro.conf.DisallowNone,
        arg("data directory", metavar="DIR", default="$MLCOURSE_DATA_DIR or <repo>/data"),
    ] = None


@dataclass(frozen=True)
class DataDownload:
    """Download the official archives."""

    dataset: Annotated[DataSet, tyro.conf.Positional, arg("the data set", metavar="DATASET")]
    root: Annotated[
        Optional[str],
        tyro.conf.DisallowNone,
        arg("data directory", metavar="DIR", default="$MLCOURSE_DATA_DIR or <repo>/data"),
    ] = None


DataOptions = Union[
    Annotated[DataImport, tyro.conf.subcommand("import")], Annotated[DataDownload, tyro.conf.subcommand("download")]
]


def _build_parser(commands: Mapping[str, Command]) -> argparse.ArgumentParser:
    """The top-level parser: it picks the subcommand and hands the rest of the words to its typed options."""
    parser = _Parser(
        prog="mlcourse",
        description="Meta-learning course: train, evaluate, manage data, run the chapters' full-scale experiments. "
        "Each command's options: mlcourse COMMAND --help.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, command in commands.items():
        sub.add_parser(name, help=command.help, add_help=False)
    return parser


def _cmd_train(options: Any) -> int:
    config, control = train_config(options)
    resolve_device(config.device)  # a missing GPU is reported before any data is loaded
    try:
        result = train(config, progress=control.progress, resume=not control.restart)
        main_process = distributed.is_main_process()
    finally:
        distributed.cleanup()  # under torchrun: leave the process group together (no-op otherwise)
    if not main_process:  # one logical run: rank 0 alone reports
        return 0
    where = result.results_path or result.checkpoint_path
    line = f"trained {config.algo} on {config.data} for {result.step} iterations in {result.wall_time_s:.0f} s"
    if result.test is not None:
        line += f"; test {result.test}"
    print(f"{line}; saved to {where}")
    return 0


def _cmd_eval(args: EvalOptions) -> int:
    import time

    require(args.tasks >= 1, "--tasks", args.tasks, "an integer >= 1")
    for flag, value in (("--n-way", args.n_way), ("--k-shot", args.k_shot), ("--batch", args.batch)):
        require(value is None or value >= 1, flag, value, "an integer >= 1")
    start = time.perf_counter()
    exp, checkpoint = load_trained(args.checkpoint, device=args.device, compile=args.compile)
    config = exp.config
    inner = config.test_inner_steps if args.inner_steps is None else args.inner_steps
    sampler = test_sampler(
        exp, n_way=args.n_way, k_shot=args.k_shot, seed=TEST_SEED if args.seed is None else args.seed
    )
    if args.record and args.protocol:  # refused before minutes of evaluation, not after
        shape = (getattr(sampler, "n_way", None), sampler.k_shot, inner)
        if shape != (config.n_way if config.is_classification else None, config.k_shot, config.test_inner_steps):
            raise CLIError("--record with --protocol records the run's own task shape and inner steps only")
    result = evaluate(
        exp.learner,
        sampler,
        num_tasks=args.tasks,
        inner_steps=inner,
        batch_size=args.batch or min(config.meta_batch_size, 25),
        progress=not args.no_progress,
        protocol=args.protocol,
    )
    shape = f"{sampler.n_way}-way {sampler.k_shot}-shot " if config.is_classification else ""
    print(
        f"{config.algo} {config.data} step {checkpoint['step']}: test {shape}{result} with {inner} inner steps "
        f"(trained: {config.norm_mode})"
    )
    if args.record and args.protocol:
        seed = TEST_SEED if args.seed is None else args.seed
        where = record_protocol_test(
            os.path.dirname(os.fspath(checkpoint_path(args.checkpoint))),
            result,
            seed=seed,
            command=f"mlcourse eval {args.checkpoint} --protocol {args.protocol} --tasks {args.tasks} --seed {seed}"
            + (f" --batch {args.batch}" if args.batch else ""),
            device=exp.device,
            wall_time_s=time.perf_counter() - start,
        )
        print(f"recorded in {where}")
    elif args.record:
        where = record_extra_test(
            os.path.dirname(os.fspath(checkpoint_path(args.checkpoint))),
            result,
            n_way=sampler.n_way,
            k_shot=sampler.k_shot,
            device=exp.device,
            wall_time_s=time.perf_counter() - start,
        )
        print(f"recorded in {where}")
    return 0


def checkpoint_path(path: str) -> Any:

    return resolve_checkpoint_path(path)


def _cmd_export(args: ExportOptions) -> int:
    where = export_run(args.run, args.dest)
    print(f"exported {args.run} to {os.path.dirname(where)} (results.json, weights.pt)")
    return 0


def _cmd_data(args: DataImport | DataDownload) -> int:
    api = _data_api()
    if isinstance(args, DataImport):
        target = getattr(api, f"import_{args.dataset}")(args.path, root=args.root)
        print(f"imported {args.dataset} from {args.path} into {target}")
    else:
        target = getattr(api, f"download_{args.dataset}")(root=args.root)
        print(f"{args.dataset} is in {target}")
    return 0


LIBRARY: dict[str, Command] = {
    "train": Command(
        "meta-train a learner (resumes from --out; options: mlcourse train --help)",
        TrainOptions,
        _cmd_train,
        TRAIN_DESCRIPTION,
    ),
    "eval": Command("evaluate a checkpoint on the test split", EvalOptions, _cmd_eval),
    "export": Command(
        "copy a finished run's results.json and fp32 weights (no optimiser state)", ExportOptions, _cmd_export
    ),
    "data": Command(
        "import or download data sets (mlcourse data import|download --help)",
        DataOptions,
        _cmd_data,
        "Import or download data sets.",
    ),
    "bench": bench.COMMAND,
    "frontier": frontier.COMMAND,
}
LIBRARY_COMMANDS = tuple(LIBRARY)


def _registered() -> dict[str, Command]:
    """The subcommands other packages register (entry-point group ``mlcourse.commands``: the course's chapters,
    book and grading): ``{name: Command}``."""
    from importlib.metadata import entry_points

    commands: dict[str, Command] = {}
    seen: set[str] = set()
    for point in entry_points(group=COMMANDS_GROUP):
        if point.value not in seen:  # once per hook, even where two copies of the metadata are installed
            seen.add(point.value)
            commands.update(point.load()())
    return commands


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``mlcourse`` (pyproject ``[project.scripts]``); returns / exits with the status."""
    words = list(sys.argv[1:] if argv is None else argv)
    commands = dict(LIBRARY)
    if not words or words[0] not in LIBRARY:  # help or another command: the registered ones are needed
        commands.update(_registered())
    if not words or words[0] not in commands:
        _build_parser(commands).parse_args(words)  # the list of commands (exit 0), or a missing or unknown one (exit 2)
    name, command = words[0], commands[words[0]]
    try:
        status = command.handler(command.parse(name, words[1:]))
    except KeyboardInterrupt:
        print("mlcourse: interrupted (a run resumes from its last checkpoint)", file=sys.stderr)
        status = 130
    except (CLIError, ValueError, RuntimeError, OSError, LookupError) as exc:
        if os.environ.get("MLCOURSE_DEBUG"):
            raise
        print(f"mlcourse {name}: error: {_one_line(exc)}", file=sys.stderr)
        status = EXIT_ERROR
    if argv is None:
        sys.exit(status)
    return status


if __name__ == "__main__":
    main()
