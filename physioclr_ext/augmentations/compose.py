"""Registry, configurable pipelines and two-view sampling for contrastive training.

A pipeline is written as a list of dicts (as it comes from YAML)::

    - {name: zero_mask, p: 0.5, ratio: 0.2}
    - {name: gaussian_noise, factor: 0.05}

``name`` selects an entry of :data:`AUGMENTATIONS`, ``p`` (default 1.0) is the
per-example probability of applying it, and every other key is passed to the
augmentation as a keyword argument.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from physioclr_ext.augmentations._common import check_signal, uniform
from physioclr_ext.augmentations.crop import random_resized_crop
from physioclr_ext.augmentations.masking import dropout_mask, time_out, zero_mask
from physioclr_ext.augmentations.noise import gaussian_noise
from physioclr_ext.augmentations.temporal import permutation, time_warp

Augmentation = Callable[..., torch.Tensor]
"""``fn(x, generator, **params) -> Tensor`` mapping a ``(B, C, T)`` batch to a new one."""

AUGMENTATIONS: dict[str, Augmentation] = {
    "time_warp": time_warp,
    "permutation": permutation,
    "zero_mask": zero_mask,
    "dropout_mask": dropout_mask,
    "gaussian_noise": gaussian_noise,
    "random_resized_crop": random_resized_crop,
    "time_out": time_out,
}


def parameter_names(fn: Augmentation) -> list[str]:
    """Keyword parameters of an augmentation (everything after ``x, generator``)."""
    return list(inspect.signature(fn).parameters)[2:]


@dataclass(frozen=True)
class AugmentationStep:
    """One augmentation applied to each example with probability ``p``.

    Attributes:
        name: registry name, used in messages and ``repr``.
        fn: the augmentation function.
        p: per-example application probability in ``[0, 1]``.
        params: keyword arguments for ``fn``.
    """

    name: str
    fn: Augmentation
    p: float = 1.0
    params: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Apply to a ``(B, C, T)`` batch; returns a new ``(B, C, T)`` tensor.

        With ``p == 1`` no selection is drawn, so the result equals
        ``fn(x, generator, **params)`` for the same generator state.
        """
        if self.p >= 1.0:
            return self.fn(x, generator, **self.params)
        out = x.clone()
        if self.p <= 0.0 or x.shape[0] == 0:
            return out
        rows = uniform((x.shape[0],), generator, x.device) < self.p
        if bool(rows.any()):
            out[rows] = self.fn(x[rows], generator, **self.params)
        return out


def make_step(name: str, p: float = 1.0, **params: Any) -> AugmentationStep:
    """Build a validated :class:`AugmentationStep` from a registry name.

    Raises:
        ValueError: for an unknown name, unknown parameters or ``p`` outside ``[0, 1]``.

    Example:
        >>> make_step("zero_mask", p=0.5, ratio=0.2).name
        'zero_mask'
    """
    if name not in AUGMENTATIONS:
        valid = ", ".join(sorted(AUGMENTATIONS))
        raise ValueError(f"unknown augmentation {name!r}; valid names: {valid}")
    fn = AUGMENTATIONS[name]
    allowed = parameter_names(fn)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for augmentation {name!r}; "
            f"valid parameters: p, {', '.join(allowed)}"
        )
    try:
        p = float(p)
    except (TypeError, ValueError) as err:
        raise ValueError(f"p of augmentation {name!r} must be a number, got {p!r}") from err
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p of augmentation {name!r} must be in [0, 1], got {p!r}")
    return AugmentationStep(name=name, fn=fn, p=p, params=dict(params))


class Compose:
    """Apply augmentation steps in order, each to a random subset of the examples.

    Example:
        >>> aug = Compose.from_config([{"name": "zero_mask", "p": 0.5, "ratio": 0.2},
        ...                            {"name": "gaussian_noise", "factor": 0.05}])
        >>> aug(torch.randn(8, 12, 2500), torch.Generator().manual_seed(0)).shape
        torch.Size([8, 12, 2500])
    """

    def __init__(self, steps: Sequence[AugmentationStep] = ()) -> None:
        self.steps: list[AugmentationStep] = list(steps)

    @classmethod
    def from_config(cls, spec: Sequence[Mapping[str, Any]] | None) -> Compose:
        """Build from a list of ``{"name": ..., "p": ..., **params}`` dicts (``None`` = empty).

        Raises:
            ValueError: for a malformed entry, unknown name or unknown parameter.
        """
        steps = []
        for i, entry in enumerate(spec or ()):
            if not isinstance(entry, Mapping):
                raise ValueError(f"augmentation #{i} must be a mapping with a 'name' key, got {entry!r}")
            params = {str(k): v for k, v in entry.items()}
            if "name" not in params:
                raise ValueError(f"augmentation #{i} has no 'name'; valid names: {', '.join(sorted(AUGMENTATIONS))}")
            steps.append(make_step(str(params.pop("name")), **params))
        return cls(steps)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment a ``(B, C, T)`` batch; returns a new tensor of the same shape."""
        check_signal(x)
        out = x
        for step in self.steps:
            out = step(out, generator)
        return x.clone() if out is x else out

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        inner = ", ".join(f"{s.name}(p={s.p}, {dict(s.params)})" for s in self.steps)
        return f"Compose([{inner}])"


class TwoViews:
    """Two independently augmented views of one batch (SimCLR-style positive pairs).

    Example:
        >>> views = TwoViews(Compose.from_config([{"name": "time_out"}]))
        >>> v1, v2 = views(torch.randn(4, 12, 2500), torch.Generator().manual_seed(0))
        >>> v1.shape == v2.shape
        True
    """

    def __init__(self, compose: Callable[[torch.Tensor, torch.Generator], torch.Tensor]) -> None:
        self.compose = compose

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(view1, view2)``, both ``(B, C, T)``; the second continues the generator's stream."""
        return self.compose(x, generator), self.compose(x, generator)

    def __repr__(self) -> str:
        return f"TwoViews({self.compose!r})"
