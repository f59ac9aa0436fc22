"""Quick CPU sanity benchmark (ch08): second-order MAML meta-gradient throughput, tasks/s, for
mlcourse vectorised (torch.func.vmap) vs mlcourse per-task loop vs learn2learn's MAML (clone/adapt).

    .venv/bin/python benchmarks/bench_cpu_quick.py [--tasks 8] [--hidden 16] [--image-size 28] [--threads 1]

Every variant computes the same meta-gradient (tests/test_learn2learn.py checks that) on the same model.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F

from mlcourse.algorithms import make_learner
from mlcourse.data.tasks import TaskBatch
from mlcourse.models import Conv4


def batch(tasks: int, n_way: int, k_shot: int, n_query: int, size: int) -> TaskBatch:
    g = torch.Generator().manual_seed(0)
    sy, qy = torch.arange(n_way).repeat_interleave(k_shot), torch.arange(n_way).repeat_interleave(n_query)
    return TaskBatch(
        torch.rand(tasks, n_way * k_shot, 1, size, size, generator=g),
        sy.repeat(tasks, 1),
        torch.rand(tasks, n_way * n_query, 1, size, size, generator=g),
        qy.repeat(tasks, 1),
    )


def rate(step, tasks: int, seconds: float) -> float:
    step()  # warm-up
    step()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        n += 1
    return n * tasks / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--n-way", type=int, default=5)
    parser.add_argument("--k-shot", type=int, default=1)
    parser.add_argument("--n-query", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--inner-steps", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import learn2learn as l2l  # noqa: PLC0415 (prints a gym warning)

    torch.manual_seed(0)
    model = Conv4(hidden=args.hidden, image_size=args.image_size, n_out=args.n_way)
    data = batch(args.tasks, args.n_way, args.k_shot, args.n_query, args.image_size)
    learner = make_learner("maml", model, inner_lr=0.4, inner_steps=args.inner_steps)

    def ours(vectorise: bool):
        def step() -> None:
            learner.vectorise = vectorise
            learner.zero_grad()
            learner(data).loss.backward()

        return step

    maml = l2l.algorithms.MAML(copy.deepcopy(model), lr=0.4)

    def l2l_step() -> None:
        maml.zero_grad()
        total = 0.0
        for t in range(data.num_tasks):
            clone = maml.clone()
            for _ in range(args.inner_steps):
                clone.adapt(F.cross_entropy(clone(data.support_x[t]), data.support_y[t]))
            total = total + F.cross_entropy(clone(data.query_x[t]), data.query_y[t])
        (total / data.num_tasks).backward()

    results = {
        "vectorised": rate(ours(True), args.tasks, args.seconds),
        "loop": rate(ours(False), args.tasks, args.seconds),
        "learn2learn": rate(l2l_step, args.tasks, args.seconds),
    }
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, Conv4(hidden={args.hidden}, {args.image_size}px), "
        f"{args.n_way}-way {args.k_shot}-shot {args.n_query} query, {args.tasks} tasks, {args.inner_steps} inner step(s), second order"
    )
    for name, value in results.items():
        print(f"{name:>12}: {value:8.1f} tasks/s")
    print(
        f"vectorised / learn2learn = {results['vectorised'] / results['learn2learn']:.2f}x, "
        f"vectorised / loop = {results['vectorised'] / results['loop']:.2f}x"
    )


if __name__ == "__main__":
    main()
