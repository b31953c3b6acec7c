#!/usr/bin/env bash
# Builds the installable QGIS plugin zip: dist/ritm_qgis.<version>.zip
#   package_plugin.sh [VERSION]   (default: metadata.txt's version; RELEASE=file names the release
#                                  setting, default release.toml)
#
# QGIS needs a single folder named ritm_qgis holding metadata.txt. This script copies the source
# files git knows of under ritm_qgis/ (tracked, plus new files not ignored; in a fresh clone that
# is exactly the committed tree), plus metadata.txt (with the project's public addresses from the
# release setting, where it names them), LICENSE and NOTICE, into a throw-away git repository
# under build/, and zips it there with `git archive` (committed files only, so no caches or build
# outputs). The top-level models/ and algorithms/ symlinks are not read: their files are copied,
# as plain files, from ritm_qgis/models and ritm_qgis/algorithms.
# Whether the zip may be uploaded to plugins.qgis.org is `make package`'s next step,
# scripts/release_check.py (qgis-plugin-ci and the plugin repository's rules).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VERSION=${1:-$(sed -n 's/^version=//p' metadata.txt)}
RELEASE=${RELEASE:-release.toml}
STAGE="$ROOT/build/plugin"
rm -rf "$STAGE"
mkdir -p "$STAGE/ritm_qgis" "$ROOT/dist"

copy_tracked() {  # copy_tracked SRC_DIR DEST_DIR: the source files of SRC_DIR (no build outputs, no caches)
    git ls-files -z --cached --others --exclude-standard -- "$1" | while IFS= read -r -d '' f; do
        [ -f "$f" ] || continue  # deleted in the working tree
        rel=${f#"$1"/}
        mkdir -p "$2/$(dirname "$rel")"
        cp "$f" "$2/$rel"
    done
}
copy_tracked ritm_qgis "$STAGE/ritm_qgis"
cp metadata.txt "$STAGE/ritm_qgis/metadata.txt"
cp LICENSE NOTICE "$STAGE/ritm_qgis/"
sed -i "s/^version=.*/version=$VERSION/" "$STAGE/ritm_qgis/metadata.txt"
python3 scripts/release_check.py apply "$RELEASE" "$STAGE/ritm_qgis/metadata.txt"
ZIP="$ROOT/dist/ritm_qgis.$VERSION.zip"
rm -f "$ZIP"
(
    cd "$STAGE"
    git init -q
    git add -A
    git -c user.name=ritm_qgis -c user.email=build@localhost commit -qm "plugin $VERSION"
    git archive --format=zip -o "$ZIP" HEAD ritm_qgis
)
[ -f "$ZIP" ] || { echo "package: git archive did not produce $ZIP" >&2; exit 1; }
echo "package: dist/ritm_qgis.$VERSION.zip"
