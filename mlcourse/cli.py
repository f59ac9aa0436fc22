"""The ``mlcourse`` command line (also ``python -m mlcourse`` and ``python -m mlcourse.cli``).

::

    mlcourse train --algo maml --data omniglot --n-way 5 --k-shot 1 --inner-steps 5 --inner-lr 0.4 \\
                   --outer-lr 1e-3 --device auto --out runs/NAME [--iterations N] [--fast]
    mlcourse eval runs/NAME [--tasks 600]
    mlcourse data import omniglot PATH | mlcourse data import cifar100 PATH
    mlcourse data download omniglot|cifar100

Re-running the same ``train`` command continues from the last checkpoint in ``--out`` (``--restart``
starts over). Errors exit with status 2 and a one-line message (``MLCOURSE_DEBUG=1`` shows tracebacks).
README and chapter 01 show these commands.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any, Optional, Sequence

from .cliparse import EXIT_ERROR, CLIError
from .cliparse import Parser as _Parser


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mlcourse", description="Meta-learning course: train, evaluate, manage data.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    t = commands.add_parser("train", help="meta-train a learner (resumes from --out)")
    t.add_argument("--algo", default="maml", help="maml, fomaml, metasgd, reptile, anil, protonet, matchingnet, article, pretrain")
    t.add_argument("--data", default="omniglot", help="omniglot, cifar100 or sinusoid")
    t.add_argument("--split", dest="split_scheme", help="omniglot: vinyals|lake; cifar100: article|cifar-fs|fc100")
    t.add_argument("--n-way", dest="n_way", type=int)
    t.add_argument("--k-shot", dest="k_shot", type=int)
    t.add_argument("--n-query", dest="n_query", type=int, help="query examples per class")
    t.add_argument("--inner-steps", dest="inner_steps", type=int)
    t.add_argument("--test-inner-steps", dest="test_inner_steps", type=int)
    t.add_argument("--inner-lr", dest="inner_lr", type=float)
    t.add_argument("--outer-lr", dest="outer_lr", type=float)
    t.add_argument("--meta-batch", dest="meta_batch_size", type=int, help="tasks per outer step")
    t.add_argument("--iterations", type=int)
    t.add_argument("--eval-every", dest="eval_every", type=int)
    t.add_argument("--val-tasks", dest="val_tasks", type=int)
    t.add_argument("--test-tasks", dest="test_tasks", type=int)
    t.add_argument("--eval-batch", dest="eval_batch_size", type=int)
    t.add_argument("--checkpoint-every", dest="checkpoint_every", type=int)
    t.add_argument("--log-every", dest="log_every", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N, mps")
    t.add_argument("--image-size", dest="image_size", type=int)
    t.add_argument("--hidden", type=int)
    t.add_argument("--no-rotations", dest="rotations", action="store_const", const=False)
    t.add_argument("--first-order", dest="first_order", action="store_const", const=True)
    t.add_argument("--stratified", dest="stratified", action="store_const", const=True,
                   help="the article's superclass-stratified sampling of training tasks")
    t.add_argument("--attention", dest="attention", action="store_const", const=True,
                   help="Conv-4 with the attention block (the article's MAML + attention)")
    t.add_argument("--no-vectorise", dest="vectorise", action="store_const", const=False)
    t.add_argument("--train-n-way", dest="train_n_way", type=int,
                   help="classes per training task for protonet/matchingnet (default: --n-way)")
    t.add_argument("--lr-schedule", dest="lr_schedule", help="constant (default) or cosine (outer lr decays to 0)")
    t.add_argument("--compile", dest="compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the learner (default: on for vectorised image runs of >= 1,000 iterations)")
    t.add_argument("--out", dest="out_dir", help="run directory (default runs/ALGO-DATA-NwayKshot)")
    t.add_argument("--fast", action="store_true", help="fast mode sizes (also MLCOURSE_FAST=1)")
    t.add_argument("--restart", action="store_true", help="ignore an existing checkpoint in --out")
    t.add_argument("--no-progress", dest="progress", action="store_false")

    e = commands.add_parser("eval", help="evaluate a checkpoint on the test split")
    e.add_argument("checkpoint", help="checkpoint file or run directory")
    e.add_argument("--tasks", type=int, default=600, help="number of test tasks (default 600)")
    e.add_argument("--inner-steps", dest="inner_steps", type=int, help="default: the run's test inner steps")
    e.add_argument("--batch", dest="batch_size", type=int, help="tasks per evaluation batch")
    e.add_argument("--device", default=None)
    e.add_argument("--n-way", dest="n_way", type=int, help="test another number of classes (protonet, matchingnet, pretrain)")
    e.add_argument("--k-shot", dest="k_shot", type=int, help="test another number of support examples per class")
    e.add_argument("--seed", type=int, default=None, help="test-task seed (default: the protocol's fixed test tasks)")
    e.add_argument("--compile", action="store_true", help="torch.compile the evaluation (pays off for many tasks)")
    e.add_argument("--record", action="store_true", help="add the result to the run's results.json (extra_tests)")
    e.add_argument("--no-progress", dest="progress", action="store_false")

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
    b = commands.add_parser("bench", help="benchmark the vectorised core vs the per-task loop vs learn2learn",
                            add_help=False)
    b.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments of the benchmark (mlcourse bench --help)")
    return parser


_TRAIN_FIELDS = ("split_scheme", "n_way", "k_shot", "n_query", "inner_steps", "test_inner_steps", "inner_lr", "outer_lr",
                 "meta_batch_size", "iterations", "eval_every", "val_tasks", "test_tasks", "eval_batch_size",
                 "checkpoint_every", "log_every", "seed", "device", "image_size", "hidden", "rotations", "first_order",
                 "stratified", "attention", "vectorise", "train_n_way", "lr_schedule", "compile", "out_dir")


def _train_config(args: argparse.Namespace) -> Any:
    from .config import fast_mode
    from .train import TrainConfig

    overrides = {name: getattr(args, name) for name in _TRAIN_FIELDS if getattr(args, name) is not None}
    config = TrainConfig.defaults(args.data, algo=args.algo, fast=bool(args.fast or fast_mode()), **overrides)
    if config.out_dir is None:
        shots = f"{config.n_way}way{config.k_shot}shot" if config.is_classification else f"{config.k_shot}shot"
        config = config.replace(out_dir=os.path.join("runs", f"{config.algo}-{config.data}-{shots}"))
    return config


def _train_options() -> dict[str, argparse.Action]:
    """``dest -> action`` of the ``train`` sub-command's options (one source for :func:`train_command`)."""
    parser = _build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices["train"]._actions if a.option_strings}


def train_command(config: Any) -> str:
    """The ``mlcourse train`` command line that runs exactly ``config`` (a ``TrainConfig``).

    Every field is spelled out, so the command means the same run in fast and full mode. Chapters 01
    and 03 print it in full mode: run it in a terminal (e.g. on a GPU machine) and the notebook reuses the
    finished run from its ``--out`` directory instead of training again.
    """
    options = _train_options()
    words = ["mlcourse", "train", "--algo", str(config.algo), "--data", str(config.data)]
    for name in _TRAIN_FIELDS:
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


def _cmd_train(args: argparse.Namespace) -> int:
    from .config import resolve_device
    from .train import train

    from . import distributed

    config = _train_config(args)
    resolve_device(config.device)  # a missing GPU is reported before any data is loaded
    try:
        result = train(config, progress=args.progress, resume=not args.restart)
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

    from .train import TEST_SEED, evaluate, load_trained, test_sampler

    start = time.perf_counter()
    exp, checkpoint = load_trained(args.checkpoint, device=args.device, compile=args.compile)
    config = exp.config
    inner = config.test_inner_steps if args.inner_steps is None else args.inner_steps
    sampler = test_sampler(exp, n_way=args.n_way, k_shot=args.k_shot, seed=TEST_SEED if args.seed is None else args.seed)
    result = evaluate(exp.learner, sampler, num_tasks=args.tasks, inner_steps=inner,
                      batch_size=args.batch_size or min(config.meta_batch_size, 25), progress=args.progress)
    shape = f"{sampler.n_way}-way {sampler.k_shot}-shot " if config.is_classification else ""
    print(f"{config.algo} {config.data} step {checkpoint['step']}: test {shape}{result} with {inner} inner steps")
    if args.record:
        from .shipped import record_extra_test

        where = record_extra_test(os.path.dirname(os.fspath(checkpoint_path(args.checkpoint))), result,
                                  n_way=sampler.n_way, k_shot=sampler.k_shot, device=exp.device,
                                  wall_time_s=time.perf_counter() - start)
        print(f"recorded in {where}")
    return 0


def checkpoint_path(path: str) -> Any:
    from .checkpoint import resolve_checkpoint_path

    return resolve_checkpoint_path(path)


def _cmd_export(args: argparse.Namespace) -> int:
    from .shipped import export_run

    where = export_run(args.run, args.dest)
    print(f"exported {args.run} to {os.path.dirname(where)} (results.json, weights.pt)")
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from .train import _data_api

    api = _data_api()
    if args.action == "import":
        target = getattr(api, f"import_{args.dataset}")(args.path, root=args.root)
        print(f"imported {args.dataset} from {args.path} into {target}")
    else:
        target = getattr(api, f"download_{args.dataset}")(root=args.root)
        print(f"{args.dataset} is in {target}")
    return 0


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``mlcourse`` (pyproject ``[project.scripts]``); returns / exits with the status."""
    raw = list(sys.argv[1:] if argv is None else argv)
    if raw[:1] == ["bench"]:  # the benchmark has its own parser (mlcourse bench --help)
        from .bench import main as bench_main

        status = bench_main(raw[1:])
        if argv is None:
            sys.exit(status)
        return status
    parser = _build_parser()
    args = parser.parse_args(argv)
    # "bench" never reaches the parser (main hands it to mlcourse.bench above); its sub-parser lists it in --help
    handlers = {"train": _cmd_train, "eval": _cmd_eval, "export": _cmd_export, "data": _cmd_data}
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
