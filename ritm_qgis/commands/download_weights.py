"""``ritm-qgis download-weights``: fetch official RITM weights (or any URL) into the cache."""

from __future__ import annotations

from ritm_qgis.cli_progress import ProgressBar

HELP = ("Download a model of the list (`model-info --list`) into the cache, or import a file fetched "
        "elsewhere with --from; verified against its published digest.")


def add_arguments(p):
    from ritm_qgis.models.catalog import MIRROR_ENV, downloadable_names

    p.add_argument("name", metavar="NAME",
                   help="model name: " + ", ".join(downloadable_names()) + " (or any name with --url / --from)")
    p.add_argument("--url", help="download from this http(s) URL instead of the official one")
    p.add_argument("--from", dest="from_file", metavar="FILE",
                   help="import FILE (fetched on another machine) instead of downloading: it is verified against "
                        "NAME's published digest (or --sha256 when NAME has none) and copied into the cache; a mismatch "
                        "is refused. Also re-verifies a cached NAME.pth whose checksum note is missing or damaged")
    p.add_argument("--mirror", metavar="URL",
                   help=f"base URL of an internal mirror holding NAME.pth files (default ${MIRROR_ENV})")
    p.add_argument("--sha256", metavar="HEX",
                   help="expected SHA-256 of a file without a published digest (checked; a mismatch deletes it); a "
                        "published digest cannot be replaced")
    p.add_argument("--cache-dir", metavar="DIR",
                   help="where to store NAME.pth (default $RITM_QGIS_CACHE or ~/.cache/ritm_qgis)")
    p.add_argument("--force", action="store_true", help="download again even if the file is already there")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def run(args) -> int:
    from ritm_qgis.core.errors import RitmError
    from ritm_qgis.models.catalog import download_model, entry, import_model

    if args.from_file:
        if args.url or args.mirror:
            raise RitmError("Give either --from FILE (import) or --url / --mirror (download), not both.")
        result = import_model(args.name, args.from_file, sha256=args.sha256, directory=args.cache_dir)
        print(f"{result.path}: imported from {args.from_file} and verified, {result.size} bytes")
        print(f"sha256 {result.sha256}")
        return 0
    bar = ProgressBar(args.name, unit="B", unit_scale=True, enabled=not args.quiet)
    try:
        result = download_model(args.name, url=args.url, sha256=args.sha256, directory=args.cache_dir,
                                progress=bar, force=args.force, mirror=args.mirror)
    finally:
        bar.close()
    known_entry = entry(args.name)
    state = "already present" if result.skipped else "downloaded"
    if result.resumed_from:
        state += f" (resumed after {result.resumed_from} bytes)"
    print(f"{result.path}: {state}, {result.size} bytes")
    print(f"sha256 {result.sha256}")
    known = args.sha256 or (known_entry.digest if known_entry is not None else None)
    if known and not args.sha256:
        print(f"verified: {known}")
    if not known:
        print("note: no published checksum for this file; keep the sha256 above to verify it later "
              "(--sha256).")
    return 0
