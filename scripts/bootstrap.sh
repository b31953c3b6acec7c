#!/usr/bin/env bash
# Sets up everything ritm_qgis needs on Debian 12, idempotently:
#   1. QGIS 3.22 + PyQGIS + Xvfb from Debian (apt), only if PyQGIS is not importable yet;
#   2. a virtual environment at .venv made from Debian's Python with --system-site-packages,
#      so that PyQGIS (a Debian package) is importable inside it;
#   3. the Python dependencies of requirements.txt and the project itself (editable) into .venv;
#   4. qgis-plugin-ci, the packaging check of `make package`, in a virtual environment of its own
#      (.venv/tools/qgis-plugin-ci): it pulls PyQt5 from pip, which must never shadow the PyQt5
#      that QGIS and PyQGIS use in .venv.
# Each step is skipped when already done; step 3 re-runs only when requirements.txt or
# ritm_qgis/requirements.txt or pyproject.toml change.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
say() { printf '[bootstrap] %s\n' "$*"; }
# pip's own errors still show; this machine's pip configuration adds one harmless warning per package
quiet_pip() { "$VENV/bin/python" -m pip "$@" 2>&1 | { grep -v -e "WARNING: Location 'file://" || true; }; }

if /usr/bin/python3 -c "import qgis.core" >/dev/null 2>&1 && command -v Xvfb >/dev/null 2>&1; then
    say "QGIS and PyQGIS already installed ($(/usr/bin/python3 -c 'from qgis.core import Qgis; print(Qgis.QGIS_VERSION)' 2>/dev/null))"
else
    say "installing QGIS, PyQGIS and Xvfb from Debian (apt-get, 1-3 minutes)"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        qgis python3-qgis qgis-providers python3-venv xvfb >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV (Debian's python3, --system-site-packages so PyQGIS is visible)"
    /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi

STAMP="$VENV/.ritm_qgis-deps"
WANT=$(cat requirements.txt ritm_qgis/requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" = "$WANT" ] && "$VENV/bin/python" -c "import ritm_qgis, torch" >/dev/null 2>&1; then
    say "Python dependencies already installed in .venv"
else
    say "installing Python dependencies into .venv (pip; about 2 minutes on a cold machine)"
    quiet_pip install -q --upgrade pip >/dev/null
    quiet_pip install -q -r requirements.txt
    quiet_pip install -q --no-deps -e . >/dev/null
    echo "$WANT" > "$STAMP"
fi
PLUGIN_CI_VERSION=2.10.0
TOOLS="$VENV/tools/qgis-plugin-ci"
if [ "$("$TOOLS/bin/qgis-plugin-ci" --version 2>/dev/null)" = "$PLUGIN_CI_VERSION" ]; then
    say "qgis-plugin-ci $PLUGIN_CI_VERSION already installed in $TOOLS"
else
    say "installing qgis-plugin-ci $PLUGIN_CI_VERSION into $TOOLS (its own environment; about a minute)"
    rm -rf "$TOOLS"
    /usr/bin/python3 -m venv "$TOOLS"
    "$TOOLS/bin/python" -m pip install -q "qgis-plugin-ci==$PLUGIN_CI_VERSION" 2>&1 \
        | { grep -v -e "WARNING: Location 'file://" || true; }
fi
say "ready: $("$VENV/bin/python" -c 'import torch, numpy, rasterio, shapely, qgis.core as q; print(f"torch {torch.__version__}, numpy {numpy.__version__}, rasterio {rasterio.__version__} (GDAL {rasterio.__gdal_version__}), shapely {shapely.__version__}, QGIS {q.Qgis.QGIS_VERSION}")')"
