"""RITM's training losses (facts from RITM's ``isegm/model/losses.py``, written anew).

Targets are float tensors ``(B, 1, H, W)`` with 1 object, 0 background and -1 ignored.

Normalized focal loss (NFL), per pixel, with p the predicted probability and y the label::

    pt    = 1 - |y - p|                 (the probability given to the true class)
    a     = alpha for y = 1, 1 - alpha for y = 0
    beta  = (1 - pt) ** gamma
    beta' = beta * (sum of valid pixels / sum of beta over the valid pixels)   (per sample, no grad)
    l     = -a * beta' * log(min(pt + eps, 1))

and the sample's loss is the sum of l over valid pixels divided by their number: the focal
weights are renormalised so they average to one over the image, which keeps the loss scale
independent of how easy the image already is. The auxiliary head gets plain BCE on logits,
averaged over all pixels with ignored ones contributing zero (as RITM). Both return one value
per sample; ``ritm_loss`` is ``mean(NFL) + 0.4 * mean(BCE)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["normalized_focal_loss", "sigmoid_bce", "ritm_loss"]


def normalized_focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.5, gamma: float = 2.0,
                          eps: float = 1e-12, ignore_label: float = -1) -> torch.Tensor:
    """Per-sample NFL, shape (B,); see the module doc."""
    logits, target = logits.float(), target.float()
    valid = target != ignore_label
    p = torch.sigmoid(logits)
    one = target > 0.5
    a = torch.where(one, torch.full_like(p, alpha), torch.full_like(p, 1 - alpha)) * valid
    pt = torch.where(valid, 1.0 - (target - p).abs(), torch.ones_like(p))
    beta = (1.0 - pt) ** gamma
    dims = tuple(range(1, logits.dim()))
    n_valid = valid.sum(dim=dims, keepdim=True).to(p.dtype)
    mult = (n_valid / (beta.sum(dim=dims, keepdim=True) + eps)).detach()
    loss = -a * beta * mult * torch.log(torch.clamp(pt + eps, max=1.0))
    loss = loss * valid
    return loss.sum(dim=dims) / (valid.sum(dim=dims).to(p.dtype) + eps)


def sigmoid_bce(logits: torch.Tensor, target: torch.Tensor, ignore_label: float = -1) -> torch.Tensor:
    """Per-sample binary cross-entropy on logits, ignored pixels count zero; shape (B,)."""
    logits, target = logits.float(), target.float()
    valid = target != ignore_label
    y = torch.where(valid, target, torch.zeros_like(target))
    loss = F.binary_cross_entropy_with_logits(logits, y, reduction="none") * valid
    return loss.mean(dim=tuple(range(1, logits.dim())))


def ritm_loss(outputs: dict, target: torch.Tensor, aux_weight: float = 0.4, alpha: float = 0.5,
              gamma: float = 2.0):
    """``(total, {'nfl': ..., 'aux_bce': ...})`` for the network's output dict."""
    nfl = normalized_focal_loss(outputs["instances"], target, alpha, gamma).mean()
    parts = {"nfl": nfl}
    total = nfl
    if aux_weight and outputs.get("instances_aux") is not None:
        aux = sigmoid_bce(outputs["instances_aux"], target).mean()
        parts["aux_bce"] = aux
        total = total + aux_weight * aux
    return total, parts
