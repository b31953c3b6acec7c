#!/usr/bin/env bash
# The current main job on bundled defaults: the paper's Table 1 and Figure 1 recomputed from the
# authors' per-tile IoU arrays (../shared/data/paper_ious), with the project's NoC protocol.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data}
OUT=${2:-out/demo}
IOUS="$DATA/paper_ious"
if [ ! -d "$IOUS" ]; then
    echo "demo: the paper's IoU arrays are not at $IOUS; set SHARED_DATA=/path/to/shared/data" >&2
    exit 1
fi
mkdir -p "$OUT"
args=()
for m in notrain scratch finetune; do args+=(--ious "$m=$IOUS/all_ious_$m.npy"); done
.venv/bin/ritm-qgis noc-report "${args[@]}" --plot "$OUT/iou_vs_clicks.png" | tee "$OUT/table1.txt"
.venv/bin/ritm-qgis noc-report "${args[@]}" --json > "$OUT/report.json"
echo
echo "demo: outputs in $OUT/ (table1.txt, report.json, iou_vs_clicks.png)"
