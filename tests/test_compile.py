"""torch.compile'd learners (issue: CPU speed): compiled = eager meta-gradient to 1e-10 in float64 for every
algorithm the course trains, second order included; evaluation too; a compiler that cannot run falls back to
eager with a one-line notice (a laptop without a C++ compiler), never a traceback."""

from __future__ import annotations

import os

import pytest
import torch
from test_algorithms_helpers import image_batch, meta_grad, rel

from mlcourse.algorithms import execution, make_learner
from mlcourse.models import Conv4

pytestmark = pytest.mark.slow  # torch.compile runs: `make test` only, not `make test-fast`

F64 = torch.float64
COMPILED_ALGORITHMS = ["maml", "metasgd", "fomaml", "reptile", "anil", "protonet", "matchingnet"]
# A laptop without a C++ compiler skips these; CI (CI=true) has one, and fails instead of skipping.
needs_compiler = pytest.mark.skipif(
    not execution.compiler_available("cpu")[0] and not os.environ.get("CI"), reason="no C++ compiler for torch.compile"
)


def pair(name: str, steps: int, vectorise: bool = True):
    """An eager and a compiled learner with the same initial weights (float64, a tiny Conv-4 of two blocks: the
    same conv, plain-op batch norm, ReLU and pooling ops at half the graph, so half the compile time).
    ``vectorise=False``: the eager reference loop and the compiled per-task function called task after task."""
    out = []
    for compile in (False, True):
        torch.manual_seed(0)
        model = Conv4(hidden=4, image_size=12, n_out=3, layers=2).to(F64)
        out.append(make_learner(name, model, inner_lr=0.1, inner_steps=steps, compile=compile, vectorise=vectorise))
    return out


@needs_compiler
@pytest.mark.parametrize(("name", "steps"), [("maml", 1), ("maml", 3)] + [(n, 1) for n in COMPILED_ALGORITHMS[1:]])
def test_compiled_meta_gradient_equals_eager(name: str, steps: int) -> None:
    eager, compiled = pair(name, steps)
    batch = image_batch()
    expected, got = meta_grad(eager, batch, True), meta_grad(compiled, batch, True)
    assert compiled.use_compile and compiled.compile_notice is None, compiled.compile_notice
    assert compiled.task_map.compiled, "the compiled map was not used"
    assert expected.norm() > 0
    assert rel(got, expected) < 1e-10, (name, steps, rel(got, expected))
    assert compiled.compile_seconds > 0


@needs_compiler
@pytest.mark.parametrize(("name", "steps"), [("maml", 3), ("fomaml", 1), ("anil", 1), ("protonet", 1)])
def test_compiled_loop_meta_gradient_equals_the_reference_loop(name: str, steps: int) -> None:
    """The compiled per-task function (torch.func.grad inside, called task after task) against the eager loop
    (torch.autograd.grad): the same meta-gradient to 1e-10 in float64, and the same evaluation."""
    eager, compiled = pair(name, steps, vectorise=False)
    batch = image_batch()
    expected, got = meta_grad(eager, batch, True), meta_grad(compiled, batch, True)
    assert compiled.use_compile and compiled.compile_notice is None, compiled.compile_notice
    assert compiled.task_map.compiled and compiled.compile_seconds > 0
    assert expected.norm() > 0
    assert rel(got, expected) < 1e-10, (name, steps, rel(got, expected))
    e, c = eager.evaluate(batch, inner_steps=2), compiled.evaluate(batch, inner_steps=2)
    for key in e:
        assert torch.allclose(e[key], c[key], rtol=1e-10, atol=1e-12), key


@needs_compiler
@pytest.mark.parametrize("name", ["maml", "protonet"])
def test_compiled_evaluation_equals_eager(name: str) -> None:
    """Evaluation (no meta-gradient, more inner steps than in training) is compiled too: same metrics."""
    eager, compiled = pair(name, 1)
    batch = image_batch()
    e, c = eager.evaluate(batch, inner_steps=3), compiled.evaluate(batch, inner_steps=3)
    assert set(e) == set(c)
    for key in e:
        assert torch.allclose(e[key], c[key], rtol=1e-10, atol=1e-12), key
    assert compiled.task_map.compiled and compiled.compile_seconds > 0


def test_missing_compiler_falls_back_to_eager_with_one_line(monkeypatch, capsys) -> None:
    monkeypatch.setattr(execution.shutil, "which", lambda name: None)
    eager, compiled = pair("maml", 1)
    batch = image_batch()
    assert rel(meta_grad(compiled, batch, True), meta_grad(eager, batch, True)) == 0.0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no C++ compiler" in err[0] and "running eagerly" in err[0]
    assert not compiled.use_compile and compiled.compile_notice


def test_a_failing_compiler_falls_back_to_eager(monkeypatch, capsys) -> None:
    def broken(fn, **kw):
        def run(*args):
            raise RuntimeError("InductorError: CppCompileError: C++ compile error\n  long compiler output")

        return run

    monkeypatch.setattr(execution, "compiler_available", lambda device=None: (True, ""))
    monkeypatch.setattr(torch, "compile", broken)
    eager, compiled = pair("protonet", 1)
    batch = image_batch()
    assert rel(meta_grad(compiled, batch, True), meta_grad(eager, batch, True)) == 0.0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CppCompileError" in err[0] and "long compiler output" not in err[0]
