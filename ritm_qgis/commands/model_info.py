"""``ritm-qgis model-info``: what a checkpoint contains, or the list of architectures."""

from __future__ import annotations

import json

HELP = "Show a checkpoint's architecture, parameter count and metadata (or --list the architectures and models)."


def add_arguments(p):
    p.add_argument("checkpoint", nargs="?", metavar="FILE|NAME",
                   help="a .pth file, or a shipped or downloaded model name")
    p.add_argument("--list", action="store_true", help="list the architectures and every model (shipped, downloaded, downloadable)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def _arch_of(path: str) -> str:
    from ritm_qgis.core.errors import RitmError
    from ritm_qgis.models import inspect_checkpoint

    try:
        return inspect_checkpoint(path)[2]
    except RitmError:
        return "unreadable"


def _list(as_json: bool) -> int:
    import torch

    from ritm_qgis.models import count_parameters, create_model, get_config, list_models
    from ritm_qgis.models.catalog import default_model, model_statuses

    rows = []
    for name in list_models():
        with torch.device("meta"):  # shapes only: no memory, no initialisation
            params = count_parameters(create_model(name))
        rows.append({"arch": name, "parameters": params, **get_config(name).as_dict()})
    statuses = model_statuses()
    weights = [s.as_dict() for s in statuses]
    for w in weights:
        if w["source"] == "user":  # a file the user added: its network is only known once read
            w["arch"] = _arch_of(w["path"])
    default, reason = default_model()
    if as_json:
        print(json.dumps({"architectures": rows, "weights": weights,
                          "default": {"name": default, "reason": reason}}, indent=2))
        return 0
    print(f"{'architecture':<12} {'parameters':>12}  width  ocr_width  small")
    for r in rows:
        print(f"{r['arch']:<12} {r['parameters']:>12,}  {r['width']:>5}  {r['ocr_width']:>9}  {'yes' if r['small'] else 'no'}")
    print()
    print(f"{'model':<28} {'status':<12} {'arch':<11} {'size':>9}  training data")
    for s, w in zip(statuses, weights):
        print(f"{w['name']:<28} {w['status']:<12} {w['arch']:<11} {s.size_label():>9}  {w['training_data']}")
        print(f"{'':<28} {w['good_for']}")
        if not w["for_buildings"]:
            print(f"{'':<28} not offered for outlining buildings (the dock lists it last, apart)")
        if w["url"]:
            print(f"{'':<28} url {w['url']}")
        if w["digest"]:
            print(f"{'':<28} digest {w['digest']}")
        if w["published"]:
            print(f"{'':<28} {w['published']}")
    print()
    print(f"default model: {reason}")
    return 0


def _weight_free(e, as_json: bool) -> int:
    name = e.name
    info = {"name": name, "architecture": e.arch, "weights": None, "description": e.good_for,
            "inputs": e.builder.inputs.as_dict()}
    if as_json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"name:          {name}")
    print(f"architecture:  {e.arch} (weight-free: no checkpoint file)")
    print(f"what it does:  {e.good_for}")
    return 0


def run(args) -> int:
    from ritm_qgis.core.errors import RitmError

    if args.list:
        return _list(args.json)
    if not args.checkpoint:
        raise RitmError("Give a checkpoint file or weights name, or --list for the architectures.")
    from ritm_qgis.models.catalog import entry

    listed = entry(args.checkpoint)
    if listed is not None and not listed.weights:
        return _weight_free(listed, args.json)
    from ritm_qgis.models import load_model

    _, info = load_model(args.checkpoint)
    d = info.as_dict()
    if args.json:
        print(json.dumps(d, indent=2, default=str))
        return 0
    c = info.config
    print(f"file:          {info.path}")
    print(f"format:        {info.source_format}")
    print(f"architecture:  {info.arch} (width {c.width}, ocr_width {c.ocr_width}, small {c.small})")
    print(f"inputs:        {'RGB + previous mask' if c.with_prev_mask else 'RGB'}, clicks as disks of radius {c.norm_radius}")
    print(f"parameters:    {info.num_parameters:,}")
    print(f"weights:       {info.weights_dtype}, sha256 {info.weights_sha256}")
    for key, value in sorted(info.metadata.items()):
        if key in ("weights_sha256", "weights_dtype"):
            continue
        if isinstance(value, list) and len(value) > 3:  # e.g. the per-epoch history: its ends only
            text = (f"{len(value)} entries, first {json.dumps(value[0], default=str)}, "
                    f"last {json.dumps(value[-1], default=str)} (all of them: --json)")
        else:
            text = json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)
        print(f"{key + ':':<14} {text}")
    return 0
