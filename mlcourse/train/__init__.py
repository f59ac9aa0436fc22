"""Meta-training, in four modules whose names say what they hold (each imports only those before it):
``config`` (:class:`TrainConfig`), ``experiment`` (:func:`build_experiment`), ``evaluation`` (:func:`evaluate`)
and ``loop`` (:class:`Trainer`, :func:`train`, :func:`load_trained`). This package re-exports their public names.

* :class:`TrainConfig` — every hyper-parameter of a run, validated (errors name the value and the
  allowed range); :meth:`TrainConfig.defaults` gives per-data-set defaults, :meth:`TrainConfig.fast`
  the fast-mode version (fewer iterations and test tasks, the same code path).
* :func:`build_experiment` — model, learner and the train/val/test task samplers of a config.
* :func:`train` — the outer loop with a tqdm progress bar, periodic validation, learning curves kept as
  data, atomic checkpoints, exact resume, and ``results.json`` beside the checkpoint.
* :func:`evaluate` — the standard few-shot protocol: mean query accuracy (MSE for regression) over
  ``num_tasks`` (600) test tasks with a 95% confidence interval ``1.96 * std / sqrt(n)``.

Per-data-set defaults (full scale; ``fast()`` shrinks iterations, evaluation and meta-batch only):

=========  =====  ======  =====  ===========  ===========  ==========  =====  ======  ==========
data       N-way  K-shot  query  inner steps  test steps   inner lr    meta   hidden  iterations
=========  =====  ======  =====  ===========  ===========  ==========  =====  ======  ==========
omniglot   5      1       15     1            3            0.4         32     64      60000
cifar100   5      1       15     5            10           0.01        4      32      60000
sinusoid   -      10      10     1            10           0.01        25     40      70000
=========  =====  ======  =====  ===========  ===========  ==========  =====  ======  ==========

Omniglot follows the MAML paper (Finn et al. 2017, 5-way 1-shot: inner lr 0.4, one inner step in
training and three at test time, meta-batch 32, Adam 1e-3, 28x28 with rotations as new classes);
CIFAR-100 follows MAML's MiniImagenet settings (5 steps / 10 at test, lr 0.01, meta-batch 4, 32 filters)
used by CIFAR-FS; sinusoid is MAML's regression setting (10 shots, lr 0.01, meta-batch 25, 40 hidden).
Query sets use 15 images per class (the usual evaluation protocol).

Validation uses the val split and test uses the test split, whose classes are never seen in training.
Their samplers are reset to fixed seeds before every evaluation, so validation never touches the
training random stream (exact resume) and every run is tested on the same tasks (``TEST_SEED``).
"""

from __future__ import annotations

from ..checkpoint import CheckpointError, ResultsError, load_results
from .config import (
    ALGORITHMS,
    BATCHED_PAYS_ON_CPU,
    CLASSIFICATION_ONLY,
    COMPILE_PAYS_ON_CPU,
    DATASETS,
    LATER_FIELDS,
    LR_SCHEDULES,
    RESUMABLE_CHANGES,
    SPLIT_SCHEMES,
    TEST_NEUTRAL_CHANGES,
    TEST_SEED,
    VAL_SEED_OFFSET,
    ConfigError,
    TrainConfig,
    option,
)
from .evaluation import EvalResult, evaluate
from .experiment import (
    Experiment,
    SinusoidSampler,
    build_experiment,
    build_learner,
    episode_samplers,
    load_datasets,
    test_sampler,
)
from .loop import (
    Trainer,
    TrainResult,
    expected_training_time,
    load_trained,
    logged_loss,
    measure_step_time,
    train,
    training_notice,
)

__all__ = [
    "ALGORITHMS",
    "DATASETS",
    "SPLIT_SCHEMES",
    "TrainConfig",
    "ConfigError",
    "Experiment",
    "SinusoidSampler",
    "build_experiment",
    "test_sampler",
    "EvalResult",
    "evaluate",
    "TrainResult",
    "train",
    "load_trained",
    "measure_step_time",
    "expected_training_time",
    "training_notice",
    "load_results",
    "CheckpointError",
    "ResultsError",
    "CLASSIFICATION_ONLY",
    "BATCHED_PAYS_ON_CPU",
    "COMPILE_PAYS_ON_CPU",
    "LATER_FIELDS",
    "LR_SCHEDULES",
    "RESUMABLE_CHANGES",
    "TEST_NEUTRAL_CHANGES",
    "TEST_SEED",
    "VAL_SEED_OFFSET",
    "option",
    "build_learner",
    "episode_samplers",
    "load_datasets",
    "Trainer",
    "logged_loss",
]
