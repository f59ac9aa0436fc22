"""The ``mlcourse`` command line (issue 3 item 5, issue 7 part 2): exit codes, one-line errors, resume after
SIGKILL with exactly the parameters of an uninterrupted run."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mlcourse.checkpoint import load_checkpoint, load_results
from mlcourse.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--data",
    "sinusoid",
    "--k-shot",
    "4",
    "--n-query",
    "4",
    "--meta-batch",
    "3",
    "--hidden",
    "8",
    "--no-vectorise",
    "--device",
    "cpu",
    "--val-tasks",
    "2",
    "--test-tasks",
    "4",
    "--no-progress",
]


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("MLCOURSE_FAST", "0")  # `make test` sets 1; these tests pass their sizes explicitly
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "MLCOURSE_FAST": "0"}


def run(*args: str, module: str = "mlcourse", **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def one_line_error(capsys, argv: list[str], *words: str) -> str:
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse errors
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def malformed(capsys, argv: list[str], *words: str) -> None:
    """tyro's parse error: exit 2, no traceback, the message names each of ``words``."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err, err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize(
    "argv, words",
    [
        (["train", "--n-way", "five"], ("--n-way", "five")),
        (["train", "--no-such-option"], ("--no-such-option",)),
        (["eval", "x", "--no-such-option"], ("--no-such-option",)),
        (["eval", "x", "--protocol", "sometimes"], ("--protocol", "sometimes", "transductive")),
        (["data", "import", "mnist", "somewhere"], ("mnist", "omniglot")),
        (["bench", "--algorithms", "nope"], ("--algorithms", "nope")),
        (["frontier", "--jobs", "two"], ("--jobs", "two")),
        (["scaling", "--axes", "depth"], ("--axes", "depth", "inner_steps")),
        (["cifar-grid"], ("--out",)),
        (["book", "--timeout", "soon"], ("--timeout", "soon")),
    ],
)
def test_every_command_names_a_malformed_option_with_its_value(capsys, argv, words):
    """Every subcommand's options are typed (tyro): a malformed or unknown option exits 2 naming the flag and the
    value (and the allowed choices where there are some)."""
    malformed(capsys, argv, *words)


def test_every_command_has_typed_options_with_help():
    """One typed command line: each subcommand is an options dataclass whose every field carries its help."""
    import dataclasses
    import typing

    from mlcourse.cli import LIBRARY, _registered

    commands = {**LIBRARY, **_registered()}
    assert {"train", "eval", "export", "data", "bench", "frontier", "scaling", "book", "grade"} <= set(commands)
    for name, command in commands.items():
        options = typing.get_args(command.options) or (command.options,)
        for option_type in options:
            option_type = typing.get_args(option_type)[0] if typing.get_args(option_type) else option_type
            assert dataclasses.is_dataclass(option_type), name
            hints = typing.get_type_hints(option_type, include_extras=True)
            for f in dataclasses.fields(option_type):
                if name == "train":
                    continue  # generated from TrainConfig's declarations (test_train_options_are_generated_...)
                helps = [m.help for m in typing.get_args(hints[f.name])[1:] if getattr(m, "help", None)]
                assert helps, (name, f.name)


def test_reptile_inner_batches_on_sinusoids(tmp_path, capsys):
    """Regression has no classes (n_way = 0): Reptile's inner mini-batches take the support points in order
    (it ended in a ZeroDivisionError before)."""
    argv = ["train", "--algo", "reptile", "--data", "sinusoid", "--inner-batch", "5", "--iterations", "3"]
    assert main([*argv, "--device", "cpu", "--no-progress", "--test-tasks", "4", "--out", str(tmp_path)]) == 0
    assert load_results(tmp_path / "results.json")["config"]["inner_batch"] == 5


def test_error_messages_and_exit_codes(capsys, tmp_path):
    one_line_error(capsys, ["train", *TINY, "--inner-steps", "-1", "--out", str(tmp_path)], "inner_steps=-1", ">= 0")
    one_line_error(capsys, ["train", *TINY, "--inner-lr", "0", "--out", str(tmp_path)], "inner_lr=0.0", "> 0")
    one_line_error(capsys, ["train", "--algo", "nope", "--out", str(tmp_path)], "algo='nope'", "allowed")
    one_line_error(capsys, ["bench", "--repeats", "0"], "--repeats=0", ">= 1")  # mlcourse bench has its own parser
    one_line_error(capsys, ["frontier", "--budget", "0"], "--budget=0", "seconds > 0")
    one_line_error(capsys, ["frontier", "--jobs", "99"], "--jobs=99", "allowed: 1 to")
    one_line_error(capsys, ["eval", str(tmp_path / "missing")], "missing", "does not exist")
    one_line_error(capsys, ["eval", str(tmp_path / "missing"), "--tasks", "0"], "--tasks=0", ">= 1")
    one_line_error(capsys, ["eval", str(tmp_path / "missing"), "--k-shot", "-2"], "--k-shot=-2", ">= 1")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    line = one_line_error(
        capsys, ["eval", str(tmp_path / "bad.pt")], "bad.pt", "cannot be read as an mlcourse checkpoint"
    )
    assert "delete" not in line  # never advise deleting a file mlcourse did not write
    one_line_error(capsys, ["data", "import", "omniglot", str(tmp_path / "nowhere")], "nowhere")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_error(capsys, ["train", *TINY, "--out", str(blocker / "run")], "output directory", "file/run")
    if not torch.cuda.is_available():
        one_line_error(capsys, ["train", *TINY, "--device", "cuda", "--out", str(tmp_path)], "no CUDA GPU")


def test_train_then_eval_in_process(capsys, tmp_path):
    out = tmp_path / "run"
    assert (
        main(["train", *TINY, "--iterations", "6", "--checkpoint-every", "2", "--eval-every", "3", "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "6 iterations" in printed and "mse" in printed
    results = load_results(out)
    assert results["iterations"] == 6 and results["config"]["out_dir"] == str(out)
    assert main(["eval", str(out), "--tasks", "5", "--no-progress"]) == 0
    assert "5 tasks" in capsys.readouterr().out
    # --fast uses the fast-mode sizes, explicit flags still win
    assert main(["train", *TINY, "--fast", "--iterations", "2", "--out", str(tmp_path / "fast")]) == 0
    assert load_results(tmp_path / "fast")["config"]["eval_every"] == 50


def test_module_entry_points_exit_2_without_traceback(tmp_path):
    proc = run("train", *TINY, "--outer-lr", "-1", "--out", str(tmp_path), module="mlcourse.cli")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "mlcourse train: error: outer_lr=-1.0 is out of range; allowed a finite number > 0"
    proc = run("eval", module="mlcourse")  # a parse error, before any data or weights are read
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "Missing from mlcourse eval" in proc.stderr and "RUN" in proc.stderr, proc.stderr


@pytest.mark.slow
def test_sigkill_mid_run_then_same_command_resumes_exactly(tmp_path, capsys):
    iterations = 80
    command = [
        "train",
        *TINY,
        "--algo",
        "maml",
        "--iterations",
        str(iterations),
        "--checkpoint-every",
        "4",
        "--eval-every",
        "40",
        "--seed",
        "7",
    ]
    # the uninterrupted reference runs in this process (one thread, like the subprocesses) to save a start-up
    assert main([*command, "--out", str(tmp_path / "reference")]) == 0

    out = tmp_path / "killed"
    ckpt = out / "checkpoint.pt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlcourse", *command, "--out", str(out)],
        cwd=ROOT,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = load_checkpoint(ckpt)["step"]
    assert 0 < killed_at < iterations
    assert not (out / "results.json").exists()

    resumed = run(*command, "--out", str(out))  # the very same command
    assert resumed.returncode == 0, resumed.stderr
    final, expected = load_checkpoint(ckpt), load_checkpoint(tmp_path / "reference")
    assert final["step"] == expected["step"] == iterations
    for name, tensor in expected["learner"].items():
        assert torch.equal(final["learner"][name], tensor), name
    for name, value in expected["optimizer"]["state"].items():
        assert all(torch.equal(final["optimizer"]["state"][name][k], v) for k, v in value.items())
    assert load_results(out)["test"]["mean"] == load_results(tmp_path / "reference")["test"]["mean"]


def test_train_command_round_trips_every_field(tmp_path, monkeypatch):
    """Chapters 01/03 print ``train_command(config)``: parsed back, it is the same run, in either mode."""
    from mlcourse.commands import parse_train_args, train_command
    from mlcourse.train import TrainConfig

    configs = [
        TrainConfig(
            algo="maml",
            data="omniglot",
            n_way=5,
            k_shot=1,
            n_query=15,
            meta_batch_size=32,
            iterations=10_000,
            image_size=28,
            hidden=64,
            test_tasks=600,
            device="cuda",
            out_dir=str(tmp_path / "a b"),
        ),
        TrainConfig(
            algo="protonet",
            data="omniglot",
            rotations=False,
            vectorise=False,
            first_order=True,
            seed=3,
            inner_lr=0.25,
            outer_lr=5e-4,
            out_dir=str(tmp_path),
        ),
        TrainConfig(
            algo="metasgd",
            data="cifar100",
            split_scheme="article",
            stratified=True,
            attention=True,
            out_dir=str(tmp_path),
        ),
    ]
    for fast in ("0", "1"):
        monkeypatch.setenv("MLCOURSE_FAST", fast)
        for config in configs:
            words = shlex.split(train_command(config))  # a shell command: the path with a space is quoted
            assert words[:2] == ["mlcourse", "train"]
            assert parse_train_args(words[2:])[0] == config, (fast, train_command(config))


def script_commands() -> dict[str, list[str]]:
    """``{run: argv}`` of scripts/omniglot_full_scale.sh (COMMON, then its RUNS entry, whose options win)."""
    import re

    text = (ROOT / "scripts" / "omniglot_full_scale.sh").read_text()
    common = re.search(r'COMMON="([^"]+)"', text, flags=re.S).group(1).replace("\\\n", " ")
    table = re.search(r"declare -A RUNS=\((.*?)\n\)", text, flags=re.S).group(1)  # the RUNS table only (not EXTRA)
    runs = dict(re.findall(r'^\s*\[([\w-]+)\]="([^"]+)"', table, flags=re.M))
    return {name: shlex.split(f"train {common} {args} --out runs/omniglot/{name}") for name, args in runs.items()}


def test_full_scale_script_commands_are_the_shipped_runs(monkeypatch):
    """scripts/omniglot_full_scale.sh (listed in docs/FULL_SCALE.md) parses into exactly the configuration of each
    shipped run (results/omniglot/<run>/results.json), and each run's recorded command parses into it too."""
    from mlcourse import shipped
    from mlcourse.commands import parse_train_args
    from mlcourse.train import TrainConfig

    monkeypatch.setenv("MLCOURSE_FAST", "0")
    commands = script_commands()
    assert {
        "maml-5w1s",
        "protonet-5w1s",
        "protonet-5w5s",
        "matchingnet-5w1s",
        "fomaml-5w1s",
        "metasgd-5w1s",
        "reptile-5w1s",
        "anil-5w1s",
        "pretrain-5w1s",
    } <= set(commands)
    assert "scripts/omniglot_full_scale.sh" in (ROOT / "docs" / "FULL_SCALE.md").read_text()
    configs = {name: parse_train_args(words[1:])[0] for name, words in commands.items()}
    for name, config in configs.items():
        assert config.data == "omniglot" and config.split_scheme == "vinyals" and config.test_tasks >= 600, name
        # compiled, or (the runs made with it) the batched training step and nothing compiled
        assert config.device == "auto" and (
            config.compile is True or (config.batched, config.compile) == (True, False)
        ), name
    runs = shipped.shipped_runs()
    assert runs, "no shipped runs"
    text = (ROOT / "scripts" / "omniglot_full_scale.sh").read_text()
    scratch = re.search(r"^\s*\$MLC (scratch-baseline [^\n]+)$", text, flags=re.M).group(1)
    for name, res in runs.items():
        if not res.get("weights"):  # chapter 01's from-scratch baseline: the script's line made it
            assert res["command"] == f"mlcourse {scratch}", (name, res["command"], scratch)
            continue
        shipped_config = TrainConfig.from_dict(res["config"])
        assert configs[name] == shipped_config.replace(device="auto"), name
        recorded = parse_train_args(shlex.split(res["command"])[2:])[0]
        assert recorded == shipped_config.replace(device=recorded.device), name


def test_train_options_are_generated_from_the_configuration(capsys, monkeypatch):
    """One source of truth: every TrainConfig field is an option of `mlcourse train`, with its help and default."""
    import dataclasses

    from mlcourse.commands import _flag
    from mlcourse.train import TrainConfig

    monkeypatch.setenv("COLUMNS", "2000")  # no line wrapping inside the help texts
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    for f in dataclasses.fields(TrainConfig):
        assert _flag(f) in text, f.name
        assert " ".join(f.metadata["help"].split()) in text, f.name
    assert "(default: 0.001)" in text and "(default: the data set's)" in text
    assert "--compile, --no-compile" in text or "--compile | --no-compile" in text


def test_library_commands_import_no_course_module():
    """The course registers its commands (entry-point group mlcourse.commands): `mlcourse train` and the other
    library commands load neither the course nor a plotting library, and `mlcourse --help` still lists both."""
    code = (
        "import sys\nfrom mlcourse.cli import main\n"
        "try:\n    main(['train', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('matplotlib', 'nbformat', 'mlcourse.course') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    listing = subprocess.run([sys.executable, "-m", "mlcourse", "--help"], capture_output=True, text=True, timeout=300)
    for command in ("train", "eval", "bench", "frontier", "book", "grade", "scaling", "cifar-grid", "scratch-baseline"):
        assert f"    {command}" in listing.stdout, command
