"""``ritm-qgis prepare-inria``: the paper's 500x500 crops and test/train split from INRIA's official layout."""

from __future__ import annotations

import os

from ritm_qgis.cli_progress import ProgressBar

HELP = ("Cut INRIA Aerial Image Labeling tiles (AerialImageDataset/train/{images,gt}/{city}{n}.tif) into "
        "non-overlapping crops: OUT/test (n = 1..5 of each city) and OUT/train (the rest), with a manifest; "
        "resumable.")


def add_arguments(p):
    p.add_argument("--src", required=True, metavar="DIR", help="AerialImageDataset (or its train folder)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (read with --dataset inria:DIR)")
    p.add_argument("--crop-size", type=int, default=500, help="crop side in pixels (default 500, the paper's)")
    p.add_argument("--test-ids", default="1,2,3,4,5",
                   help="tile numbers of each city that go to the test split (default 1,2,3,4,5)")


def run(args) -> int:
    from ritm_qgis.core.errors import RitmError
    from ritm_qgis.engine.data.inria import prepare_inria
    from ritm_qgis.engine.jobs.limits import MAX_CROP, check_int
    from ritm_qgis.engine.jobs.same_file import same_file

    check_int(args.crop_size, "--crop-size", 16, MAX_CROP)
    src = args.src.rstrip("/\\") or args.src
    parent = os.path.dirname(os.path.abspath(src))  # AerialImageDataset, when --src is its train folder
    if same_file(args.out, src) or (os.path.basename(os.path.abspath(src)) == "train" and same_file(args.out, parent)):
        raise RitmError(f"--out '{args.out}' would write the crops among the INRIA tiles of --src; choose another "
                        "folder")

    try:
        test_ids = [int(v) for v in args.test_ids.split(",") if v.strip()]
    except ValueError:
        raise RitmError(f"--test-ids takes comma-separated numbers, not '{args.test_ids}'") from None

    bar = ProgressBar("prepare-inria")
    try:
        res = prepare_inria(args.src, args.out, args.crop_size, test_ids, progress=bar)
    finally:
        bar.close()
    print(f"{res.crops} crops ({res.written} written, {res.skipped} already there, {res.empty} empty); "
          f"manifest: {res.manifest}")
    return 0
