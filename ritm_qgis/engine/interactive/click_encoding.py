"""The ``points`` input of a RITM network, built from lists of clicks.

A network takes points of shape (B, 2*N, 3): for each batch item N rows for its positive
clicks then N rows for its negative ones, each row (y, x, click_index) where click_index is
the click's place in the whole sequence (0 for the first click, positive or negative), and
unused rows are (-1, -1, -1). N is the larger count of positive or negative clicks over the
batch (at least 1). ``limit`` keeps only each sequence's first ``limit`` clicks (RITM's
``net_clicks_limit``).

A click here is anything with ``row``, ``col`` and ``is_positive`` (``Click``,
``ZoomedClick``) or a ``(row, col, is_positive)`` tuple; row/col may be fractional after a
zoom-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, NamedTuple, Sequence

import numpy as np


@dataclass(frozen=True)
class Click:
    """A click on an image, in whole pixels: ``row`` down, ``col`` across."""

    row: int
    col: int
    is_positive: bool


class ZoomedClick(NamedTuple):
    """A click in the coordinates of a network input (possibly fractional)."""

    row: float
    col: float
    is_positive: bool


def as_click(click) -> ZoomedClick:
    if isinstance(click, tuple) and not hasattr(click, "row"):
        row, col, pos = click
        return ZoomedClick(float(row), float(col), bool(pos))
    return ZoomedClick(float(click.row), float(click.col), bool(click.is_positive))


def points_array(click_lists: Sequence[Iterable], limit: int | None = None) -> np.ndarray:
    """(B, 2*N, 3) float32 array of points for B click sequences (layout in the module doc)."""
    lists = [[as_click(c) for c in clicks][:limit] for clicks in click_lists]
    n_pos = [sum(c.is_positive for c in clicks) for clicks in lists]
    n_neg = [len(clicks) - p for clicks, p in zip(lists, n_pos)]
    n = max([1] + n_pos + n_neg)
    out = np.full((len(lists), 2 * n, 3), -1.0, dtype=np.float32)
    for b, clicks in enumerate(lists):
        ip, ineg = 0, n
        for index, c in enumerate(clicks):
            slot = ip if c.is_positive else ineg
            out[b, slot] = (c.row, c.col, index)
            if c.is_positive:
                ip += 1
            else:
                ineg += 1
    return out


def points_tensor(click_lists: Sequence[Iterable], device=None, limit: int | None = None):
    """``points_array`` as a float32 torch tensor on ``device``."""
    import torch

    return torch.from_numpy(points_array(click_lists, limit)).to(device)


def flip_clicks(clicks: Iterable, width: int) -> list[ZoomedClick]:
    """The clicks mirrored left-right in an image ``width`` pixels wide (x -> width - 1 - x)."""
    return [ZoomedClick(c.row, width - 1 - c.col, c.is_positive) for c in map(as_click, clicks)]
