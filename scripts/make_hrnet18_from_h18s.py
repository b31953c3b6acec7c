"""Write an hrnet18 (RITM's layout, 10 M parameters) made from a trained hrnet18s.

RITM's published hrnet18 checkpoints cannot be downloaded here, and an hrnet18 with random
weights is no stand-in for what int8 does to a trained one (its probabilities sit near 0.5). This
places a trained hrnet18s's weights into the larger network; the OCR head's wider channels are the
small one's padded with channels that stay zero. The blocks and modules the small network lacks
are either identities (``--extra identity``, the default: the last batch norm of each added
residual block and fusion path set to zero; the result is checked to give the small network's
logits) or copies of its last blocks (``--extra copies``: every block works at full scale, and the
function is broken until fine-tuned). Fine-tuning it (``ritm-qgis train --init OUT``) then makes
it a trained hrnet18 (docs/benchmarks.md, *A trained hrnet18 in RITM's layout*).

    python scripts/make_hrnet18_from_h18s.py --base aerial-finetuned-h18s --out out/hrnet18_from_h18s.pth
"""

from __future__ import annotations

import argparse
import math
import sys

import torch


def _zero_bn(bn) -> None:
    with torch.no_grad():
        bn.weight.zero_()
        bn.bias.zero_()


def _silence_block(block) -> None:
    """A residual block whose input is non-negative becomes an identity."""
    _zero_bn(block.bn3 if hasattr(block, "bn3") else block.bn2)


def _copy_stack(dst, src, extra: str) -> None:
    for k, block in enumerate(dst):
        if k < len(src):
            block.load_state_dict(src[k].state_dict())
        elif extra == "copies":  # the small stack's last block again (the first may project)
            block.load_state_dict(src[-1].state_dict())
        else:
            _silence_block(block)


def _copy_module(dst, src, extra: str) -> None:
    """One HighResolutionModule: branches block by block, the fusion paths as they are."""
    for d, s in zip(dst.branches, src.branches):
        _copy_stack(d, s, extra)
    dst.fuse_layers.load_state_dict(src.fuse_layers.state_dict())


def _silence_module(module) -> None:
    for branch in module.branches:
        for block in branch:
            _silence_block(block)
    for i, row in enumerate(module.fuse_layers):
        for j, path in enumerate(row):
            if j == i:
                continue
            last = path[-1] if j < i else path  # a chain of (conv, bn) steps, or (conv, bn)
            _zero_bn(last[1])


def _pad(dst, src, rows, cols=None) -> None:
    """Copy ``src`` into ``dst`` at the output rows ``rows`` and input columns ``cols``, zero
    elsewhere (a batch norm: identity statistics, weight and bias zero, so its channel is 0)."""
    with torch.no_grad():
        for name, d in dst.named_parameters(recurse=False):
            s = getattr(src, name)
            d.zero_()
            if d.dim() >= 2 and cols is not None:
                d[rows[0]:rows[1]][:, cols] = s
            else:
                d[rows[0]:rows[1]] = s
        for name, d in dst.named_buffers(recurse=False):
            s = getattr(src, name)
            if d.dim() == 0:
                d.copy_(s)
                continue
            d.fill_(1.0 if name == "running_var" else 0.0)
            d[rows[0]:rows[1]] = s


def _pad_conv_bn(dst, src, cols) -> None:
    """``_conv_bn_relu`` pairs (conv, Sequential(bn, relu)) of a Sequential, pair by pair."""
    for k in range(0, len(dst), 2):
        n = src[k].out_channels
        _pad(dst[k], src[k], (0, n), cols if k == 0 else slice(0, src[k].in_channels))
        _pad(dst[k + 1][0], src[k + 1][0], (0, n))


def transplant(small, large, extra: str = "identity") -> None:
    """``extra``: 'identity' (the large network computes what the small one does) or 'copies'
    (each added block or module repeats the small network's last one: every block does work
    at its full scale from the start, and fine-tuning must mend the function)."""
    fs, fl = small.feature_extractor, large.feature_extractor
    large.maps_transform.load_state_dict(small.maps_transform.state_dict())
    for name in ("conv1", "bn1", "conv2", "bn2", "transition1", "transition2", "transition3", "aux_head"):
        getattr(fl, name).load_state_dict(getattr(fs, name).state_dict())
    _copy_stack(fl.layer1, fs.layer1, extra)
    for stage in ("stage2", "stage3", "stage4"):
        ds, ss = getattr(fl, stage), getattr(fs, stage)
        for k, module in enumerate(ds):
            if k < len(ss):
                _copy_module(module, ss[k], extra)
            elif extra == "copies":
                _copy_module(module, ss[-1], extra)
            else:
                _silence_module(module)

    mid_s = fs.conv3x3_ocr[0].out_channels
    mid_l = fl.conv3x3_ocr[0].out_channels
    feats = slice(0, mid_s)
    _pad(fl.conv3x3_ocr[0], fs.conv3x3_ocr[0], (0, mid_s), slice(None))
    _pad(fl.conv3x3_ocr[1], fs.conv3x3_ocr[1], (0, mid_s))
    _pad(fl.cls_head, fs.cls_head, (0, 1), feats)

    att_l, att_s = fl.ocr_distri_head.object_context_block, fs.ocr_distri_head.object_context_block
    _pad_conv_bn(att_l.f_pixel, att_s.f_pixel, feats)
    _pad_conv_bn(att_l.f_object, att_s.f_object, feats)
    _pad_conv_bn(att_l.f_down, att_s.f_down, feats)
    _pad(att_l.f_up[0], att_s.f_up[0], (0, mid_s), slice(0, att_s.key_channels))
    _pad(att_l.f_up[1][0], att_s.f_up[1][0], (0, mid_s))
    # the attention divides by sqrt(key channels): scale the queries so the wider key width
    # leaves the products as the small network had them (ReLU commutes with a positive scale)
    scale = math.sqrt(att_l.key_channels / att_s.key_channels)
    with torch.no_grad():
        att_l.f_pixel[3][0].weight.mul_(scale)
        att_l.f_pixel[3][0].bias.mul_(scale)

    fuse_l, fuse_s = fl.ocr_distri_head.conv_bn_dropout, fs.ocr_distri_head.conv_bn_dropout
    joined = torch.cat([torch.arange(mid_s), mid_l + torch.arange(mid_s)])  # [context, feats]
    _pad(fuse_l[0], fuse_s[0], (0, mid_s), joined)
    _pad(fuse_l[1][0], fuse_s[1][0], (0, mid_s))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="aerial-finetuned-h18s", help="an hrnet18s name or checkpoint")
    parser.add_argument("--out", required=True, help="the hrnet18 checkpoint to write (RITM's layout)")
    parser.add_argument("--extra", choices=("identity", "copies"), default="identity",
                        help="the blocks the small network lacks: identities (the same logits, checked) or "
                             "copies of its last blocks (to be fine-tuned)")
    args = parser.parse_args(argv)

    import dataclasses

    from ritm_qgis.core.errors import RitmError
    from ritm_qgis.models import RitmHRNet, get_config, load_model, save_ritm_checkpoint

    try:
        small, _ = load_model(args.base)
    except RitmError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if (small.config.width, small.config.small) != (18, True):
        print(f"{args.base} is not an hrnet18s.", file=sys.stderr)
        return 2
    target = get_config("hrnet18")
    large = RitmHRNet(dataclasses.replace(small.config, width=target.width, ocr_width=target.ocr_width,
                                          small=target.small))
    transplant(small.eval(), large.eval(), args.extra)

    torch.manual_seed(0)
    image = torch.rand(1, small.input_channels, 240, 320)
    points = torch.tensor([[[120.0, 160.0, 0.0], [40.0, 40.0, 1.0]]])  # one positive, one negative
    with torch.inference_mode():
        a = small(image, points)["instances"]
        b = large(image, points)["instances"]
    gap = float((a - b).abs().max())
    print(f"largest logit difference to {args.base}: {gap:.2e}")
    if args.extra == "identity" and gap > 1e-3:
        print("the transplanted network does not compute what the small one does", file=sys.stderr)
        return 1
    save_ritm_checkpoint(args.out, large)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
