#!/usr/bin/env bash
# `make demo`: the paper's demo on bundled defaults, then Table 1 of the paper.
#  1. an aerial image and its building mask: a real SpaceNet chip from ../shared/data/aerial when
#     that folder exists, else a synthetic georeferenced scene the project generates itself;
#  2. `ritm-qgis demo` on it with every shipped model and the weight-free GrabCut backend: overlay,
#     error map, IoU-per-click plot, footprints and clicks as GeoPackage layers;
#  3. Table 1 and Figure 1 of the paper from the authors' IoU arrays, when ../shared/data has them.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data}
OUT=${2:-out/demo}
CLI=.venv/bin/ritm-qgis
mkdir -p "$OUT"

CHIP="$DATA/aerial/spacenet_rio/images/3band_013022223130_Public_img50.tif"
if [ -f "$CHIP" ]; then
    IMAGE=$CHIP
    TARGET="$DATA/aerial/spacenet_rio/masks/$(basename "$CHIP")"
    echo "demo: real SpaceNet-1 Rio chip $(basename "$CHIP") (CC BY-SA 4.0)"
else
    echo "demo: $DATA/aerial not found; generating a synthetic georeferenced scene"
    $CLI make-scene --out "$OUT/scene" >/dev/null
    IMAGE="$OUT/scene/scene.tif"
    TARGET="$OUT/scene/scene_mask.tif"
fi

models=(--model grabcut-multi)
for f in ritm_qgis/models/weights/*.pth; do  # the project's shipped models, loadable by name
    [ -f "$f" ] && models+=(--model "$(basename "$f" .pth)")
done
$CLI demo --image "$IMAGE" --target "$TARGET" "${models[@]}" --target-iou 0.9 --max-clicks 20 --device auto --out "$OUT"

IOUS="$DATA/paper_ious"
if [ -d "$IOUS" ]; then
    args=()
    for m in notrain scratch finetune; do args+=(--ious "$m=$IOUS/all_ious_$m.npy"); done
    echo
    echo "Table 1 of the paper, recomputed from the authors' per-tile IoU arrays:"
    $CLI noc-report "${args[@]}" --plot "$OUT/paper_iou_vs_clicks.png" | tee "$OUT/paper_table1.txt"
fi
echo
echo "demo: outputs in $OUT/ (one folder per model: overlay.png, error_map.png, iou_per_click.png,"
echo "      footprints.gpkg, clicks.gpkg; demo.json; paper_table1.txt, paper_iou_vs_clicks.png)"
