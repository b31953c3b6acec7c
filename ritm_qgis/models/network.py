"""The interactive segmentation network: RITM's ``HRNetModel`` in its "conv1s" configuration.

Inputs (same contract as RITM's ``ISModel.forward``):

* ``image``: ``(B, 4, H, W)`` float, RGB in ``[0, 1]`` followed by the previous mask
  (``(B, 3, H, W)`` when the model was built with ``with_prev_mask=False``);
* ``points``: ``(B, 2N, 3)`` float rows ``(y, x, click_index)``: the first ``N`` rows are the
  positive clicks, the last ``N`` the negative ones, unused rows are ``-1``.

Clicks become two binary disk maps (positive, negative) of radius ``norm_radius`` pixels; with
the previous mask they form 3 channels that a small conv branch (``maps_transform``) turns into
64 channels at half resolution, added to the HRNet stem after its first convolution. The output
is ``{'instances': logits, 'instances_aux': aux_logits}``, both ``(B, 1, H, W)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .hrnet import HighResolutionNet

__all__ = ["ModelConfig", "RitmHRNet", "disk_maps", "disk_maps_local", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of one network variant (RITM's ``HRNetModel`` arguments)."""

    width: int
    ocr_width: int
    small: bool = False
    with_prev_mask: bool = True
    with_aux_output: bool = True
    norm_radius: float = 5
    use_leaky_relu: bool = True

    def as_dict(self) -> dict:
        return asdict(self)


def disk_maps(points: torch.Tensor, height: int, width: int, radius: float) -> torch.Tensor:
    """Rasterise clicks as disks: ``(B, 2N, 3)`` points -> ``(B, 2, H, W)`` {0, 1} maps.

    Channel 0 holds the positive clicks (first ``N`` rows), channel 1 the negative ones. A row
    is ignored when both its ``y`` and ``x`` are negative (RITM's padding convention). A pixel is
    inside a disk when its squared distance to the click is at most ``radius ** 2``.
    """
    b, rows, _ = points.shape
    n = rows // 2
    pts = points[..., :2].float()
    valid = pts.max(dim=-1).values >= 0  # (B, 2N)
    ys = torch.arange(height, dtype=torch.float32, device=points.device)
    xs = torch.arange(width, dtype=torch.float32, device=points.device)
    dy2 = (ys.view(1, 1, height, 1) - pts[..., 0].view(b, rows, 1, 1)) ** 2
    dx2 = (xs.view(1, 1, 1, width) - pts[..., 1].view(b, rows, 1, 1)) ** 2
    inside = ((dy2 + dx2) <= float(radius) ** 2) & valid.view(b, rows, 1, 1)
    inside = inside.view(b, 2, n, height, width).any(dim=2)
    return inside.to(torch.float32)


def disk_maps_local(points: torch.Tensor, height: int, width: int, radius: float) -> torch.Tensor:
    """``disk_maps``, bit for bit, evaluating the distance test only on a square window around
    each click instead of on the whole image for every click (20 clicks on a 400x400 crop: 3.2
    million tests per image against about 8000). Same float32 arithmetic per pixel; the window
    has a pixel of margin on each side so that a rounding at the disk's edge cannot fall outside it.
    """
    import math

    b, rows, _ = points.shape
    out = torch.zeros(b, 2, height, width, dtype=torch.float32, device=points.device)
    if rows == 0:
        return out
    n = rows // 2
    pts = points[..., :2].float()
    valid = pts.max(dim=-1).values >= 0  # (B, 2N)
    span = int(math.floor(2 * float(radius))) + 4
    offsets = torch.arange(span, dtype=torch.float32, device=points.device)
    py, px = pts[..., 0].view(b, rows, 1, 1), pts[..., 1].view(b, rows, 1, 1)
    ys = torch.ceil(py - float(radius)) - 1 + offsets.view(1, 1, span, 1)  # whole numbers, exact in float32
    xs = torch.ceil(px - float(radius)) - 1 + offsets.view(1, 1, 1, span)
    inside = ((ys - py) ** 2 + (xs - px) ** 2) <= float(radius) ** 2
    inside &= valid.view(b, rows, 1, 1) & (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
    bi, ri, yi, xi = inside.nonzero(as_tuple=True)
    out[bi, ri // max(n, 1), ys[bi, ri, yi, 0].long(), xs[bi, ri, 0, xi].long()] = 1.0
    return out


class ScaleLayer(nn.Module):
    """Multiplies by ``|scale|`` (a learnt scalar); RITM initialises it to 0.05."""

    def __init__(self, init_value: float = 0.05):
        super().__init__()
        self.scale = nn.Parameter(torch.full((1,), float(init_value)))

    def forward(self, x):
        return x * self.scale.abs()


class RitmHRNet(nn.Module):
    """HRNet+OCR interactive segmentation model, state-dict compatible with RITM."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        maps_channels = 2 + (1 if config.with_prev_mask else 0)
        activation = nn.LeakyReLU(0.2) if config.use_leaky_relu else nn.ReLU(inplace=True)
        self.maps_transform = nn.Sequential(
            nn.Conv2d(maps_channels, 16, kernel_size=1),
            activation,
            nn.Conv2d(16, HighResolutionNet.STEM_CHANNELS, kernel_size=3, stride=2, padding=1),
            ScaleLayer(0.05),
        )
        self.feature_extractor = HighResolutionNet(
            width=config.width, ocr_width=config.ocr_width, small=config.small
        )
        # The optimised inference modes rasterise the clicks with ``disk_maps_local`` (same maps);
        # 'none' keeps RITM's whole-image computation, so that it stays RITM's cost as well.
        self.local_disks = False
        # Normalisation constants are buffers that follow .to(device) but are not saved.
        self.register_buffer("mean", torch.empty(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.empty(1, 3, 1, 1), persistent=False)
        self.reset_constants()

    def reset_constants(self) -> None:
        """(Re)fill the non-saved buffers, e.g. after building on the 'meta' device."""
        device = self.mean.device if self.mean.device.type != "meta" else torch.device("cpu")
        self.mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)

    @property
    def input_channels(self) -> int:
        return 4 if self.config.with_prev_mask else 3

    def click_features(self, image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """The 3 (or 2) channel map fed to ``maps_transform``: previous mask, pos, neg disks."""
        h, w = image.shape[-2:]
        rasterise = disk_maps_local if getattr(self, "local_disks", False) else disk_maps
        maps = rasterise(points, h, w, self.config.norm_radius).to(image.dtype)
        if self.config.with_prev_mask:
            maps = torch.cat([image[:, 3:4], maps], dim=1)
        return maps

    def forward(self, image: torch.Tensor, points: torch.Tensor) -> dict:
        if image.dim() != 4 or image.shape[1] != self.input_channels:
            raise ValueError(
                f"expected image of shape (B, {self.input_channels}, H, W), got {tuple(image.shape)}"
            )
        rgb = (image[:, :3] - self.mean) / self.std
        extra = self.maps_transform(self.click_features(image, points))
        logits, aux = self.feature_extractor(rgb, extra)
        size = image.shape[-2:]
        out = {"instances": F.interpolate(logits, size=size, mode="bilinear", align_corners=True)}
        if self.config.with_aux_output:
            aux = F.interpolate(aux, size=size, mode="bilinear", align_corners=True)
        out["instances_aux"] = aux
        return out
