"""HRNetV2 backbone with an OCR (object-contextual representations) head.

The module tree reproduces the parameter names of RITM's ``HighResolutionNet`` (its
``feature_extractor``) so that RITM's published checkpoints load into it unchanged; the code
itself is written for this project. Architecture, in short:

* a stem of two stride-2 3x3 convolutions (the click features are added after the first one:
  RITM's "conv1s" early fusion),
* ``layer1``: bottleneck blocks at 64 channels (x4 expansion),
* stages 2-4 with 2, 3 and 4 parallel branches of widths ``w, 2w, 4w, 8w`` made of basic blocks,
  exchanging information through "fuse" layers at the end of each module,
* the four branches upsampled to the finest one and concatenated (``15w`` channels),
* an auxiliary 1-class head (a soft object region) that drives the OCR attention, and the
  main 1-class head on the OCR-refined features.

Output: ``[logits, aux_logits]`` at 1/4 of the input resolution.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["HighResolutionNet"]


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels)


def _conv3x3(cin: int, cout: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=bias)


def _conv1x1(cin: int, cout: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, bias=bias)


def _resize(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


# --------------------------------------------------------------------------- residual blocks


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or projected) shortcut."""

    expansion = 1

    def __init__(self, cin: int, planes: int, downsample: Optional[nn.Module] = None):
        super().__init__()
        self.conv1 = _conv3x3(cin, planes)
        self.bn1 = _bn(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = _bn(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + shortcut)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4), with a shortcut."""

    expansion = 4

    def __init__(self, cin: int, planes: int, downsample: Optional[nn.Module] = None):
        super().__init__()
        self.conv1 = _conv1x1(cin, planes)
        self.bn1 = _bn(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = _bn(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = _bn(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + shortcut)


def _residual_stack(block, cin: int, planes: int, count: int) -> nn.Sequential:
    """``count`` blocks; the first one gets a 1x1 projection when the width changes."""
    cout = planes * block.expansion
    projection = None
    if cin != cout:
        projection = nn.Sequential(_conv1x1(cin, cout), _bn(cout))
    blocks = [block(cin, planes, downsample=projection)]
    blocks += [block(cout, planes) for _ in range(count - 1)]
    return nn.Sequential(*blocks)


# --------------------------------------------------------------------------- multi-branch module


def _downsampler(cin: int, cout: int, steps: int) -> nn.Sequential:
    """``steps`` stride-2 3x3 conv+BN; ReLU after every step except the last."""
    layers = []
    for k in range(steps):
        last = k == steps - 1
        out = cout if last else cin
        parts = [_conv3x3(cin, out, stride=2), _bn(out)]
        if not last:
            parts.append(nn.ReLU(inplace=True))
        layers.append(nn.Sequential(*parts))
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches of basic blocks followed by all-to-all fusion (sum)."""

    def __init__(self, widths: Sequence[int], blocks_per_branch: int):
        super().__init__()
        n = len(widths)
        self.branches = nn.ModuleList(
            _residual_stack(BasicBlock, w, w, blocks_per_branch) for w in widths
        )
        # fuse_layers[i][j] maps branch j to the resolution/width of branch i.
        rows = []
        for i in range(n):
            row = []
            for j in range(n):
                if j == i:
                    row.append(nn.Identity())
                elif j > i:  # coarser -> finer: 1x1 conv, BN, then bilinear upsampling in forward
                    row.append(nn.Sequential(_conv1x1(widths[j], widths[i]), _bn(widths[i])))
                else:  # finer -> coarser: chain of strided 3x3 convolutions
                    row.append(_downsampler(widths[j], widths[i], i - j))
            rows.append(nn.ModuleList(row))
        self.fuse_layers = nn.ModuleList(rows)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: List[torch.Tensor]) -> List[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        fused = []
        for i, row in enumerate(self.fuse_layers):
            target_size = xs[i].shape[-2:]
            acc = None
            for j, x in enumerate(xs):
                if j == i:
                    y = x
                elif j > i:
                    y = _resize(row[j](x), target_size)
                else:
                    y = row[j](x)
                acc = y if acc is None else acc + y
            fused.append(self.relu(acc))
        return fused


def _transition(prev_widths: Sequence[int], widths: Sequence[int]) -> nn.ModuleList:
    """Adapts the previous stage's branches to the next stage; the new (coarsest) branch is
    derived from the previous coarsest one by strided convolutions."""
    layers = []
    for i, w in enumerate(widths):
        if i < len(prev_widths):
            if prev_widths[i] == w:
                layers.append(nn.Identity())
            else:
                layers.append(
                    nn.Sequential(_conv3x3(prev_widths[i], w), _bn(w), nn.ReLU(inplace=True))
                )
        else:
            source = prev_widths[-1]
            steps = i + 1 - len(prev_widths)
            chain = []
            for k in range(steps):
                out = w if k == steps - 1 else source
                chain.append(
                    nn.Sequential(_conv3x3(source, out, stride=2), _bn(out), nn.ReLU(inplace=True))
                )
            layers.append(nn.Sequential(*chain))
    return nn.ModuleList(layers)


# --------------------------------------------------------------------------- OCR head


def _conv_bn_relu(cin: int, cout: int) -> List[nn.Module]:
    # RITM nests BN+ReLU in their own Sequential: keys look like "f_pixel.1.0.weight".
    return [_conv1x1(cin, cout), nn.Sequential(_bn(cout), nn.ReLU(inplace=True))]


class SpatialGather(nn.Module):
    """Object region representation: features averaged with softmax(spatial) of the logits."""

    def forward(self, feats: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        b, k = logits.shape[:2]
        weights = torch.softmax(logits.reshape(b, k, -1), dim=2)  # b x k x hw
        flat = feats.reshape(b, feats.shape[1], -1)  # b x c x hw
        region = torch.bmm(weights, flat.transpose(1, 2))  # b x k x c
        return region.transpose(1, 2).unsqueeze(3)  # b x c x k x 1


class ObjectAttention(nn.Module):
    """Pixel-to-region attention: queries from pixels, keys/values from the region vectors."""

    def __init__(self, channels: int, key_channels: int):
        super().__init__()
        self.key_channels = key_channels
        self.f_pixel = nn.Sequential(
            *_conv_bn_relu(channels, key_channels), *_conv_bn_relu(key_channels, key_channels)
        )
        self.f_object = nn.Sequential(
            *_conv_bn_relu(channels, key_channels), *_conv_bn_relu(key_channels, key_channels)
        )
        self.f_down = nn.Sequential(*_conv_bn_relu(channels, key_channels))
        self.f_up = nn.Sequential(*_conv_bn_relu(key_channels, channels))

    def forward(self, x: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        kc = self.key_channels
        query = self.f_pixel(x).reshape(b, kc, -1).transpose(1, 2)  # b x hw x kc
        key = self.f_object(regions).reshape(b, kc, -1)  # b x kc x k
        value = self.f_down(regions).reshape(b, kc, -1).transpose(1, 2)  # b x k x kc
        attention = torch.softmax(torch.bmm(query, key) * kc**-0.5, dim=-1)  # b x hw x k
        context = torch.bmm(attention, value).transpose(1, 2).reshape(b, kc, h, w)
        return self.f_up(context)


class SpatialOCR(nn.Module):
    """Concatenates the attended context with the pixel features and projects them back."""

    def __init__(self, channels: int, key_channels: int, dropout: float = 0.05):
        super().__init__()
        self.object_context_block = ObjectAttention(channels, key_channels)
        self.conv_bn_dropout = nn.Sequential(
            *_conv_bn_relu(2 * channels, channels), nn.Dropout2d(dropout)
        )

    def forward(self, feats: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        context = self.object_context_block(feats, regions)
        return self.conv_bn_dropout(torch.cat([context, feats], dim=1))


# --------------------------------------------------------------------------- the network


class HighResolutionNet(nn.Module):
    """HRNetV2-W``width`` (+ OCR of key width ``ocr_width``) producing 1-class logits."""

    STEM_CHANNELS = 64

    def __init__(self, width: int, ocr_width: int, small: bool = False, num_classes: int = 1):
        super().__init__()
        if ocr_width <= 0:
            raise ValueError("this implementation needs the OCR head (ocr_width > 0)")
        stem = self.STEM_CHANNELS
        blocks = 2 if small else 4
        modules_per_stage = (1, 3, 2) if small else (1, 4, 3)  # stages 2, 3, 4

        self.conv1 = _conv3x3(3, stem, stride=2)
        self.bn1 = _bn(stem)
        self.conv2 = _conv3x3(stem, stem, stride=2)
        self.bn2 = _bn(stem)
        self.relu = nn.ReLU(inplace=True)

        self.layer1 = _residual_stack(Bottleneck, stem, stem, blocks)
        prev = [stem * Bottleneck.expansion]
        for stage, num_modules in zip((2, 3, 4), modules_per_stage):
            widths = [width * 2**k for k in range(stage)]
            setattr(self, f"transition{stage - 1}", _transition(prev, widths))
            setattr(
                self,
                f"stage{stage}",
                nn.Sequential(*(HighResolutionModule(widths, blocks) for _ in range(num_modules))),
            )
            prev = widths

        concat = sum(prev)
        mid = 2 * ocr_width
        self.conv3x3_ocr = nn.Sequential(
            _conv3x3(concat, mid, bias=True), _bn(mid), nn.ReLU(inplace=True)
        )
        self.ocr_gather_head = SpatialGather()
        self.ocr_distri_head = SpatialOCR(mid, ocr_width)
        self.cls_head = nn.Conv2d(mid, num_classes, kernel_size=1, bias=True)
        self.aux_head = nn.Sequential(
            _conv1x1(concat, concat, bias=True),
            _bn(concat),
            nn.ReLU(inplace=True),
            _conv1x1(concat, num_classes, bias=True),
        )

    def _stem(self, x: torch.Tensor, extra: Optional[torch.Tensor]) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        if extra is not None:
            x = x + extra
        return self.relu(self.bn2(self.conv2(x)))

    def backbone_features(self, x: torch.Tensor, extra: Optional[torch.Tensor] = None):
        """Concatenated multi-resolution HRNet features at 1/4 of the input size."""
        xs = [self.layer1(self._stem(x, extra))]
        for stage in (2, 3, 4):
            transition = getattr(self, f"transition{stage - 1}")
            inputs = [t(xs[min(i, len(xs) - 1)]) for i, t in enumerate(transition)]
            xs = getattr(self, f"stage{stage}")(inputs)
        size = xs[0].shape[-2:]
        return torch.cat([xs[0]] + [_resize(x, size) for x in xs[1:]], dim=1)

    def forward(self, x: torch.Tensor, extra: Optional[torch.Tensor] = None):
        feats = self.backbone_features(x, extra)
        aux = self.aux_head(feats)
        feats = self.conv3x3_ocr(feats)
        regions = self.ocr_gather_head(feats, aux)
        out = self.cls_head(self.ocr_distri_head(feats, regions))
        return [out, aux]
