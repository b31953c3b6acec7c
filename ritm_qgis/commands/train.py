"""``ritm-qgis train``: RITM's iterative training, from scratch or fine-tuning a checkpoint.

The same command runs in one process (CPU or one GPU) or under ``torchrun --nproc_per_node N``
(DistributedDataParallel, one GPU per process; gloo on CPU).
"""

from __future__ import annotations

from ritm_qgis.cli_progress import ProgressBar
from ritm_qgis.engine.data.registry import usage as dataset_usage

HELP = ("Train or fine-tune an interactive segmentation network with RITM's iterative click scheme "
        "(checkpoints with metadata in --out, resumable, validation NoC20@85/90 each epoch).")


def _pair(text, name):
    from ritm_qgis.core.errors import RitmError

    try:
        a, b = (int(v) for v in text.lower().replace("x", ",").split(","))
    except ValueError:
        raise RitmError(f"{name} takes HEIGHT,WIDTH (e.g. 320,480), not '{text}'") from None
    return a, b


def check_numbers(args) -> None:
    """Every number in bounds before any work (the bounds of the Processing parameters)."""
    import math

    from ritm_qgis.core.errors import RitmError
    from ritm_qgis.engine.jobs.limits import MAX_BATCH_SIZE, MAX_CLICKS, check_int

    check_int(args.epochs, "--epochs", 1, 100_000)
    check_int(args.batch_size, "--batch-size", 1, MAX_BATCH_SIZE)
    check_int(args.val_max_clicks, "--val-max-clicks", 1, MAX_CLICKS)
    check_int(args.val_every, "--val-every", 1)
    check_int(args.max_next_clicks, "--max-next-clicks", 0, MAX_CLICKS)
    check_int(args.workers, "--workers", 0, 256)
    for flag, value in (("--epoch-len", args.epoch_len), ("--val-limit", args.val_limit),
                        ("--max-steps", args.max_steps)):
        if value is not None:
            check_int(value, flag, 1)
    if args.minutes is not None and not (math.isfinite(args.minutes) and args.minutes > 0):
        raise RitmError(f"--minutes must be a positive number, not {args.minutes}")
    for flag, value in (("--lr", args.lr), ("--backbone-lr-mult", args.backbone_lr_mult)):
        if not (math.isfinite(value) and value >= 0):
            raise RitmError(f"{flag} must be a finite number of at least 0, not {value}")


def add_arguments(p):
    p.add_argument("--data", action="append", required=True, metavar="SPEC",
                   help=f"training data (repeat), one of: {dataset_usage()}")
    p.add_argument("--include", help="keep only training samples whose name matches this regex")
    p.add_argument("--exclude", help="drop training samples whose name matches this regex (hold-out)")
    p.add_argument("--val-data", action="append", default=[], metavar="SPEC",
                   help="held-out data for the per-epoch NoC20@85/90 (repeat; same kinds as --data)")
    p.add_argument("--val-include", help="regex on validation sample names")
    p.add_argument("--val-exclude", help="regex on validation sample names")
    p.add_argument("--val-limit", type=int, help="validate on the first N held-out samples only")
    p.add_argument("--val-max-clicks", type=int, default=20)
    p.add_argument("--val-every", type=int, default=1, help="validate every N epochs (default 1)")
    p.add_argument("--init", default="none", metavar="none|NAME|FILE",
                   help="'none' to train from scratch (random weights), or a checkpoint / weights name to fine-tune")
    p.add_argument("--arch", default="hrnet18s", help="architecture when --init none (default hrnet18s)")
    p.add_argument("--regime", help="label stored in the checkpoint (default: scratch / finetune from --init)")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder: last.pth, best.pth, history.json")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--epoch-len", type=int, help="items per epoch, all processes together (default: data size)")
    p.add_argument("--batch-size", type=int, default=8, help="per process (default 8; RITM used 32 on GPUs)")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--backbone-lr-mult", type=float, default=0.1)
    p.add_argument("--milestones", default="", help="epochs where lr is multiplied by 0.1, e.g. 8,9")
    p.add_argument("--crop-size", default="320,480", help="HEIGHT,WIDTH of training crops (default 320,480)")
    p.add_argument("--aerial-aug", action="store_true", help="add vertical flips and 90-degree rotations")
    p.add_argument("--max-next-clicks", type=int, default=3, help="iterative clicks per step, 0..N (default 3)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (under torchrun: the local GPU)")
    p.add_argument("--no-amp", action="store_true", help="fp32 on CUDA too (AMP + channels_last are the default there)")
    p.add_argument("--workers", type=int, default=0, help="data loader processes (default 0)")
    p.add_argument("--no-cache", action="store_true", help="read samples from disk each time (large data sets)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-resume", action="store_true", help="start over even if --out holds a run")
    p.add_argument("--max-steps", type=int, help="stop after this many steps (smoke tests)")
    p.add_argument("--minutes", type=float, metavar="N",
                   help="time budget: stop training after N minutes (the epoch cut short is validated; best.pth "
                        "keeps the best weights by --val-data)")
    p.add_argument("--export-half", metavar="FILE", help="also write the final weights as fp16 to FILE (for shipping)")


def run(args) -> int:
    import os

    from ritm_qgis.engine.data.registry import parse_dataset_spec
    from ritm_qgis.engine.training import TrainConfig, train

    check_numbers(args)
    try:
        milestones = tuple(int(v) for v in args.milestones.split(",") if v.strip())
    except ValueError:
        from ritm_qgis.core.errors import RitmError

        raise RitmError(f"--milestones takes comma-separated epochs, such as 8,9, not '{args.milestones}'") from None
    cfg = TrainConfig(
        train_data=[parse_dataset_spec(s, flag="--data") for s in args.data], out=args.out,
        val_data=[parse_dataset_spec(s, flag="--val-data") for s in args.val_data], include=args.include,
        exclude=args.exclude, val_include=args.val_include, val_exclude=args.val_exclude, init=args.init,
        arch=args.arch, regime=args.regime, epochs=args.epochs, epoch_len=args.epoch_len,
        batch_size=args.batch_size, lr=args.lr, backbone_lr_mult=args.backbone_lr_mult, milestones=milestones,
        crop_size=_pair(args.crop_size, "--crop-size"), aerial_aug=args.aerial_aug,
        max_next_clicks=args.max_next_clicks, val_max_clicks=args.val_max_clicks, val_limit=args.val_limit,
        val_every=args.val_every,
        device=args.device, amp=not args.no_amp, channels_last=not args.no_amp, num_workers=args.workers,
        cache=not args.no_cache, seed=args.seed, resume=not args.no_resume, max_steps=args.max_steps,
        minutes=args.minutes,
    )
    main = int(os.environ.get("RANK", "0")) == 0
    bar = ProgressBar("train", enabled=main)
    try:
        path = train(cfg, progress=bar, log=bar.write)
    finally:
        bar.close()
    if main:
        print(f"checkpoint: {path}")
        if args.export_half:
            from ritm_qgis.models import save_half_copy

            save_half_copy(path, args.export_half)
            print(f"fp16 copy: {args.export_half}")
    return 0
