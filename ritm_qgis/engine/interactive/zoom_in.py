"""RITM's zoom-in: after the first clicks the network sees only a crop around the object.

The rules (those of RITM's evaluation, ``ZoomIn`` with its defaults):

* While a session has at most ``skip_clicks`` clicks (1) the whole image is used.
* Afterwards the object's box is the bounding box of the previous prediction
  (probability > ``prob_thresh``, 0.5) together with the positive clicks; it is grown
  about its centre by ``expansion_ratio`` (1.4) to at least ``min_crop_size`` (200) pixels
  per side, rounded to whole pixels, and clamped to the image. With an empty previous
  prediction there is no box and the whole image is used (unless skip_clicks < 0, which
  means "always crop", then the box is the whole image).
* The box in use is kept from click to click and replaced by the new one only when there is
  none yet, when a positive click falls outside it, or when the two boxes' IoU is below
  ``recompute_thresh_iou`` (0.5).
* The crop (all four input channels) is resized with bilinear interpolation (corners
  aligned) so that its longer side is ``target_size`` (400), or to (h, w) when target_size
  is a pair; clicks move with it. The network's probabilities are resized back to the box
  and pasted into an image of zeros.
* With skip_clicks <= 0, a first prediction made on the whole image whose own box covers
  less than half of the image (box IoU) is recomputed at once on the crop.
* ``first_crop`` (not RITM's; the map tool's): while there is no object box yet (the first
  click, or an empty prediction), the crop is a square of that many pixels centred on the
  positive clicks instead of the whole image, so the first click sees a building at about the
  scale the per-building models were trained on, not lost in a window of many buildings.

``first_crop_m`` and ``min_crop_m`` give those two sizes on the ground (metres), and
``min_crop_floor_m`` a ground size below which later crops never go (on a fine raster, 200 px
would show a house enlarged several times, as the first crop's old rule did); ``at_resolution``
turns them into pixels for a raster's pixel size (``ASSUMED_PIXEL_M`` when it is not known), so a
house is seen at the same scale at 0.3 m and at 1.5 m. With ``network_pixel_m`` the first crop
goes to the network at that ground resolution (``first_target`` pixels a side) instead of
``target_size``: the shipped aerial models find a whole roof from one click when they see it near
the resolution they were trained at (0.5 m), and only a disc around the click when it is enlarged.

Boxes are (rmin, rmax, cmin, cmax), inclusive pixel indices.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Sequence

import numpy as np

from ritm_qgis.engine.interactive.click_encoding import ZoomedClick, as_click

Box = tuple  # (rmin, rmax, cmin, cmax), inclusive


@dataclass(frozen=True)
class ZoomInParams:
    target_size: int | tuple = 400
    skip_clicks: int = 1
    expansion_ratio: float = 1.4
    min_crop_size: int = 200
    recompute_thresh_iou: float = 0.5
    prob_thresh: float = 0.5
    first_crop: int | None = None
    first_target: int | None = None  # network input side for the first crop (None: target_size)
    first_crop_m: float | None = None
    min_crop_m: float | None = None
    network_pixel_m: float | None = None  # the first crop is resampled to this ground size per pixel
    min_crop_floor_m: float | None = None  # later crops also cover at least this much ground

    def at_resolution(self, metres_per_pixel: float | None, max_first_crop: int | None = None) -> "ZoomInParams":
        """The pixel sizes for ``metres_per_pixel`` where sizes are given in metres (else as they are).

        ``max_first_crop``: the first crop can be at most this many pixels (a window capped below
        ``first_crop_m``); its network input then shrinks with it, so the ground resolution stays
        ``network_pixel_m``."""
        m = metres_per_pixel if metres_per_pixel and metres_per_pixel > 0 else ASSUMED_PIXEL_M
        out = self
        if self.first_crop_m:
            first_m = self.first_crop_m
            if max_first_crop and max_first_crop * m < first_m:
                first_m = max_first_crop * m
            out = replace(out, first_crop=max(16, int(round(first_m / m))))
            if self.network_pixel_m:
                out = replace(out, first_target=max(16, int(round(first_m / self.network_pixel_m))))
        if self.min_crop_m:
            out = replace(out, min_crop_size=max(16, int(round(self.min_crop_m / m))))
        if self.min_crop_floor_m:
            out = replace(out, min_crop_size=max(out.min_crop_size, int(round(self.min_crop_floor_m / m))))
        return out


ASSUMED_PIXEL_M = 0.5  # ground size of a pixel when the image carries none (SpaceNet, most orthophotos)


def bbox_from_mask(mask: np.ndarray) -> Box | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def expand_bbox(box: Box, ratio: float, min_size: float | None = None) -> Box:
    """Grow a box about its centre by ``ratio`` (per side), to at least ``min_size``."""
    rmin, rmax, cmin, cmax = box
    rc, cc = 0.5 * (rmin + rmax), 0.5 * (cmin + cmax)
    h, w = ratio * (rmax - rmin + 1), ratio * (cmax - cmin + 1)
    if min_size is not None:
        h, w = max(h, min_size), max(w, min_size)
    # Python's round (half to even), as in RITM, so crops match its evaluation exactly.
    return (int(round(rc - 0.5 * h)), int(round(rc + 0.5 * h)),
            int(round(cc - 0.5 * w)), int(round(cc + 0.5 * w)))


def clamp_bbox(box: Box, height: int, width: int) -> Box:
    return max(0, box[0]), min(height - 1, box[1]), max(0, box[2]), min(width - 1, box[3])


def _segment_iou(a0, a1, b0, b1) -> float:
    inter = max(0, min(a1, b1) - max(a0, b0) + 1)
    union = max(1e-6, max(a1, b1) - min(a0, b0) + 1)
    return inter / union


def bbox_iou(b1: Box, b2: Box) -> float:
    """RITM's box IoU: product of the row-extent and column-extent IoUs."""
    return _segment_iou(b1[0], b1[1], b2[0], b2[1]) * _segment_iou(b1[2], b1[3], b2[2], b2[3])


def object_roi(pred_mask: np.ndarray, clicks: Iterable, expansion_ratio: float,
               min_crop_size: float) -> Box | None:
    """The expanded, clamped box of the predicted object plus the positive clicks."""
    mask = np.array(pred_mask, dtype=bool, copy=True)
    for c in map(as_click, clicks):
        if c.is_positive:
            mask[int(c.row), int(c.col)] = True
    box = bbox_from_mask(mask)
    if box is None:
        return None
    box = expand_bbox(box, expansion_ratio, min_crop_size)
    return clamp_bbox(box, mask.shape[0], mask.shape[1])


def clicks_inside(box: Box, clicks: Iterable) -> bool:
    """Whether every positive click lies in the box (the far edges count as outside, as in RITM)."""
    for c in map(as_click, clicks):
        if c.is_positive and not (box[0] <= c.row < box[1] and box[2] <= c.col < box[3]):
            return False
    return True


def crop_size(box: Box, target_size) -> tuple[int, int]:
    """(height, width) of the network input for a box."""
    h, w = box[1] - box[0] + 1, box[3] - box[2] + 1
    if isinstance(target_size, (tuple, list)):
        return int(target_size[0]), int(target_size[1])
    scale = target_size / max(h, w)
    return int(round(h * scale)), int(round(w * scale))


def transform_clicks(clicks: Iterable, box: Box, out_hw: tuple[int, int]) -> list[ZoomedClick]:
    """Clicks in image pixels -> clicks in the resized crop's pixels."""
    rmin, rmax, cmin, cmax = box
    oh, ow = out_hw
    return [ZoomedClick(oh * (c.row - rmin) / (rmax - rmin + 1), ow * (c.col - cmin) / (cmax - cmin + 1),
                        c.is_positive) for c in map(as_click, clicks)]


def choose_roi(params: ZoomInParams, clicks: Sequence, prev_prob: np.ndarray | None,
               current_roi: Box | None, image_hw: tuple[int, int]) -> tuple[Box | None, bool]:
    """The box the next prediction uses, and whether it changed; (None, False) = whole image.

    ``current_roi`` is the box in use so far (None when none), ``prev_prob`` the previous
    probability map of the whole image (None before the first prediction).
    """
    if len(clicks) <= params.skip_clicks:
        return None, False
    new_roi = None
    if prev_prob is not None:
        mask = prev_prob > params.prob_thresh
        if mask.any():
            new_roi = object_roi(mask, clicks, params.expansion_ratio, params.min_crop_size)
    if new_roi is None and params.first_crop:
        new_roi = click_centred_box(clicks, params.first_crop, image_hw)
    if new_roi is None:
        if params.skip_clicks >= 0:
            return None, False
        new_roi = (0, image_hw[0] - 1, 0, image_hw[1] - 1)
    if (current_roi is None or not clicks_inside(current_roi, clicks)
            or bbox_iou(new_roi, current_roi) < params.recompute_thresh_iou):
        return new_roi, True
    return current_roi, False


def click_centred_box(clicks: Sequence, side: int, image_hw: tuple[int, int]) -> Box | None:
    """A ``side``-pixel square centred on the positive clicks' mean, shifted (not shrunk) into the image."""
    pos = [c for c in map(as_click, clicks) if c.is_positive]
    if not pos:
        return None
    h, w = image_hw
    rc = sum(c.row for c in pos) / len(pos)
    cc = sum(c.col for c in pos) / len(pos)

    def span(centre, limit):
        length = min(int(side), limit)
        start = int(round(centre - length / 2))
        start = max(0, min(start, limit - length))
        return start, start + length - 1

    r0, r1 = span(rc, h)
    c0, c1 = span(cc, w)
    return r0, r1, c0, c1


def is_first_crop(params: ZoomInParams, prev_prob: np.ndarray | None) -> bool:
    """Whether ``choose_roi`` took the click-centred first crop (no object predicted yet)."""
    if not params.first_crop:
        return False
    return prev_prob is None or not (prev_prob > params.prob_thresh).any()


def needs_recompute(params: ZoomInParams, prob: np.ndarray, roi_used: Box | None) -> bool:
    """After a whole-image prediction with skip_clicks <= 0: should it be redone on a crop?"""
    if roi_used is not None or params.skip_clicks > 0:
        return False
    mask = prob > params.prob_thresh
    if not mask.any():
        return False
    box = object_roi(mask, [], params.expansion_ratio, params.min_crop_size)
    whole = (0, prob.shape[0] - 1, 0, prob.shape[1] - 1)
    return bbox_iou(box, whole) < 0.5


def crop_resize(tensor, box: Box, out_hw: tuple[int, int], antialias: bool = False):
    """Crop a (B, C, H, W) tensor to a box and resize it bilinearly (corners aligned); ``antialias``
    averages the pixels a shrinking step skips (RITM's zoom-in does not)."""
    import torch.nn.functional as F

    rmin, rmax, cmin, cmax = box
    crop = tensor[:, :, rmin:rmax + 1, cmin:cmax + 1]
    if tuple(crop.shape[2:]) == tuple(out_hw):
        return crop
    shrinks = out_hw[0] < crop.shape[2] or out_hw[1] < crop.shape[3]
    return F.interpolate(crop, size=tuple(out_hw), mode="bilinear", align_corners=True,
                         antialias=antialias and shrinks)


def paste_back(prob, box: Box, image_hw: tuple[int, int]):
    """Resize a (B, 1, h, w) probability tensor to the box and paste it into zeros of image size."""
    import torch
    import torch.nn.functional as F

    rmin, rmax, cmin, cmax = box
    size = (rmax - rmin + 1, cmax - cmin + 1)
    if tuple(prob.shape[2:]) != size:
        prob = F.interpolate(prob, size=size, mode="bilinear", align_corners=True)
    if size == tuple(image_hw):
        return prob
    out = torch.zeros((prob.shape[0], prob.shape[1], *image_hw), dtype=prob.dtype, device=prob.device)
    out[:, :, rmin:rmax + 1, cmin:cmax + 1] = prob
    return out
