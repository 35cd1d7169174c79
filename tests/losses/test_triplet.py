"""Triplet loss and its mining rules on small labelled batches, against direct computations."""

import numpy as np
import pytest
import torch

from physioclr_ext.losses.triplet import mine_triplets, same_label_matrix, squared_distances, triplet_loss

# 1-D points: class 0 at 0, 1, 3; class 1 at 1.5, 6 (squared distances are easy to read)
X = torch.tensor([[0.0], [1.0], [3.0], [1.5], [6.0]])
Y = torch.tensor([0, 0, 0, 1, 1])


def test_same_label_rule_single_and_multi_label():
    assert same_label_matrix(torch.tensor([[2], [2], [0]])).tolist() == [
        [True, True, False],
        [True, True, False],
        [False, False, True],
    ]
    multi = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0]])
    same = same_label_matrix(multi)
    assert same[0, 1] and same[1, 2] and not same[0, 2]  # share >= 1 label; sharing is not transitive
    assert same[3, 4] and not same[0, 3]  # no-label rows are their own class


def test_squared_distances():
    x = torch.randn(6, 3)
    assert torch.allclose(squared_distances(x), torch.cdist(x, x) ** 2, atol=1e-5)


def test_hardest_mining_picks_farthest_positive_and_closest_negative():
    a, p, n = mine_triplets(X, Y, "hardest")
    assert a.tolist() == [0, 1, 2, 3, 4]
    assert p.tolist() == [2, 2, 0, 4, 3]
    assert n.tolist() == [3, 3, 3, 1, 2]


def test_semi_hard_mining_keeps_negatives_inside_the_margin_window():
    a, p, n = mine_triplets(X, Y, "semi-hard", margin=2.5)
    got = set(zip(a.tolist(), p.tolist(), n.tolist()))
    # anchor 0: d(0,1)=1 -> negatives d=2.25 (3), 36 (4); window (1, 3.5): 3. d(0,2)=9 -> window (9, 11.5): none
    # anchor 1: d(1,0)=1 -> d(1,3)=0.25 harder than the positive, d(1,4)=25 outside: none; d(1,2)=4: none
    # anchor 2: d(2,0)=9 -> d(2,3)=2.25 (hard), d(2,4)=9 (not > 9): none; d(2,1)=4 -> window (4, 6.5): none
    # anchor 3: d(3,4)=20.25 -> negatives 2.25, 0.25, 2.25: none; anchor 4: d(4,3)=20.25 -> d(4,1)=25, d(4,2)=9,
    #   d(4,0)=36; window (20.25, 22.75): none
    assert got == {(0, 1, 3)}
    a, p, n = mine_triplets(X, Y, "semi-hard", margin=5.0)
    got = set(zip(a.tolist(), p.tolist(), n.tolist()))
    # margin 5: (4,3) window (20.25, 25.25) -> negative 1 (25); (0,2) window (9, 14): none; (2,1) window (4, 9): none
    assert (0, 1, 3) in got and (4, 3, 1) in got
    for ai, pi, ni in got:
        d = squared_distances(X)
        assert d[ai, pi] < d[ai, ni] < d[ai, pi] + 5.0 and Y[ai] == Y[pi] != Y[ni]


def test_random_mining_picks_valid_and_varied_triplets():
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(50):
        a, p, n = mine_triplets(X, Y, "random", generator=g)
        assert a.tolist() == [0, 1, 2, 3, 4]
        assert bool((Y[a] == Y[p]).all() and (Y[a] != Y[n]).all() and (a != p).all())
        seen.add(tuple(p.tolist() + n.tolist()))
    assert len(seen) > 10


def test_anchors_without_positive_are_skipped_and_empty_batch_gives_zero():
    a, _, _ = mine_triplets(X[:4], torch.tensor([0, 0, 1, 2]), "hardest")
    assert a.tolist() == [0, 1]
    x = torch.randn(3, 2, requires_grad=True)
    loss, logs = triplet_loss(x, torch.tensor([0, 1, 2]))
    loss.backward()
    assert float(loss.detach()) == 0.0 and logs["n_triplets"] == 0 and x.grad is not None


@pytest.mark.parametrize("mining", ["random", "semi-hard", "hardest"])
def test_loss_matches_a_direct_computation(mining):
    g = torch.Generator().manual_seed(1)
    x = torch.nn.functional.normalize(torch.randn(12, 4, generator=g), dim=1)
    y = torch.randint(3, (12,), generator=g)
    a, p, n = mine_triplets(x, y, mining, 1.0, torch.Generator().manual_seed(5))
    loss, logs = triplet_loss(x, y, 1.0, mining, torch.Generator().manual_seed(5))
    xn = x.numpy()
    direct = np.mean(
        [
            max(0.0, ((xn[i] - xn[j]) ** 2).sum() - ((xn[i] - xn[k]) ** 2).sum() + 1.0)
            for i, j, k in zip(a.tolist(), p.tolist(), n.tolist())
        ]
    )
    assert np.isclose(float(loss), direct, atol=1e-6) and logs["n_triplets"] == len(a)


def test_loss_falls_when_training_embeddings():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(4).repeat(8)
    x = torch.randn(32, 8, generator=g, requires_grad=True)

    def batch_hard() -> float:
        return float(triplet_loss(torch.nn.functional.normalize(x.detach(), dim=1), y, 1.0, "hardest")[0])

    before = batch_hard()
    opt = torch.optim.SGD([x], lr=1.0)
    for _ in range(100):
        loss, _ = triplet_loss(torch.nn.functional.normalize(x, dim=1), y, 1.0, "random", g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert batch_hard() < 0.5 * before, (batch_hard(), before)
