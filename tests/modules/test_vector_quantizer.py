"""The vector quantiser: nearest code, straight-through gradient, EMA formula, k-means init, dead-code
re-seeding, perplexity, factorised and cosine lookups."""

import math

import pytest
import torch
import torch.nn.functional as F

from physioclr_ext.modules.vector_quantizer import VectorQuantizer, VectorQuantizerConfig, kmeans, perplexity

PLAIN = dict(code_dim=0, ema=False, kmeans_init=False, reseed_dead=False, l2_normalize=False)


def _vq(dim=2, k=3, **kw):
    return VectorQuantizer(dim, VectorQuantizerConfig(codebook_size=k, **{**PLAIN, **kw}))


def test_returns_the_nearest_code():
    vq = _vq().eval()
    codes = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-2.0, 0.5]])
    with torch.no_grad():
        vq.codebook.copy_(codes)
    z = torch.randn(50, 2, generator=torch.Generator().manual_seed(0)) * 2
    out = vq(z)
    expected = torch.cdist(z, codes).argmin(1)
    assert torch.equal(out["indices"], expected)
    assert torch.allclose(out["quantized"], codes[expected])


def test_straight_through_gradient_and_loss_terms():
    vq = _vq(beta=0.25).train()
    codes = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-2.0, 0.5]])
    with torch.no_grad():
        vq.codebook.copy_(codes)
    z = torch.tensor([[0.9, 1.2], [-0.1, 0.2]], requires_grad=True)
    out = vq(z)
    assert torch.allclose(out["quantized"], codes[[1, 0]])  # forward value is the code
    weights = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    (out["quantized"] * weights).sum().backward()
    assert torch.allclose(z.grad, weights)  # gradient copied to z unchanged
    target, z = codes[[1, 0]], z.detach()
    assert math.isclose(float(out["commitment_loss"].detach()), 0.25 * float(((z - target) ** 2).mean()), rel_tol=1e-6)
    assert math.isclose(float(out["codebook_loss"].detach()), float(((z - target) ** 2).mean()), rel_tol=1e-6)


def test_codebook_loss_moves_the_chosen_codes_only():
    vq = _vq().train()
    z = vq.codebook.detach()[:1] + 0.3
    out = vq(z)
    out["codebook_loss"].backward()
    grad = vq.codebook.grad
    assert grad[out["indices"][0]].abs().sum() > 0 and grad.abs().sum(1).gt(0).sum() == 1


def test_ema_update_matches_the_formula_on_a_hand_computed_case():
    vq = _vq(k=2, ema=True, decay=0.5, eps=0.1, beta=0.0).train()
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
        vq.ema_sum.copy_(vq.codebook)
        vq.ema_count.fill_(1.0)
    z = torch.tensor([[1.0, 0.0], [0.0, 3.0], [9.0, 9.0]])
    vq(z)
    # counts n = (2, 1), sums = ((1, 3), (9, 9)); N = 0.5 * 1 + 0.5 * n = (1.5, 1.0); m = 0.5 * e + 0.5 * sums
    n_ema = torch.tensor([1.5, 1.0])
    m = torch.tensor([[0.5, 1.5], [9.5, 9.5]])
    total = 2.5
    smoothed = (n_ema + 0.1) / (total + 2 * 0.1) * total  # (1.6, 1.1) / 2.7 * 2.5
    assert torch.allclose(vq.ema_count, n_ema)
    assert torch.allclose(vq.ema_sum, m)
    assert torch.allclose(vq.codebook, m / smoothed[:, None])
    assert torch.allclose(vq.codebook[0], torch.tensor([0.5, 1.5]) / (1.6 / 2.7 * 2.5))


def test_ema_codebook_is_not_a_parameter():
    vq = _vq(ema=True)
    assert "codebook" not in dict(vq.named_parameters()) and "codebook" in dict(vq.named_buffers())
    assert float(vq(torch.randn(4, 2))["codebook_loss"]) == 0.0


def test_kmeans_init_after_the_configured_batches():
    g = torch.Generator().manual_seed(1)
    centres = torch.tensor([[5.0, 5.0], [-5.0, 5.0], [0.0, -5.0]])
    batches = [centres[torch.randint(3, (8,), generator=g)] + 0.1 * torch.randn(8, 2, generator=g) for _ in range(2)]
    vq = _vq(k=12, kmeans_init=True, kmeans_init_batches=2, kmeans_iters=10).train()  # 8 latents < K after one
    vq(batches[0])
    assert not bool(vq.initialized)
    vq(batches[1])
    assert bool(vq.initialized)
    # every true centre has a code within the noise
    assert torch.cdist(centres, vq.codebook).min(1).values.max() < 0.5


def test_kmeans_with_fewer_points_than_codes_and_spherical():
    g = torch.Generator().manual_seed(0)
    out = kmeans(torch.randn(3, 4), 5, 3, g)
    assert out.shape == (5, 4)
    sph = kmeans(torch.randn(40, 4), 4, 3, g, normalize=True)
    assert torch.allclose(sph.norm(dim=1), torch.ones(4), atol=1e-5)


def test_dead_codes_are_reseeded_from_recent_encoder_outputs():
    vq = _vq(k=4, reseed_dead=True, usage_window=3, reseed_pool=16).train()
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[0.0, 0.0], [100.0, 100.0], [-100.0, 100.0], [100.0, -100.0]]))
    z = torch.randn(6, 2, generator=torch.Generator().manual_seed(0)) * 0.1
    dead_seen = []
    for _ in range(3):
        dead_seen.append(int(vq(z)["dead_codes"]))
    assert dead_seen == [0, 0, 3]  # codes 1..3 never used over a full window
    # the three dead codes now sit on encoder outputs, code 0 is untouched
    assert torch.equal(vq.codebook[0], torch.zeros(2))
    for c in vq.codebook[1:]:
        assert torch.isclose(torch.cdist(c[None], z), torch.tensor(0.0), atol=1e-6).any()
    # re-seeded codes get a grace window: not dead again right away
    assert int(vq(z)["dead_codes"]) == 0


def test_dead_codes_counted_without_reseeding():
    vq = _vq(k=4, reseed_dead=False, usage_window=2).train()
    z = vq.codebook.detach()[:1].repeat(5, 1)
    outs = [int(vq(z)["dead_codes"]) for _ in range(3)]
    assert outs[-1] == 3 and torch.equal(vq.born, torch.zeros(4, dtype=torch.long))


def test_perplexity_is_k_on_uniform_use_and_1_on_one_code():
    assert math.isclose(float(perplexity(torch.full((64,), 7.0))), 64.0, rel_tol=1e-5)
    assert math.isclose(float(perplexity(torch.tensor([0.0, 12.0, 0.0, 0.0]))), 1.0, rel_tol=1e-6)
    counts = torch.tensor([1.0, 3.0])
    p = counts / counts.sum()
    assert math.isclose(float(perplexity(counts)), math.exp(-(p * p.log()).sum().item()), rel_tol=1e-6)
    vq = _vq(k=4).eval()
    with torch.no_grad():
        vq.codebook.copy_(torch.eye(4, 2) * 10 + torch.tensor([[0.0, 0.0], [0.0, 0.0], [-10.0, 0.0], [0.0, -10.0]]))
    z = vq.codebook.detach().repeat(3, 1)  # each code used 3 times
    assert math.isclose(float(vq(z)["perplexity"]), 4.0, rel_tol=1e-5)


def test_factorised_cosine_lookup():
    vq = VectorQuantizer(16, VectorQuantizerConfig(codebook_size=8, code_dim=4, kmeans_init=False)).eval()
    z = torch.randn(10, 16)
    out = vq(z)
    assert out["latent"].shape == (10, 4) and out["quantized"].shape == (10, 16)
    assert torch.allclose(out["latent"].norm(dim=1), torch.ones(10), atol=1e-5)
    assert torch.allclose(vq.codebook.norm(dim=1), torch.ones(8), atol=1e-5)
    cos = F.normalize(vq.in_proj(z), dim=1) @ vq.codebook.t()
    assert torch.equal(out["indices"], cos.argmax(1))
    q, idx = vq.quantize(z)
    assert torch.equal(idx, out["indices"]) and torch.allclose(q, out["quantized"])


def test_generator_makes_training_reproducible():
    def run():
        torch.manual_seed(0)  # the projections' init (nn.Linear's own)
        vq = VectorQuantizer(8, VectorQuantizerConfig(codebook_size=8, code_dim=4, usage_window=2, seed=3))
        x = torch.randn(6, 8, generator=torch.Generator().manual_seed(1))
        for _ in range(6):
            vq(x)
        return vq.codebook.clone()

    assert torch.equal(run(), run())


@pytest.mark.parametrize("cured", [True, False])
def test_training_keeps_or_loses_the_codebook(cured):
    """On clustered latents with a moving encoder, the cured quantiser uses most codes; the plain one
    (uniform(-1/K, 1/K) codes, codebook loss, no restarts) starts with codes far from the data and uses few."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    k, dim = 16, 8
    centres = torch.randn(32, dim, generator=g) * 3 + 5
    cfg = dict(codebook_size=k, usage_window=5) if cured else dict(codebook_size=k, **PLAIN)
    vq = VectorQuantizer(dim, VectorQuantizerConfig(**cfg))
    opt = torch.optim.Adam(vq.parameters(), lr=1e-2)
    for _ in range(60):
        x = centres[torch.randint(32, (64,), generator=g)] + 0.2 * torch.randn(64, dim, generator=g)
        out = vq(x)
        loss = out["commitment_loss"] + out["codebook_loss"] + F.mse_loss(out["quantized"], x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    vq.eval()
    x = centres[torch.randint(32, (512,), generator=g)]
    ppl = float(vq(x)["perplexity"])
    assert (ppl > 0.5 * k) if cured else (ppl < 0.25 * k), ppl
