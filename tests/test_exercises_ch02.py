import torch

from mlcourse.course.exercises import ch02


def test_inner_step_matches_autograd():
    inp = ch02.inner_step_inputs()
    w = torch.tensor(inp["w"], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(inp["b"], dtype=torch.float64, requires_grad=True)
    loss = ((w * inp["x"] + b - inp["y"]) ** 2).mean()
    gw, gb = torch.autograd.grad(loss, (w, b))
    expected = (inp["w"] - inp["alpha"] * gw.item(), inp["b"] - inp["alpha"] * gb.item())
    ref = ch02.inner_step(**inp)
    assert torch.allclose(torch.tensor(ref), torch.tensor(expected))
    assert ch02.check_inner_step(expected) is True
    assert ch02.check_inner_step((0.0, 0.0)) is False
    assert ch02.check_inner_step((1.0, 2.0, 3.0)) is False  # wrong shape


def test_meta_gradient_matches_autograd_through_the_inner_step():
    inp = ch02.meta_gradient_inputs()
    a, c, alpha = inp["a"], inp["c"], inp["alpha"]
    theta = torch.tensor(inp["theta"], dtype=torch.float64, requires_grad=True)
    inner = torch.autograd.grad((a / 2 * (theta - c) ** 2).sum(), theta, create_graph=True)[0]
    # per-task inner gradients: L_t'(theta) = a_t (theta - c_t); build phi_t explicitly
    phi = theta - alpha * a * (theta - c)
    meta_loss = (a / 2 * (phi - c) ** 2).mean()
    (g,) = torch.autograd.grad(meta_loss, theta)
    assert inner.requires_grad
    assert abs(ch02.meta_gradient(**inp) - g.item()) < 1e-12
    assert ch02.check_meta_gradient(g.item()) is True
    first_order = float((a * (phi.detach() - c)).mean())
    assert ch02.check_meta_gradient(first_order) is False
