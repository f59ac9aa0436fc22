"""Issue 3 items 3-5: TrainConfig validation, the evaluation protocol, exact resume, results.json."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from mlcourse.checkpoint import CheckpointError, load_checkpoint, load_results
from mlcourse.data.images import ImageClassDataset
from mlcourse.data.sampler import EpisodeSampler
from mlcourse.data.tasks import TaskBatch
from mlcourse.hostmemory import cpu_allocator
from mlcourse.stats import confidence_interval
from mlcourse.train import (
    ConfigError,
    EvalResult,
    Experiment,
    TrainConfig,
    build_experiment,
    evaluate,
    load_trained,
    train,
)


def tiny(out_dir=None, **changes) -> TrainConfig:
    """A sinusoid run that takes about a second on a shared CPU (reference per-task loop, tiny MLP)."""
    values = dict(
        iterations=12,
        k_shot=4,
        n_query=4,
        meta_batch_size=3,
        hidden=8,
        vectorise=False,
        eval_every=4,
        val_tasks=3,
        test_tasks=6,
        checkpoint_every=5,
        log_every=2,
        device="cpu",
        seed=3,
        out_dir=str(out_dir) if out_dir is not None else None,
    )
    values.update(changes)
    return TrainConfig.defaults("sinusoid", fast=False, **values)


def params(learner: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in learner.state_dict().items()}


def assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs"


# --------------------------------------------------------------------------------------------------
# configuration


@pytest.mark.parametrize(
    "changes, words",
    [
        (dict(inner_steps=-1), ["inner_steps=-1", ">= 0"]),
        (dict(test_inner_steps=-2), ["test_inner_steps=-2", ">= 0"]),
        (dict(inner_lr=0.0), ["inner_lr=0.0", "> 0"]),
        (dict(outer_lr=-1e-3), ["outer_lr=-0.001", "> 0"]),
        (dict(outer_lr=float("nan")), ["outer_lr=nan", "finite"]),
        (dict(n_way=1), ["n_way=1", ">= 2"]),
        (dict(k_shot=0), ["k_shot=0", ">= 1"]),
        (dict(meta_batch_size=0), ["meta_batch_size=0", ">= 1"]),
        (dict(iterations=-5), ["iterations=-5", ">= 0"]),
        (dict(eval_every=0), ["eval_every=0", ">= 1"]),
        (dict(test_tasks=-1), ["test_tasks=-1", ">= 0"]),
        (dict(seed=-1), ["seed=-1"]),
        (dict(k_shot=1.5), ["k_shot=1.5", "integer"]),
        (dict(algo="magic"), ["algo='magic'", "maml"]),
        (dict(data="mnist"), ["data='mnist'", "omniglot"]),
        (dict(split_scheme="fc100"), ["split_scheme='fc100'", "vinyals"]),
        (dict(device="gpu"), ["device='gpu'", "cuda"]),
        (dict(image_size=4), ["image_size=4", "16..512"]),
        (dict(first_order="yes"), ["first_order='yes'", "True or False"]),
        (dict(checkpoint_every=0), ["checkpoint_every=0", ">= 1"]),
    ],
)
def test_config_errors_name_value_and_range(changes, words):
    with pytest.raises(ConfigError) as info:
        TrainConfig(**{"data": "omniglot", **changes})
    for word in words:
        assert word in str(info.value)
    assert "allowed" in str(info.value)


def test_config_cross_field_errors():
    with pytest.raises(ConfigError, match="protonet.*classification"):
        TrainConfig(data="sinusoid", algo="protonet")
    with pytest.raises(ConfigError, match="n_way=5.*regression"):
        TrainConfig(data="sinusoid", n_way=5)
    with pytest.raises(ConfigError, match="image_size=28.*32"):
        TrainConfig(data="cifar100", image_size=28)
    with pytest.raises(ConfigError, match="rotations"):
        TrainConfig(data="cifar100", rotations=True)


def test_defaults_follow_the_papers_and_fast_mode_shrinks(monkeypatch):
    c = TrainConfig.defaults("omniglot", fast=False)
    assert (c.n_way, c.k_shot, c.inner_lr, c.inner_steps, c.test_inner_steps) == (5, 1, 0.4, 1, 3)
    assert (c.meta_batch_size, c.outer_lr, c.image_size, c.iterations, c.test_tasks) == (32, 1e-3, 28, 60_000, 600)
    assert TrainConfig.defaults("cifar100", fast=False).image_size == 32
    s = TrainConfig.defaults("sinusoid", fast=False)
    assert (s.k_shot, s.inner_lr, s.meta_batch_size, s.hidden) == (10, 0.01, 25, 40)
    monkeypatch.setenv("MLCOURSE_FAST", "1")
    f = TrainConfig.defaults("omniglot")
    assert f.iterations < c.iterations and f.test_tasks < c.test_tasks
    assert (f.algo, f.n_way, f.k_shot, f.inner_lr, f.inner_steps) == (
        c.algo,
        c.n_way,
        c.k_shot,
        c.inner_lr,
        c.inner_steps,
    )
    assert TrainConfig.defaults("omniglot", iterations=7).iterations == 7  # explicit values win over fast mode
    assert TrainConfig.from_dict(c.to_dict()) == c


# --------------------------------------------------------------------------------------------------
# evaluation protocol


class FixedLearner(nn.Module):
    """Stand-in learner whose per-task accuracy is read from the task (support_x[:, 0, 0])."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.seen_steps: list = []

    def evaluate(self, batch: TaskBatch, inner_steps=None):
        self.seen_steps.append(inner_steps)
        acc = batch.support_x[:, 0, 0].float()
        return {"query_accuracy": acc, "query_loss": 1 - acc}


class ListSampler:
    def __init__(self, values):
        self.values, self.i, self.sizes = list(values), 0, []

    def sample(self, n):
        self.sizes.append(n)
        v = torch.tensor(self.values[self.i : self.i + n], dtype=torch.float32)
        self.i += n
        x = v.view(-1, 1, 1)
        y = torch.zeros(n, 1, dtype=torch.int64)
        return TaskBatch(x, y, x, y)


def test_confidence_interval_formula():
    rng = np.random.default_rng(0)
    values = rng.uniform(0.3, 1.0, size=600)
    mean, ci, std = confidence_interval(values)
    assert mean == pytest.approx(values.mean())
    assert std == pytest.approx(values.std())
    assert ci == pytest.approx(1.96 * values.std() / math.sqrt(600))


def test_evaluate_uses_num_tasks_batches_and_inner_steps():
    values = np.random.default_rng(1).uniform(0, 1, size=610)
    learner, sampler = FixedLearner(), ListSampler(values)
    result = evaluate(learner, sampler, num_tasks=610, inner_steps=3, batch_size=100)
    assert isinstance(result, EvalResult) and result.metric == "accuracy"
    assert sampler.sizes == [100] * 6 + [10]
    assert result.num_tasks == 610 and len(result.accuracies) == 610
    assert result.mean == pytest.approx(values.mean(), abs=1e-6)
    assert result.ci95 == pytest.approx(1.96 * values.astype(np.float32).astype(np.float64).std() / math.sqrt(610))
    assert set(learner.seen_steps) == {3}
    assert "% +- " in str(result)
    with pytest.raises(ValueError, match="num_tasks=0"):
        evaluate(learner, sampler, num_tasks=0)


def test_evaluate_regression_reports_mse():
    exp = build_experiment(tiny())
    result = evaluate(exp.learner, exp.samplers["test"], num_tasks=7, inner_steps=2, batch_size=3)
    assert result.metric == "mse" and result.num_tasks == 7 and result.mean > 0
    with pytest.raises(AttributeError):
        _ = result.accuracies


# --------------------------------------------------------------------------------------------------
# training, resume, results


def test_exact_resume_in_process(tmp_path):
    reference = train(tiny(tmp_path / "a"), progress=False)
    assert reference.completed and reference.step == 12 and reference.test is not None

    first = train(tiny(tmp_path / "b"), progress=False, max_steps=7)
    assert not first.completed and first.step == 7 and first.test is None
    assert load_checkpoint(tmp_path / "b")["step"] == 7
    stops = []
    second = train(tiny(tmp_path / "b"), progress=False, callback=lambda step, rec: stops.append(step) or step == 9)
    assert second.step == 9 and stops == [8, 9]
    final = train(tiny(tmp_path / "b"), progress=False)
    assert final.completed and final.step == 12
    assert_identical(params(final.learner), params(reference.learner))
    assert_identical(load_checkpoint(tmp_path / "b")["learner"], load_checkpoint(tmp_path / "a")["learner"])
    assert final.test.mean == reference.test.mean
    strip = lambda h: [{k: v for k, v in r.items() if k != "wall_time_s"} for r in h]  # noqa: E731
    assert strip(final.history) == strip(reference.history)


def test_history_and_results_json_round_trip(tmp_path):
    result = train(tiny(tmp_path), progress=False)
    steps = [r["step"] for r in result.history]
    assert steps == [2, 4, 6, 8, 10, 12]
    assert all("val_mse" in r and "val_ci95" in r for r in result.history if r["step"] % 4 == 0)
    assert all("train_loss" in r for r in result.history)
    saved = load_results(tmp_path)
    assert saved == load_results(tmp_path / "results.json")
    assert saved["config"] == result.config.to_dict()
    assert saved["history"] == result.history
    assert saved["test"]["mean"] == result.test.mean and saved["test"]["ci95"] == result.test.ci95
    assert saved["test"]["num_tasks"] == 6 and saved["test"]["metric"] == "mse"
    assert saved["iterations"] == 12 and saved["torch"] == torch.__version__
    for key in ("device", "device_name", "threads", "allocator", "wall_time_s", "date"):
        assert saved[key]
    assert not list(tmp_path.glob(".*tmp*"))
    # re-running a finished run is instant: same test result, nothing retrained
    again = train(tiny(tmp_path), progress=False)
    assert again.test.mean == result.test.mean and again.step == 12


def test_resume_refuses_another_configuration(tmp_path):
    train(tiny(tmp_path), progress=False, max_steps=5)
    with pytest.raises(CheckpointError) as info:
        train(tiny(tmp_path, inner_lr=0.02), progress=False)
    assert "inner_lr=0.01 there but 0.02 here" in str(info.value) and "checkpoint.pt" in str(info.value)
    with pytest.raises(CheckpointError, match="written by algorithm 'maml', but this run uses 'fomaml'"):
        train(tiny(tmp_path, algo="fomaml"), progress=False)
    # more iterations may be added to a run
    result = train(tiny(tmp_path, iterations=14), progress=False)
    assert result.step == 14
    # resume=False starts over
    assert train(tiny(tmp_path), progress=False, resume=False, max_steps=2).step == 2


def test_load_trained_restores_weights(tmp_path):
    result = train(tiny(tmp_path), progress=False)
    exp, ckpt = load_trained(tmp_path)
    assert ckpt["step"] == 12
    assert_identical(params(exp.learner), params(result.learner))


# --------------------------------------------------------------------------------------------------
# image classification through the same loop (tiny synthetic data set, the real EpisodeSampler)


def synthetic_experiment(config: TrainConfig) -> Experiment:
    from mlcourse.algorithms import make_learner
    from mlcourse.config import seed_everything
    from mlcourse.models import Conv4

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (12, 6, 1, 16, 16), generator=g, dtype=torch.uint8)
    data = ImageClassDataset(images=images, class_names=[f"c{i}" for i in range(12)], name="synthetic")
    samplers = {
        s: EpisodeSampler(data, config.n_way, config.k_shot, config.n_query, seed=seed)
        for s, seed in (("train", config.seed), ("val", 100), ("test", 200))
    }
    seed_everything(config.seed)
    model = Conv4(in_channels=1, n_out=config.n_way, hidden=config.hidden, image_size=config.image_size)
    learner = make_learner(
        config.algo,
        model,
        inner_lr=config.inner_lr,
        inner_steps=config.inner_steps,
        first_order=config.first_order,
        vectorise=config.vectorise,
    )
    return Experiment(config, model, learner, samplers, torch.device("cpu"))


def test_exact_resume_image_classification(tmp_path):
    def config(out):
        return TrainConfig.defaults(
            "omniglot",
            fast=False,
            n_way=3,
            k_shot=1,
            n_query=2,
            meta_batch_size=2,
            hidden=4,
            image_size=16,
            iterations=6,
            eval_every=3,
            val_tasks=2,
            test_tasks=4,
            checkpoint_every=2,
            log_every=1,
            device="cpu",
            vectorise=False,
            out_dir=str(out),
        )

    reference = train(config(tmp_path / "a"), progress=False, experiment=synthetic_experiment(config(tmp_path / "a")))
    part = train(
        config(tmp_path / "b"), progress=False, max_steps=3, experiment=synthetic_experiment(config(tmp_path / "b"))
    )
    assert part.step == 3
    final = train(config(tmp_path / "b"), progress=False, experiment=synthetic_experiment(config(tmp_path / "b")))
    assert_identical(params(final.learner), params(reference.learner))
    assert final.test.metric == "accuracy" and 0 <= final.test.mean <= 1
    assert "val_accuracy" in final.history[-1] and "train_accuracy" in final.history[-1]


def test_attention_flag_builds_the_attention_conv4_and_stratifies_training_only(tmp_path, monkeypatch):
    """--attention reaches the model; --stratified applies to the training sampler only (ch05)."""
    from mlcourse.train import ConfigError, TrainConfig

    monkeypatch.setenv("MLCOURSE_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises((ConfigError, ValueError), match="attention"):
        TrainConfig.defaults("sinusoid", algo="maml", attention=True)
    config = TrainConfig.defaults(
        "omniglot", algo="maml", attention=True, stratified=True, out_dir=str(tmp_path / "run")
    )
    assert config.attention and config.stratified
    assert TrainConfig.from_dict(config.to_dict()).attention


def test_checkpoint_without_a_newer_config_field_still_resumes(tmp_path):
    """A checkpoint written before a TrainConfig field existed resumes when the field has its default."""
    from mlcourse.train import TrainConfig
    from mlcourse.train.loop import _check_resume_config

    config = TrainConfig.defaults("sinusoid", algo="maml", out_dir=str(tmp_path))
    saved = config.to_dict()
    saved.pop("attention")
    _check_resume_config(saved, config, tmp_path / "checkpoint.pt")  # no error
    with pytest.raises(CheckpointError, match="attention"):  # a real difference is still refused
        _check_resume_config({**saved, "attention": True}, config, tmp_path / "checkpoint.pt")


def test_a_run_finished_elsewhere_is_loaded_not_retrained(tmp_path, monkeypatch):
    """Chapters 01/03 in full mode: a run trained by ``mlcourse train`` (another directory, another device
    setting, e.g. a GPU machine) is reused with its test result; a change that alters the test is re-tested."""
    import shutil

    finished = train(tiny(tmp_path / "gpu"), progress=False)
    shutil.copytree(tmp_path / "gpu", tmp_path / "notebook")
    saved = load_results(tmp_path / "notebook")
    saved["test"]["per_task"] = [-1.0] * len(saved["test"]["per_task"])  # a marker: reuse returns exactly this
    from mlcourse.checkpoint import save_results

    save_results(tmp_path / "notebook" / "results.json", saved)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run must not train again")

    monkeypatch.setattr(torch.optim.Adam, "step", no_training)
    again = train(
        tiny(tmp_path / "notebook", device="auto", log_every=1, checkpoint_every=3, eval_every=6), progress=False
    )
    assert again.step == finished.step and again.test.per_task == saved["test"]["per_task"]
    assert_identical(params(again.learner), params(finished.learner))
    retested = train(tiny(tmp_path / "notebook", test_tasks=4), progress=False)  # fewer test tasks: evaluated again
    assert retested.test.num_tasks == 4 and -1.0 not in retested.test.per_task


# --------------------------------------------------------------------------------------------------
# the CPU full-scale runs (results/omniglot): more ways in training, cosine decay, compile flag, step timing


def test_train_n_way_is_for_metric_learners_and_reaches_the_training_sampler_only(monkeypatch):
    import mlcourse.train.experiment as T
    from mlcourse.data.sampler import EpisodeSampler as RealSampler

    with pytest.raises(ConfigError, match=r"train_n_way=20 .*maml"):
        TrainConfig.defaults("omniglot", algo="maml", fast=False, train_n_way=20)
    with pytest.raises(ConfigError, match=r"train_n_way=1 is out of range"):
        TrainConfig.defaults("omniglot", algo="protonet", fast=False, train_n_way=1)
    g = torch.Generator().manual_seed(0)
    data = ImageClassDataset(
        images=torch.randint(0, 256, (12, 6, 1, 16, 16), generator=g, dtype=torch.uint8),
        class_names=[f"c{i}" for i in range(12)],
        name="synthetic",
    )
    api = T._data_api()
    monkeypatch.setattr(
        T,
        "_data_api",
        lambda: type(api)(**{**vars(api), "load_omniglot": lambda *a, **k: data, "EpisodeSampler": RealSampler}),
    )
    config = TrainConfig.defaults(
        "omniglot",
        algo="protonet",
        fast=False,
        n_way=3,
        train_n_way=5,
        k_shot=1,
        n_query=2,
        meta_batch_size=2,
        hidden=4,
        image_size=16,
        iterations=2,
        val_tasks=2,
        test_tasks=2,
        device="cpu",
        vectorise=False,
    )
    assert config.training_n_way == 5 and config.replace(train_n_way=None).training_n_way == 3
    exp = T.build_experiment(config)
    assert [exp.samplers[s].n_way for s in ("train", "val", "test")] == [5, 3, 3]
    assert [exp.samplers[s].k_shot for s in ("train", "val", "test")] == [1, 1, 1]
    # more shots in training tasks only (Reptile's setting): the evaluation protocol stays k_shot
    more = T.build_experiment(config.replace(algo="reptile", train_n_way=None, train_k_shot=3))
    assert [more.samplers[s].k_shot for s in ("train", "val", "test")] == [3, 1, 1]
    # one build_experiment, also on data loaded beforehand (chapter 05's grid): the same model, tasks and settings
    preloaded = T.build_experiment(config, datasets=T.load_datasets(config))
    assert all(
        torch.equal(a, b) for a, b in zip(exp.model.state_dict().values(), preloaded.model.state_dict().values())
    )
    assert [preloaded.samplers[s].n_way for s in ("train", "val", "test")] == [5, 3, 3]
    assert torch.equal(exp.samplers["test"].sample(2).query_x, preloaded.samplers["test"].sample(2).query_x)
    without_val = {k: v for k, v in T.load_datasets(config).items() if k != "val"}
    with pytest.raises(ValueError, match="val_tasks=2 but no 'val' split was loaded"):
        T.build_experiment(config, datasets=without_val)
    assert "val" not in T.build_experiment(config.replace(val_tasks=0), datasets=without_val).samplers
    assert more.samplers["train"].sample(2).support_x.shape[1] == 3 * 3
    with pytest.raises(ConfigError, match=r"train_k_shot=2 .*sinusoid"):
        TrainConfig.defaults("sinusoid", algo="maml", fast=True, train_k_shot=2)
    batch = exp.samplers["train"].sample(2)
    assert batch.n_way == 5 and exp.learner(batch).loss.isfinite()  # no n_way-sized head in a ProtoNet


def test_cosine_schedule_and_its_validation():
    config = tiny(lr_schedule="cosine", outer_lr=0.01, iterations=100)
    assert config.outer_lr_at(0) == pytest.approx(0.01)
    assert config.outer_lr_at(50) == pytest.approx(0.005)
    assert config.outer_lr_at(100) == pytest.approx(0.0, abs=1e-15)
    assert tiny(outer_lr=0.01).outer_lr_at(77) == 0.01
    with pytest.raises(ConfigError, match="lr_schedule='linear'.*constant, cosine"):
        tiny(lr_schedule="linear")


def test_cosine_schedule_is_applied_by_the_loop_and_resumes_exactly(tmp_path):
    reference = train(tiny(tmp_path / "a", lr_schedule="cosine"), progress=False)
    part = train(tiny(tmp_path / "b", lr_schedule="cosine"), progress=False, max_steps=5)
    assert part.step == 5
    final = train(tiny(tmp_path / "b", lr_schedule="cosine"), progress=False)
    assert_identical(params(final.learner), params(reference.learner))
    constant = train(tiny(tmp_path / "c"), progress=False)
    assert any(
        not torch.equal(a, b) for a, b in zip(params(constant.learner).values(), params(reference.learner).values())
    )


def test_compile_defaults_to_long_vectorised_runs_and_is_recorded(tmp_path):
    assert TrainConfig.defaults("omniglot", fast=False).compile_enabled()  # 60,000 iterations, vectorised
    # on a CPU only where compiling measured faster (benchmarks/results/bench-cpu-malloc-2026-12-03.json)
    assert not TrainConfig.defaults("omniglot", fast=False).compile_enabled("cpu")  # second-order MAML
    assert not TrainConfig.defaults("omniglot", fast=False, algo="protonet").compile_enabled("cpu")
    assert TrainConfig.defaults("omniglot", fast=False, algo="reptile").compile_enabled("cpu")
    for algo, first_order in (("fomaml", False), ("maml", True)):
        config = TrainConfig.defaults("omniglot", fast=False, algo=algo, first_order=first_order)
        assert config.compile_enabled("cuda")
        # on a CPU the batched step measured faster still (bench-cpu-batched-2026-12-07.json): it is not compiled
        assert config.batched_enabled("cpu") and not config.compile_enabled("cpu")
        unbatched = TrainConfig.defaults("omniglot", fast=False, algo=algo, first_order=first_order, batched=False)
        assert unbatched.compile_enabled("cpu")
    assert TrainConfig.defaults("omniglot", fast=False, algo="protonet", compile=True).compile_enabled("cpu")
    assert not TrainConfig.defaults("omniglot", fast=True).compile_enabled()  # fast mode stays eager
    assert not TrainConfig.defaults("omniglot", fast=False, vectorise=False).compile_enabled()
    assert not TrainConfig.defaults("omniglot", fast=False, compile=False).compile_enabled()
    assert TrainConfig.defaults("omniglot", fast=False, compile=True, vectorise=False).compile_enabled()  # loop, asked
    assert not TrainConfig.defaults("sinusoid", fast=False).compile_enabled()  # the tiny MLP: not measured to pay
    assert TrainConfig.defaults("omniglot", fast=True, compile=True).compile_enabled()
    with pytest.raises(ConfigError, match="compile='yes'"):
        tiny(compile="yes")
    result = train(tiny(tmp_path), progress=False)  # eager (12 iterations): recorded as such
    saved = load_results(tmp_path)
    assert saved["compiled"] is False and saved["compile_seconds"] == 0 and saved["compile_notice"] is None
    assert saved["allocator"] == cpu_allocator()  # host memory, beside the device and the wall time
    assert result.completed


def test_measure_step_time_restores_the_learner_and_sampler():
    config = tiny()
    exp = build_experiment(config)
    before, sampler_state = params(exp.learner), exp.samplers["train"].state_dict()
    from mlcourse.train import expected_training_time, measure_step_time

    seconds = measure_step_time(config, steps=2, experiment=exp)
    assert 0 < seconds < 60
    assert_identical(params(exp.learner), before)
    assert torch.equal(exp.samplers["train"].state_dict()["generator"], sampler_state["generator"])
    line = expected_training_time(config.replace(iterations=60_000), 0.5)
    assert "0.500 s per step" in line and "8.3 h" in line


def test_test_sampler_changes_shape_only_where_the_learner_allows(tmp_path):
    from mlcourse.train import test_sampler

    config = TrainConfig.defaults(
        "omniglot",
        algo="protonet",
        fast=False,
        n_way=3,
        k_shot=1,
        n_query=2,
        meta_batch_size=2,
        hidden=4,
        image_size=16,
        iterations=2,
        device="cpu",
        vectorise=False,
    )
    exp = synthetic_experiment(config)
    sampler = test_sampler(exp, n_way=4, k_shot=2)
    from mlcourse.train import TEST_SEED

    assert (sampler.n_way, sampler.k_shot, sampler.seed) == (4, 2, TEST_SEED)  # the protocol's fixed test tasks
    assert test_sampler(exp, seed=5).seed == 5
    maml = synthetic_experiment(config.replace(algo="maml"))
    with pytest.raises(ConfigError, match=r"n_way=4 differs from the run's n_way=3 .*maml"):
        test_sampler(maml, n_way=4)
    assert test_sampler(maml, k_shot=2).k_shot == 2


@pytest.mark.parametrize("test_tasks", [None, 0], ids=["tested", "untested"])
def test_rerunning_a_finished_run_keeps_its_record(tmp_path, test_tasks):
    """The same command again loads the finished run; results.json keeps its wall time, date and extra tests, also
    for a run without a test (chapter 03's sinusoid runs), and the returned wall time is the run's own."""
    from mlcourse.checkpoint import save_results

    config = tiny(tmp_path) if test_tasks is None else tiny(tmp_path).replace(test_tasks=test_tasks)
    train(config, progress=False)
    first = load_results(tmp_path)
    save_results(
        tmp_path,
        {
            **{k: v for k, v in first.items() if k not in ("format", "version")},
            "date": "2000-01-01T00:00:00+00:00",
            "wall_time_s": 1234.5,
            "extra_tests": {"x": {"mean": 1}},
            "allocator": "recorded then",
        },
    )
    again = train(config, progress=False)
    kept = load_results(tmp_path)
    assert kept["allocator"] == "recorded then"  # how the run was made, not how this process allocates
    assert (again.test is None) if test_tasks == 0 else (again.test.mean == first["test"]["mean"])
    assert again.wall_time_s == 1234.5
    assert (
        kept["date"].startswith("2000-01-01")
        and kept["wall_time_s"] == 1234.5
        and kept["extra_tests"] == {"x": {"mean": 1}}
    )


def test_trainer_is_the_plain_adam_loop_with_a_schedule_and_a_guard():
    """The one outer loop: Trainer.run == zero_grad/backward/Adam step; lr_at sets each step's rate; a loss that
    fails the check never reaches the parameters."""
    from mlcourse.algorithms import make_learner
    from mlcourse.data import SinusoidTasks
    from mlcourse.models import SinusoidMLP
    from mlcourse.train import Trainer

    def batches(seed):
        g = torch.Generator().manual_seed(seed)
        return lambda: SinusoidTasks().sample(4, 5, 5, generator=g)

    torch.manual_seed(0)
    a = make_learner("maml", SinusoidMLP(), inner_lr=0.01)
    b = make_learner("maml", SinusoidMLP(), inner_lr=0.01)
    b.load_state_dict(a.state_dict())
    losses = Trainer(a, outer_lr=1e-2).run(batches(1), 5)
    optimizer, sample, manual = torch.optim.Adam(b.parameters(), lr=1e-2), batches(1), []
    for _ in range(5):
        optimizer.zero_grad()
        out = b(sample())
        out.loss.backward()
        optimizer.step()
        manual.append(float(out.loss))
    assert losses == manual
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))

    trainer = Trainer(a, outer_lr=1e-2, lr_at=lambda step: 0.1 / (step + 1))
    seen = []
    trainer.run(batches(2), 3, callback=lambda step, loss: seen.append((step, loss)))
    assert [s for s, _ in seen] == [1, 2, 3] and all(math.isfinite(v) for _, v in seen)
    assert len(trainer.run(batches(2), 10, callback=lambda step, loss: step >= 4)) == 1  # True stops
    trainer = Trainer(a, outer_lr=1e-2, lr_at=lambda step: 0.1 / (step + 1))
    trainer.run(batches(2), 3)
    assert trainer.steps == 3 and trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 / 3)
    before = [p.detach().clone() for p in a.parameters()]

    def refuse(value):
        raise RuntimeError(f"loss {value} refused")

    with pytest.raises(RuntimeError, match="refused"):
        trainer.step(batches(3)(), check_loss=refuse)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), before)) and trainer.steps == 3


def test_torch_threads_sets_and_restores_and_refuses_nonsense():
    from mlcourse.config import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads=0"):
        with torch_threads(0):
            pass


def test_training_notice_measures_a_run_about_to_train_and_is_silent_for_a_finished_one(tmp_path):
    """Chapters 01/03/05 print this line before full-mode training; a finished run in out_dir is only reloaded."""
    from mlcourse.train import training_notice

    config = tiny(tmp_path)
    line = training_notice(config)
    assert line is not None and "s per step measured on this device" in line and "12 iterations" in line
    train(config, progress=False)
    assert training_notice(config) is None
