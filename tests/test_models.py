"""Conv4 / SinusoidMLP shapes, the plain-op batch normalisation, the attention block under vmap."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mlcourse.models import BatchNormPlain, ChannelSpatialAttention, Conv4, SinusoidMLP

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    "kw, feature_dim",
    [
        ({}, 8),
        ({"in_channels": 3, "image_size": 32}, 32),
        ({"in_channels": 3, "image_size": 84}, 200),
        ({"attention": True}, 8),
        ({"norm": "none"}, 8),
        ({"image_size": 8, "hidden": 4}, 4),
        ({"image_size": 14, "hidden": 4}, 4),
    ],
)
def test_conv4_shapes(kw, feature_dim) -> None:
    """Final map 1x1 at 28 px, 2x2 at 32 px, 5x5 at 84 px (pooling stops at 1x1); defaults hidden=64 -> 64 features."""
    assert Conv4().feature_dim == 64 and Conv4(in_channels=3, image_size=84).feature_dim == 1600
    model = Conv4(n_out=5, **{"hidden": 8, **kw})
    c, s = kw.get("in_channels", 1), kw.get("image_size", 28)
    x = torch.rand(6, c, s, s)
    assert model.feature_dim == feature_dim and model.features(x).shape == (6, feature_dim)
    assert model(x).shape == (6, 5)
    assert torch.allclose(model(x), model.head(model.features(x)))


def test_conv4_layout_and_errors() -> None:
    model = Conv4(hidden=8, attention=True)
    assert isinstance(model.body[3], ChannelSpatialAttention)  # after block 3
    assert sum(isinstance(m, BatchNormPlain) for m in model.modules()) == 4
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in Conv4(norm="torch_batchnorm").modules()) == 4
    assert not list(model.buffers())  # no running statistics
    with pytest.raises(ValueError, match="allowed: batch, none, torch_batchnorm"):
        Conv4(norm="layer")


def test_batchnorm_plain_equals_training_mode_batch_norm() -> None:
    torch.manual_seed(0)
    x = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    norm = BatchNormPlain(3).double()
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5), norm.bias.normal_()
    expected = F.batch_norm(x, None, None, norm.weight, norm.bias, training=True, eps=1e-5)
    assert torch.allclose(norm(x), expected, atol=1e-12)
    norm.eval()  # no running statistics: eval mode still uses the batch (transductive, as in MAML)
    assert torch.allclose(norm(x), expected, atol=1e-12)


def test_attention_block_second_order_under_vmap_equals_loop() -> None:
    """Hessian-vector products through the attention block: vmap over tasks == Python loop (float64)."""
    torch.manual_seed(0)
    block = ChannelSpatialAttention(4).double()
    params = dict(block.named_parameters())
    xs = torch.randn(3, 2, 4, 3, 3, dtype=torch.float64)
    v = {k: torch.randn_like(p) for k, p in params.items()}

    def loss(p, x):
        return torch.func.functional_call(block, p, (x,)).sin().sum()

    def hvp(x):  # reverse-over-reverse, as MAML's second order
        return torch.func.grad(lambda p: sum((g * v[k]).sum() for k, g in torch.func.grad(loss)(p, x).items()))(params)

    batched = torch.func.vmap(hvp)(xs)
    for t in range(3):
        single = hvp(xs[t])
        for k in params:
            assert torch.allclose(batched[k][t], single[k], atol=1e-12)


def test_sinusoid_mlp() -> None:
    model = SinusoidMLP()
    assert model(torch.zeros(7, 1)).shape == (7, 1) and model.features(torch.zeros(7, 1)).shape == (7, 40)
    assert sum(p.numel() for p in model.parameters()) == (1 * 40 + 40) + (40 * 40 + 40) + (40 + 1)
    assert len(SinusoidMLP(hidden=8, layers=3).body) == 6


def test_reference_init_matches_the_maml_authors_code():
    """Weights ~ N(0, 0.01) truncated at two standard deviations, biases 0, reproducible from a generator."""
    from mlcourse.models import SinusoidMLP

    model = SinusoidMLP().reference_init_(torch.Generator().manual_seed(0))
    weights = torch.cat([p.detach().reshape(-1) for n, p in model.named_parameters() if n.endswith("weight")])
    assert weights.abs().max() <= 0.02 and 0.007 < float(weights.std()) < 0.0095  # truncation shrinks the std to 0.0088
    assert all(float(p.detach().abs().max()) == 0 for n, p in model.named_parameters() if n.endswith("bias"))
    again = SinusoidMLP().reference_init_(torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))


def test_conv4_layers_sets_the_number_of_blocks_and_rejects_zero():
    """``layers`` (as in learn2learn's CNN4): the compile tests use two blocks; the course's runs keep four."""
    from mlcourse.models import ConvBlock

    two = Conv4(hidden=4, image_size=12, n_out=3, layers=2)
    assert sum(isinstance(m, ConvBlock) for m in two.body) == 2
    assert two.feature_dim == 4 * 3 * 3 and two(torch.zeros(2, 1, 12, 12)).shape == (2, 3)
    assert sum(isinstance(m, ConvBlock) for m in Conv4().body) == 4
    with pytest.raises(ValueError, match="layers=0"):
        Conv4(layers=0)
