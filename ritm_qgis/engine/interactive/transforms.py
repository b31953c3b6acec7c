"""The steps between the image and the network, as objects (as RITM's ``isegm/inference/transforms``).

Each transform of one prediction step holds its own state (the box it cut, the sizes) and has

* ``forward(x, click_lists)``: the network input (B, C, h, w) and one click list per batch item
  -> the transformed input and click lists;
* ``inverse(maps)``: the network's output back towards the image, in reverse order.

``Predictor`` composes them per step (``compose``): a crop (``ZoomIn`` around the object, or
``LimitLongestSide`` for a whole-image pass on a large image; at most one), then ``Flip``. The
inverse of ``Flip`` averages logits (as RITM does); the sigmoid comes next, then the crop's
inverse pastes probabilities back into the image (zeros outside the box). So the transforms whose
``on_logits`` is True must come last in the chain; ``compose`` keeps that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ritm_qgis.engine.interactive import zoom_in as zi
from ritm_qgis.engine.interactive.click_encoding import flip_clicks

__all__ = ["Transform", "ZoomIn", "LimitLongestSide", "Flip", "compose", "run_forward", "run_inverse"]


class Transform:
    on_logits = False  # inverse() takes logits (True) or probabilities (False)

    def forward(self, x, click_lists: list) -> tuple[object, list]:
        return x, click_lists

    def inverse(self, maps):
        return maps


@dataclass(frozen=True)
class _CropResize(Transform):
    """Cut ``box`` (rmin, rmax, cmin, cmax) out of an image of ``image_hw`` and resize it to ``out_hw``."""

    box: tuple
    out_hw: tuple
    image_hw: tuple
    antialias: bool = False

    def forward(self, x, click_lists):
        x = zi.crop_resize(x, self.box, self.out_hw, self.antialias)
        return x, [zi.transform_clicks(clicks, self.box, self.out_hw) for clicks in click_lists]

    def inverse(self, prob):
        return zi.paste_back(prob, self.box, self.image_hw)


@dataclass(frozen=True)
class ZoomIn(_CropResize):
    """The zoom-in crop of this step (``zoom_in.choose_roi``); ``roi`` is the box kept for the next."""

    @property
    def roi(self) -> tuple:
        return self.box

    @classmethod
    def choose(cls, params: zi.ZoomInParams, clicks: Sequence, prev_prob: np.ndarray | None,
               current_roi: tuple | None, image_hw: tuple) -> "ZoomIn | None":
        """The step's crop, or None (the whole image)."""
        roi, _ = zi.choose_roi(params, clicks, prev_prob, current_roi, image_hw)
        if roi is None:
            return None
        if params.first_target and zi.is_first_crop(params, prev_prob):
            # a fine raster's first crop shrinks several times: without averaging, its roofs alias
            target = (params.first_target, params.first_target)
            return cls(roi, zi.crop_size(roi, target), tuple(image_hw), antialias=True)
        return cls(roi, zi.crop_size(roi, params.target_size), tuple(image_hw))


@dataclass(frozen=True)
class LimitLongestSide(_CropResize):
    """A whole-image pass resized so its longer side is at most ``max_size`` (RITM's --limit-longest-size)."""

    @classmethod
    def choose(cls, max_size: int | None, image_hw: tuple) -> "LimitLongestSide | None":
        h, w = image_hw
        if max_size is None or max(h, w) <= max_size:
            return None
        box = (0, h - 1, 0, w - 1)
        return cls(box, zi.crop_size(box, max_size), tuple(image_hw))


@dataclass(frozen=True)
class Flip(Transform):
    """The left-right mirror in the same batch; the two logit maps are averaged back."""

    on_logits = True

    def forward(self, x, click_lists):
        import torch

        width = x.shape[3]
        return torch.cat([x, torch.flip(x, dims=[3])], dim=0), list(click_lists) + [
            flip_clicks(clicks, width) for clicks in click_lists]

    def inverse(self, logits):
        import torch

        return 0.5 * (logits[:1] + torch.flip(logits[1:2], dims=[3]))


def compose(crop: _CropResize | None, flip: bool) -> list[Transform]:
    """The step's chain: the crop (if any), then the flip (if on)."""
    return [t for t in (crop, Flip() if flip else None) if t is not None]


def run_forward(transforms: Sequence[Transform], x, clicks: list) -> tuple[object, list]:
    lists = [list(clicks)]
    for t in transforms:
        x, lists = t.forward(x, lists)
    return x, lists


def run_inverse(transforms: Sequence[Transform], logits):
    """Logits of the network input -> probabilities on the image (see the module doc)."""
    import torch

    for t in reversed([t for t in transforms if t.on_logits]):
        logits = t.inverse(logits)
    prob = torch.sigmoid(logits)
    for t in reversed([t for t in transforms if not t.on_logits]):
        prob = t.inverse(prob)
    return prob
