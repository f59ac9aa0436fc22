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

Re-running the same ``train`` command continues from the last checkpoint in ``--out`` (``--restart``
starts over). Errors exit with status 2 and a one-line message (``MLCOURSE_DEBUG=1`` shows tracebacks).
README and chapter 01 show these commands.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, Optional

from . import bench, distributed, frontier
from .algorithms import PROTOCOLS
from .checkpoint import resolve_checkpoint_path
from .cliparse import EXIT_ERROR, CLIError
from .cliparse import Parser as _Parser
from .commands import parse_train_args
from .config import resolve_device
from .shipped import export_run, record_extra_test, record_protocol_test
from .train import TEST_SEED, _data_api, evaluate, load_trained, test_sampler, train

LIBRARY_COMMANDS = ("train", "eval", "export", "data", "bench", "frontier")
COMMANDS_GROUP = "mlcourse.commands"  # entry points: ``register(subparsers) -> {name: handler}`` (the course's)


def _build_parser() -> argparse.ArgumentParser:
    """The library's subcommands; :func:`_registered` adds the course's."""
    parser = _Parser(
        prog="mlcourse",
        description="Meta-learning course: train, evaluate, manage data, run the chapters' full-scale experiments.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    # `mlcourse train`'s options are generated from TrainConfig by tyro (mlcourse.commands): argparse hands it the rest
    commands.add_parser(
        "train", help="meta-train a learner (resumes from --out; options: mlcourse train --help)", add_help=False
    )

    _add_eval(commands.add_parser("eval", help="evaluate a checkpoint on the test split"))
    x = commands.add_parser("export", help="copy a finished run's results.json and fp32 weights (no optimiser state)")
    x.add_argument("run", help="run directory (runs/NAME)")
    x.add_argument("dest", help="destination directory (e.g. results/omniglot/NAME)")

    d = commands.add_parser("data", help="import or download data sets")
    actions = d.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    imp = actions.add_parser("import", help="import a local copy into the data directory")
    imp.add_argument("dataset", choices=["omniglot", "cifar100"])
    imp.add_argument("path")
    imp.add_argument("--root", help="data directory (default: $MLCOURSE_DATA_DIR or <repo>/data)")
    dl = actions.add_parser("download", help="download the official archives")
    dl.add_argument("dataset", choices=["omniglot", "cifar100"])
    dl.add_argument("--root")
    bench.add_arguments(
        commands.add_parser(
            "bench",
            help="benchmark the vectorised core vs the per-task loop vs learn2learn",
            description=bench.DESCRIPTION,
        )
    )
    frontier.add_arguments(
        commands.add_parser(
            "frontier",
            help="accuracy against training time: every shipped learner for the same budget, one core each",
            description=frontier.DESCRIPTION,
        )
    )
    return parser


def _add_eval(e: argparse.ArgumentParser) -> None:
    """``mlcourse eval``'s options."""
    e.add_argument("checkpoint", help="checkpoint file or run directory")
    e.add_argument("--tasks", type=int, default=600, help="number of test tasks (default 600)")
    e.add_argument("--inner-steps", dest="inner_steps", type=int, help="default: the run's test inner steps")
    e.add_argument("--batch", dest="batch_size", type=int, help="tasks per evaluation batch")
    e.add_argument("--device", default=None)
    e.add_argument(
        "--n-way", dest="n_way", type=int, help="test another number of classes (protonet, matchingnet, pretrain)"
    )
    e.add_argument("--k-shot", dest="k_shot", type=int, help="test another number of support examples per class")
    e.add_argument("--seed", type=int, default=None, help="test-task seed (default: the protocol's fixed test tasks)")
    e.add_argument("--compile", action="store_true", help="torch.compile the evaluation (pays off for many tasks)")
    e.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        help="transductive: the queries normalised as one batch; support: with the support set's statistics; "
        "single: each query alone (default: non-transductive, the run's own mode or support for a transductive run)",
    )
    e.add_argument(
        "--record",
        action="store_true",
        help="add the result to the run's results.json (extra_tests; with --protocol: test_by_protocol)",
    )
    e.add_argument("--no-progress", dest="progress", action="store_false")


def _cmd_train(args: argparse.Namespace) -> int:

    config, control = parse_train_args(args.rest)
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


def _cmd_eval(args: argparse.Namespace) -> int:
    import time

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
        batch_size=args.batch_size or min(config.meta_batch_size, 25),
        progress=args.progress,
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
            + (f" --batch {args.batch_size}" if args.batch_size else ""),
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


def _cmd_export(args: argparse.Namespace) -> int:

    where = export_run(args.run, args.dest)
    print(f"exported {args.run} to {os.path.dirname(where)} (results.json, weights.pt)")
    return 0


def _cmd_data(args: argparse.Namespace) -> int:

    api = _data_api()
    if args.action == "import":
        target = getattr(api, f"import_{args.dataset}")(args.path, root=args.root)
        print(f"imported {args.dataset} from {args.path} into {target}")
    else:
        target = getattr(api, f"download_{args.dataset}")(root=args.root)
        print(f"{args.dataset} is in {target}")
    return 0


def _registered(parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The subcommands other packages register (entry-point group ``mlcourse.commands``: the course's chapters,
    book and grading), added to ``parser``; ``{name: handler}``."""
    from importlib.metadata import entry_points

    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    handlers: dict[str, Any] = {}
    seen: set[str] = set()
    for point in entry_points(group=COMMANDS_GROUP):
        if point.value not in seen:  # once per hook, even where two copies of the metadata are installed
            seen.add(point.value)
            handlers.update(point.load()(commands))
    return handlers


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``mlcourse`` (pyproject ``[project.scripts]``); returns / exits with the status."""
    parser = _build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    handlers: dict[str, Any] = {
        "train": _cmd_train,
        "eval": _cmd_eval,
        "export": _cmd_export,
        "data": _cmd_data,
        "bench": bench.run,
        "frontier": frontier.run,
    }
    if not words or words[0] not in LIBRARY_COMMANDS:  # help or another command: the registered ones are needed
        handlers.update(_registered(parser))
    args, rest = parser.parse_known_args(words)
    if rest and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest, args.argv = rest, words
    try:
        status = handlers[args.command](args)
    except KeyboardInterrupt:
        print("mlcourse: interrupted (a run resumes from its last checkpoint)", file=sys.stderr)
        status = 130
    except (CLIError, ValueError, RuntimeError, OSError, LookupError) as exc:
        if os.environ.get("MLCOURSE_DEBUG"):
            raise
        print(f"mlcourse {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        status = EXIT_ERROR
    if argv is None:
        sys.exit(status)
    return status


if __name__ == "__main__":
    main()
