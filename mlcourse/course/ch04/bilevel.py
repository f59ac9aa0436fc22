"""The bilevel (MAML) objective, its exact and first-order meta-gradients, the article's rule and
Reptile, on flat parameter vectors with ``torch.func``; plus chapter 04's two widgets.

Used by chapter 04 (``notebooks/04_bilevel_objective.ipynb``) and tested in ``tests/test_bilevel.py``.

Notation (chapter 04): a task ``T`` has a support (training) loss ``L^tr_T`` used *inside* the
inner loop and a query (validation) loss ``L^val_T`` used *outside* it. ``K`` inner SGD steps with
learning rate ``alpha`` map ``theta`` to ``phi_K``; the meta-objective of one task is
``L^val_T(phi_K(theta))``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, jvp, vmap

from mlcourse.algorithms import make_learner
from mlcourse.config import torch_threads
from mlcourse.course.display import FigureOutput
from mlcourse.data.sinusoid import SinusoidTasks
from mlcourse.train import Trainer

LossFn = Callable[[Tensor], Tensor]


@dataclass
class BilevelTask:
    """One task as two scalar functions of a flat parameter vector: support (inner) and query (outer)."""

    support_loss: LossFn
    query_loss: LossFn


# --------------------------------------------------------------------------------------------------
# The inner loop, the meta-objective and its gradients
# --------------------------------------------------------------------------------------------------


def inner_trajectory(support_loss: LossFn, theta: Tensor, alpha: float, steps: int) -> list[Tensor]:
    """``[phi_0 = theta, phi_1, ..., phi_K]`` with ``phi_{k+1} = phi_k - alpha * grad L^tr(phi_k)``.

    Written with ``torch.func.grad`` so that it stays differentiable in ``theta`` (the meta-gradient
    flows through every inner step)."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    g = grad(support_loss)
    path = [theta]
    for _ in range(steps):
        path.append(path[-1] - alpha * g(path[-1]))
    return path


def meta_objective(task: BilevelTask, theta: Tensor, alpha: float, steps: int = 1) -> Tensor:
    """``L^val_T(phi_K(theta))``: the query loss after ``steps`` inner SGD steps on the support loss."""
    return task.query_loss(inner_trajectory(task.support_loss, theta, alpha, steps)[-1])


def meta_gradient_autograd(task: BilevelTask, theta: Tensor, alpha: float, steps: int = 1) -> Tensor:
    """The exact meta-gradient by automatic differentiation through the unrolled inner loop."""
    return grad(lambda t: meta_objective(task, t, alpha, steps))(theta)


def mse(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean squared error written with plain ops (``F.mse_loss`` fails under forward-over-reverse
    ``jvp(grad(...))`` in this torch version: "ZeroTensors are immutable")."""
    return ((prediction - target) ** 2).mean()


_JVP_READY = False


def hvp(f: LossFn, x: Tensor, v: Tensor) -> Tensor:
    """Hessian-vector product ``(nabla^2 f(x)) v`` by forward-over-reverse (``jvp`` of ``grad``)."""
    global _JVP_READY
    if not _JVP_READY:  # torch's first jvp loads its decompositions via the deprecated torch.jit.script
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
            out = jvp(grad(f), (x,), (v,))[1]
        _JVP_READY = True
        return out
    return jvp(grad(f), (x,), (v,))[1]


def meta_gradient_formula(task: BilevelTask, theta: Tensor, alpha: float, steps: int = 1) -> Tensor:
    """The exact meta-gradient from the explicit formula

    ``prod_{k=0}^{K-1} (I - alpha H_k) . grad L^val(phi_K)`` with ``H_k = nabla^2 L^tr(phi_k)``
    (the factor for ``k = K-1`` is applied first), computed with Hessian-vector products only."""
    path = inner_trajectory(task.support_loss, theta.detach(), alpha, steps)
    v = grad(task.query_loss)(path[-1])
    for phi_k in reversed(path[:-1]):
        v = v - alpha * hvp(task.support_loss, phi_k, v)
    return v


def first_order_meta_gradient(task: BilevelTask, theta: Tensor, alpha: float, steps: int = 1) -> Tensor:
    """First-order MAML: drop every Hessian, i.e. ``grad L^val`` evaluated at ``phi_K``."""
    phi = inner_trajectory(task.support_loss, theta.detach(), alpha, steps)[-1]
    return grad(task.query_loss)(phi)


def mean_over_tasks(fn: Callable[..., Tensor], tasks: Sequence[BilevelTask], theta: Tensor, *args, **kwargs) -> Tensor:
    """``(1/N) sum_i fn(task_i, theta, ...)``: the meta-batch average of any per-task quantity."""
    return torch.stack([fn(task, theta, *args, **kwargs) for task in tasks]).mean(0)


def finite_difference_gradient(
    f: LossFn, theta: Tensor, eps: float = 1e-6, directions: Optional[Tensor] = None
) -> Tensor:
    """Central finite differences of a scalar ``f``.

    Without ``directions``: the full gradient (``2 P`` evaluations). With ``directions`` ``[D, P]``:
    the directional derivatives ``grad f . d`` (``2 D`` evaluations), for large ``P``."""
    theta = theta.detach()
    basis = torch.eye(theta.numel(), dtype=theta.dtype, device=theta.device) if directions is None else directions
    out = []
    for d in basis:
        d = d.reshape(theta.shape)
        out.append((f(theta + eps * d) - f(theta - eps * d)) / (2 * eps))
    return torch.stack(out)


def relative_error(a: Tensor, b: Tensor) -> float:
    """``||a - b|| / max(||b||, tiny)``."""
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


def first_order_relative_error(
    tasks: Sequence[BilevelTask], theta: Tensor, alphas: Sequence[float], steps: int = 1
) -> Tensor:
    """``||exact - first_order|| / ||exact||`` of the meta-batch meta-gradient, one value per ``alpha``."""
    errors = []
    for alpha in alphas:
        exact = mean_over_tasks(meta_gradient_formula, tasks, theta, alpha, steps)
        first = mean_over_tasks(first_order_meta_gradient, tasks, theta, alpha, steps)
        errors.append(relative_error(first, exact))
    return torch.tensor(errors, dtype=torch.float64)


# --------------------------------------------------------------------------------------------------
# The article's rule (= joint multi-task training) and Reptile
# --------------------------------------------------------------------------------------------------


def article_update_direction(losses: Sequence[LossFn], theta: Tensor, alpha: float) -> Tensor:
    """The article's section-4 "MAML update", literally: ``g_i = grad L_i(theta)``, ``theta_i = theta -
    alpha g_i`` (computed, then never used), return ``g = (1/N) sum_i g_i``. It does not depend on alpha."""
    gs = []
    for loss in losses:
        g_i = grad(loss)(theta)
        _theta_i = theta - alpha * g_i  # the article builds theta_i but its g never looks at it
        gs.append(g_i)
    return torch.stack(gs).mean(0)


def joint_training_loss(losses: Sequence[LossFn], theta: Tensor) -> Tensor:
    """``(1/N) sum_i L_i(theta)``: ordinary multi-task training, no adaptation."""
    return torch.stack([loss(theta) for loss in losses]).mean()


def joint_training_gradient(losses: Sequence[LossFn], theta: Tensor) -> Tensor:
    """``grad (1/N) sum_i L_i(theta)``."""
    return grad(lambda t: joint_training_loss(losses, t))(theta)


def reptile_displacement(minibatch_losses: Sequence[LossFn], theta: Tensor, alpha: float) -> Tensor:
    """``phi - theta`` after one SGD step of size ``alpha`` on each mini-batch loss in turn (Reptile's
    inner loop); Reptile's outer update is ``theta <- theta + epsilon (phi - theta)``."""
    phi = theta
    for loss in minibatch_losses:
        phi = phi - alpha * grad(loss)(phi)
    return phi - theta


def reptile_taylor_two_steps(loss_a: LossFn, loss_b: LossFn, theta: Tensor, alpha: float) -> Tensor:
    """Second-order Taylor prediction of ``phi - theta`` for two steps (A then B), Nichol et al. (2018):
    ``-alpha (g_A + g_B) + alpha^2 H_B g_A``, all at ``theta``; the error is ``O(alpha^3)``."""
    g_a, g_b = grad(loss_a)(theta), grad(loss_b)(theta)
    return -alpha * (g_a + g_b) + alpha**2 * hvp(loss_b, theta, g_a)


def gradient_alignment_gradient(loss_a: LossFn, loss_b: LossFn, theta: Tensor) -> Tensor:
    """``grad_theta (g_A . g_B) = H_A g_B + H_B g_A``: Reptile's (and MAML's) second-order term.

    Averaged over the order of the two mini-batches, ``E[phi - theta] = -alpha grad (L_A + L_B)
    + (alpha^2 / 2) grad (g_A . g_B) + O(alpha^3)``: moving along it also *increases* the inner product
    of the two mini-batch gradients, so one step on one batch helps the other."""
    return grad(lambda t: torch.dot(grad(loss_a)(t).flatten(), grad(loss_b)(t).flatten()))(theta)


# --------------------------------------------------------------------------------------------------
# Problems: a 2-D toy with two quadratic tasks, and sinusoid regression with a real network
# --------------------------------------------------------------------------------------------------


def quadratic_loss(center: Tensor, curvature: Tensor) -> LossFn:
    """``L(theta) = 1/2 (theta - c)^T A (theta - c)``."""

    def loss(theta: Tensor) -> Tensor:
        d = theta - center
        return 0.5 * d @ (curvature @ d)

    return loss


def toy_tasks(dtype: torch.dtype = torch.float64) -> list[BilevelTask]:
    """Two tasks in R^2, each steep (curvature 2.5) in one direction and flat (0.25) in the orthogonal
    one, the steep directions of the two tasks at right angles; each query optimum sits near its
    support optimum (same task, other data). With ``alpha ~ 1/2.5`` one inner step solves each task's
    steep direction, so MAML's best ``theta`` differs clearly from joint training's."""

    def rotated(angle: float, eigs: tuple[float, float]) -> Tensor:
        c, s = math.cos(angle), math.sin(angle)
        r = torch.tensor([[c, -s], [s, c]], dtype=dtype)
        return r @ torch.diag(torch.tensor(eigs, dtype=dtype)) @ r.T

    a1, a2 = rotated(0.3, (2.5, 0.25)), rotated(0.3 + math.pi / 2, (2.5, 0.25))
    t = lambda *v: torch.tensor(v, dtype=dtype)  # noqa: E731
    return [
        BilevelTask(quadratic_loss(t(2.5, -0.5), a1), quadratic_loss(t(2.7, -0.3), a1)),
        BilevelTask(quadratic_loss(t(-1.5, 2.5), a2), quadratic_loss(t(-1.7, 2.7), a2)),
    ]


def quadratic_minimiser(f: LossFn, theta: Tensor) -> Tensor:
    """The exact minimiser of a (convex) quadratic ``f``: one Newton step from any ``theta``."""
    return theta - torch.linalg.solve(torch.func.hessian(f)(theta), grad(f)(theta))


def flatten_parameters(model: nn.Module) -> tuple[Tensor, Callable[[Tensor], dict[str, Tensor]]]:
    """The model's parameters as one detached flat vector, and the map back to a ``{name: tensor}`` dict
    (for ``torch.func.functional_call``)."""
    names, shapes, sizes = [], [], []
    for name, p in model.named_parameters():
        names.append(name)
        shapes.append(p.shape)
        sizes.append(p.numel())
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def unflatten(vector: Tensor) -> dict[str, Tensor]:
        return {n: v.reshape(s) for n, v, s in zip(names, torch.split(vector, sizes), shapes)}

    return flat, unflatten


def regression_tasks(model: nn.Module, batch) -> list[BilevelTask]:
    """The tasks of a regression ``TaskBatch`` as :class:`BilevelTask` s of the flat parameter vector
    (support MSE inside, query MSE outside)."""
    _, unflatten = flatten_parameters(model)

    def loss(x: Tensor, y: Tensor) -> LossFn:
        return lambda theta: mse(functional_call(model, unflatten(theta), (x,)), y)

    return [
        BilevelTask(loss(batch.support_x[i], batch.support_y[i]), loss(batch.query_x[i], batch.query_y[i]))
        for i in range(batch.num_tasks)
    ]


def mean_adaptation_loss(
    model: nn.Module,
    batch,
    alpha: float,
    max_steps: int,
    params: Optional[Mapping[str, Tensor]] = None,
) -> Tensor:
    """Mean query MSE over the batch's tasks after ``0..max_steps`` SGD steps (rate ``alpha``) on each
    task's support set from ``params`` (default: the model's own): the MAML learner's ``adaptation_curve``
    (vectorised over tasks). Returns ``[max_steps + 1]``."""
    learner = make_learner("maml", model, inner_lr=alpha)
    return learner.adaptation_curve(batch, max_steps, params=params)["query_loss"].mean(0)


def adapted_prediction(
    model: nn.Module, support_x: Tensor, support_y: Tensor, x: Tensor, alpha: float, steps: int
) -> Tensor:
    """Predictions at ``x`` after ``steps`` SGD steps on one task's support set (for plots)."""
    learner = make_learner("maml", model, inner_lr=alpha)
    state = learner.adapt((support_x[None], support_y[None]), steps=steps)
    return learner.predict(state, x[None])[0]


def meta_train(
    learner: nn.Module,
    sample: Callable[[torch.Generator], object],
    iterations: int,
    outer_lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
    desc: str = "meta-train",
    num_threads: Optional[int] = 1,
) -> list[float]:
    """The plain outer loop: Adam on ``learner(batch).loss`` for ``iterations`` meta-batches drawn by
    ``sample(generator)``. Returns the meta-loss history. Used by chapter 04's article-vs-MAML run.

    ``num_threads`` sets torch's CPU intra-op threads for the loop (restored afterwards): for the tiny
    sinusoid network extra threads only add synchronisation overhead (about 3x slower on a busy 2-core
    machine); ``None`` leaves the setting alone. The loop is ``mlcourse.train.Trainer`` (Reptile's history is its
    query loss, not its surrogate)."""
    with torch_threads(num_threads):
        return _meta_train_loop(learner, sample, iterations, outer_lr, seed, progress, desc)


def _meta_train_loop(learner, sample, iterations, outer_lr, seed, progress, desc) -> list[float]:
    generator = torch.Generator().manual_seed(seed)
    return Trainer(learner, outer_lr=outer_lr).run(lambda: sample(generator), iterations, progress=progress, desc=desc)


# --------------------------------------------------------------------------------------------------
# Widget 1: the 2-D toy landscape
# --------------------------------------------------------------------------------------------------

TOY_THETA0 = (-3.0, -2.0)


def outer_trajectory(
    tasks: Sequence[BilevelTask],
    theta0: Tensor,
    alpha: float,
    beta: float,
    inner_steps: int,
    outer_steps: int,
    rule: str = "maml",
) -> Tensor:
    """``outer_steps`` plain gradient steps of size ``beta`` on ``theta`` with the direction ``rule``:
    ``"maml"`` (exact meta-gradient), ``"fomaml"`` (first order) or ``"article"`` (joint training on the
    support losses, as ``make_learner("article")`` does). Returns the points ``[outer_steps + 1, P]``."""
    directions = {
        "maml": lambda th: mean_over_tasks(meta_gradient_formula, tasks, th, alpha, inner_steps),
        "fomaml": lambda th: mean_over_tasks(first_order_meta_gradient, tasks, th, alpha, inner_steps),
        "article": lambda th: article_update_direction([t.support_loss for t in tasks], th, alpha),
    }
    if rule not in directions:
        raise ValueError(f"rule={rule!r}; allowed: {sorted(directions)}")
    points = [theta0]
    for _ in range(outer_steps):
        points.append(points[-1] - beta * directions[rule](points[-1]))
    return torch.stack(points)


def _landscape_grid() -> tuple[Tensor, Tensor, Tensor]:
    """The toy landscape's x and y ticks and the flattened grid of points between them."""
    xs = torch.linspace(-4, 4, 81, dtype=torch.float64)
    ys = torch.linspace(-3, 4, 71, dtype=torch.float64)
    return xs, ys, torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)


def _draw_support_panel(ax, tasks, th: Tensor, alpha: float, inner_steps: int) -> None:
    """Each task's support-loss contours and inner steps to its ``phi_T``, and the three update directions at
    ``th`` (exact and first-order meta-gradient, the article's rule), negated: the descent directions."""
    xs, ys, grid = _landscape_grid()
    colors = ["tab:blue", "tab:orange"]
    for i, task in enumerate(tasks):
        z = vmap(task.support_loss)(grid).reshape(len(ys), len(xs))
        ax.contour(xs, ys, z, levels=[0.1, 0.5, 1.5, 3, 6, 10], colors=colors[i], alpha=0.5, linewidths=1)
        path = torch.stack(inner_trajectory(task.support_loss, th, alpha, inner_steps))
        ax.plot(path[:, 0], path[:, 1], "o-", color=colors[i], ms=3, label=f"inner steps, task {i + 1}")
        ax.plot(*path[-1], "s", color=colors[i], ms=8)
        ax.annotate(rf"$\phi_{i + 1}$", path[-1].tolist(), textcoords="offset points", xytext=(6, 4), color=colors[i])
    exact = mean_over_tasks(meta_gradient_formula, tasks, th, alpha, inner_steps)
    first = mean_over_tasks(first_order_meta_gradient, tasks, th, alpha, inner_steps)
    article = article_update_direction([t.support_loss for t in tasks], th, alpha)
    scale = 1.5 / max(float(exact.norm()), float(first.norm()), float(article.norm()), 1e-9)
    for vec, color, label in [
        (exact, "black", "- exact meta-gradient"),
        (first, "tab:red", "- first-order meta-gradient"),
        (article, "tab:green", "- article's rule (joint training)"),
    ]:
        ax.annotate(
            "", xy=(th - scale * vec).tolist(), xytext=th.tolist(), arrowprops=dict(arrowstyle="->", color=color, lw=2)
        )
        ax.plot([], [], color=color, lw=2, label=label)
    ax.plot(*th, "k*", ms=14, label=r"$\theta$")
    ax.set_title(
        rf"support losses; $\alpha$={alpha:.3g}, {inner_steps} inner step(s); "
        rf"rel. first-order error {relative_error(first, exact):.2f}",
        fontsize=9,
    )


def _draw_objective_panel(ax, tasks, th: Tensor, alpha: float, beta: float, inner_steps: int, outer_steps: int) -> None:
    """The MAML objective's contours, ``outer_steps`` outer steps of MAML, first-order MAML and the article's rule
    from ``th``, and the two optima (MAML's and joint training's)."""
    xs, ys, grid = _landscape_grid()

    def maml_obj(t: Tensor) -> Tensor:
        return torch.stack([meta_objective(task, t, alpha, inner_steps) for task in tasks]).mean()

    z = vmap(maml_obj)(grid).reshape(len(ys), len(xs))
    levels = torch.quantile(z.flatten(), torch.tensor([0.01, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9], dtype=z.dtype))
    ax.contour(xs, ys, z, levels=sorted(set(levels.tolist())), cmap="viridis", linewidths=1)
    for rule, color in [("maml", "black"), ("fomaml", "tab:red"), ("article", "tab:green")]:
        pts = outer_trajectory(tasks, th, alpha, beta, inner_steps, outer_steps, rule)
        final = float(maml_obj(pts[-1]))
        ax.plot(pts[:, 0], pts[:, 1], "o-", color=color, ms=3, label=f"{rule}: MAML objective {final:.3f}")
    ax.plot(*th, "k*", ms=14)
    best = quadratic_minimiser(maml_obj, th)
    joint = quadratic_minimiser(lambda t: joint_training_loss([task.support_loss for task in tasks], t), th)
    ax.plot(*best, "P", color="black", ms=11, label=f"MAML optimum ({float(maml_obj(best)):.3f})")
    ax.plot(*joint, "X", color="tab:green", ms=11, label=f"joint-training optimum ({float(maml_obj(joint)):.3f})")
    ax.set_title(
        rf"MAML objective mean$_T\, L^{{val}}_T(\phi_T(\theta))$; "
        rf"{outer_steps} outer steps, $\beta$={beta:.3g}",
        fontsize=9,
    )


def draw_toy_landscape(
    alpha: float = 0.35,
    beta: float = 0.8,
    inner_steps: int = 1,
    outer_steps: int = 10,
    theta: Sequence[float] = TOY_THETA0,
    fig=None,
):
    """Left: each task's support-loss contours, ``theta``, the inner steps to each ``phi_T``, and the
    exact and first-order meta-gradients (negated: the descent directions). Right: the MAML objective's
    contours with ``outer_steps`` outer steps of size ``beta`` for MAML, first-order MAML and the article's
    rule. Returns the figure."""
    import matplotlib.pyplot as plt

    tasks = toy_tasks()
    th = torch.tensor(theta, dtype=torch.float64)
    if fig is None:
        fig = plt.figure(figsize=(12, 6.4))
    fig.clear()
    ax1, ax2 = fig.subplots(1, 2)
    _draw_support_panel(ax1, tasks, th, alpha, inner_steps)
    _draw_objective_panel(ax2, tasks, th, alpha, beta, inner_steps, outer_steps)
    for ax in (ax1, ax2):
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=2)
        ax.set_xlim(-4, 4)
        ax.set_ylim(-3, 4)
        ax.set_aspect("equal")
    fig.tight_layout()
    return fig


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    return get_ipython() is not None


def _live_figure(controls: dict, draw: Callable[..., object]):
    """Draw ``draw(**values)`` now as an ordinary cell output (``mlcourse.course.display.FigureOutput``: a headless
    run keeps the figure) and redraw that same output in place whenever a control changes."""

    output = FigureOutput(draw, display=_in_ipython())
    values = lambda: {name: c.value for name, c in controls.items()}  # noqa: E731
    output.update(**values())
    for c in controls.values():
        c.observe(lambda _change: output.update(**values()), names="value")
    return output


def toy_landscape_widget(alpha: float = 0.35, beta: float = 0.8, inner_steps: int = 1, outer_steps: int = 10):
    """Sliders for alpha, beta, inner steps and outer steps over :func:`draw_toy_landscape`. Draws once
    with the given values (so a headless run shows the figure), redraws it in place on every change, and
    returns the controls."""
    import ipywidgets as w

    controls = dict(
        alpha=w.FloatSlider(
            value=alpha, min=0.0, max=1.0, step=0.01, description="α (inner lr)", continuous_update=False
        ),
        beta=w.FloatSlider(
            value=beta, min=0.05, max=1.0, step=0.05, description="β (outer lr)", continuous_update=False
        ),
        inner_steps=w.IntSlider(value=inner_steps, min=0, max=5, description="inner steps", continuous_update=False),
        outer_steps=w.IntSlider(value=outer_steps, min=0, max=15, description="outer steps", continuous_update=False),
    )
    _live_figure(controls, draw_toy_landscape)
    return w.VBox([w.HBox(list(controls.values())[:2]), w.HBox(list(controls.values())[2:])])


# --------------------------------------------------------------------------------------------------
# Widget 2: MSE vs adaptation steps for trained sinusoid models
# --------------------------------------------------------------------------------------------------


def draw_adaptation(
    models: Mapping[str, nn.Module],
    alpha: float = 0.01,
    k_shot: int = 10,
    max_steps: int = 10,
    num_tasks: int = 200,
    seed: int = 2024,
    fig=None,
):
    """Left: mean query MSE on ``num_tasks`` held-out sinusoid tasks vs SGD adaptation steps (rate
    ``alpha``, ``k_shot`` support points) for each model. Right: one task's fit after ``max_steps`` steps.
    Returns the figure."""
    import matplotlib.pyplot as plt

    first = next(iter(models.values()))
    device = next(first.parameters()).device
    tasks = SinusoidTasks()
    batch = tasks.sample(num_tasks, k_shot, 100, generator=torch.Generator().manual_seed(seed), device=device)
    if fig is None:
        fig = plt.figure(figsize=(12, 5.2))
    fig.clear()
    ax1, ax2 = fig.subplots(1, 2)
    x = torch.linspace(-5, 5, 200, device=device).unsqueeze(-1)
    one = batch.task(0)
    if one.task_params is not None:
        amp, phase = one.task_params[0, 0], one.task_params[0, 1]
        ax2.plot(x.squeeze().cpu(), (amp * torch.sin(x - phase)).squeeze().cpu(), "k--", lw=1, label="true function")
    ax2.plot(one.support_x[0].squeeze().cpu(), one.support_y[0].squeeze().cpu(), "k^", label=f"{k_shot} support points")
    for name, model in models.items():
        curve = mean_adaptation_loss(model, batch, alpha, max_steps).cpu()
        ax1.plot(range(max_steps + 1), curve, "o-", ms=3, label=f"{name} (after {max_steps}: {curve[-1]:.3f})")
        pred = adapted_prediction(model, one.support_x[0], one.support_y[0], x, alpha, max_steps)
        ax2.plot(x.squeeze().cpu(), pred.squeeze().cpu(), label=f"{name}, {max_steps} steps")
    ax1.set_xlabel("adaptation steps (SGD on the support set)")
    ax1.set_ylabel(f"query MSE, mean of {num_tasks} held-out tasks")
    ax1.set_yscale("log")
    ax1.set_title(rf"$\alpha$={alpha:.3g}, K={k_shot}", fontsize=9)
    ax1.legend(fontsize=8, loc="best", framealpha=0.7)
    ax2.set_title("one held-out task", fontsize=9)
    ax2.legend(
        fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False
    )  # below: hides no curve
    fig.tight_layout()
    return fig


def adaptation_widget(
    models: Mapping[str, nn.Module], alpha: float = 0.01, k_shot: int = 10, max_steps: int = 10, num_tasks: int = 200
):
    """Sliders for alpha and K (shots) over :func:`draw_adaptation`: re-adapts the trained models live.
    Draws once with the given values, redraws in place on every change, and returns the controls."""
    import ipywidgets as w

    controls = dict(
        alpha=w.FloatLogSlider(
            value=alpha, base=10, min=-3, max=-0.5, step=0.1, description="α (adapt lr)", continuous_update=False
        ),
        k_shot=w.IntSlider(value=k_shot, min=1, max=40, description="K (shots)", continuous_update=False),
        max_steps=w.IntSlider(value=max_steps, min=1, max=30, description="steps", continuous_update=False),
    )
    _live_figure(controls, lambda **kw: draw_adaptation(models, num_tasks=num_tasks, **kw))
    return w.HBox(list(controls.values()))
