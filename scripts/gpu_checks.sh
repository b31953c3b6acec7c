#!/usr/bin/env bash
# Everything this project measures on a leased GPU machine, in one time-boxed run:
# the CUDA tests, the GPU benchmarks (docs/benchmarks.md) and the hrnet18s training runs
# (docs/training.md). Run from the repository root on a CUDA machine, after
# `scripts/pack_gpu_data.py` here (its folder travels in the lease's `carry`):
#
#   OUT=/some/dir DATA=.device-data BUDGET=540 bash scripts/gpu_checks.sh
#
# Every step is capped so the whole run ends within BUDGET seconds; a failed step does not stop
# the next. Logs go to $OUT/gpu.log; trained fp16 weights to $OUT/*.pth; evaluation outputs to
# $OUT/results.tgz. The machine's own python3 is used (torch with CUDA); the package is imported
# from this tree (the two top-level packages are linked into it, as the install does).
set -u
OUT=${OUT:?set OUT to the output folder}
DATA=${DATA:-.device-data}
BUDGET=${BUDGET:-540}
PY=${PY:-python3}
DEV=${DEV:-cuda}  # cpu only to try the script itself on a machine without a GPU
WORK=${WORK:-/tmp/ritm-gpu}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$OUT" "$WORK"
[ -e ritm_qgis/models ] || ln -s ../models ritm_qgis/models
[ -e ritm_qgis/algorithms ] || ln -s ../algorithms ritm_qgis/algorithms
LOG=$OUT/gpu.log
START=$SECONDS

# step NAME CAP_SECONDS CMD...: run with at most CAP seconds (less if the budget is running out);
# SIGINT first so a training run saves its weights, SIGKILL 15 s later.
step() {
    local name=$1 cap=$2 left
    shift 2
    [[ $name =~ ${ONLY:-.} ]] || return 0  # ONLY=regex: run just the matching steps
    left=$((BUDGET - (SECONDS - START) - 20))
    [ "$left" -lt "$cap" ] && cap=$left
    if [ "$cap" -lt 10 ]; then echo "=== $name skipped: out of time" | tee -a "$LOG"; return 1; fi
    echo "=== $name (cap ${cap}s, at $((SECONDS - START))s): $*" | tee -a "$LOG"
    timeout -s INT -k 15 "$cap" "$@" >"$WORK/$name.log" 2>&1
    local rc=$?
    tr '\r' '\n' <"$WORK/$name.log" | grep -v '^\[ *[0-9.]*%\]' >>"$LOG"
    echo "=== $name rc=$rc after $((SECONDS - START))s" | tee -a "$LOG"
    tr '\r' '\n' <"$WORK/$name.log" | grep -v '^\[ *[0-9.]*%\]' | tail -n "${TAIL:-12}"
    return $rc
}

nvidia-smi -L | tee -a "$LOG"
$PY -c "import torch, numpy, cv2; print('torch', torch.__version__, 'numpy', numpy.__version__, 'cv2', cv2.__version__, torch.cuda.get_device_name(0))" | tee -a "$LOG"

TAIL=25 step tests 90 $PY -m pytest -q -s -p no:cacheprovider tests/test_cuda.py
step bench_evaluate_fp32 100 $PY bench/bench_evaluate.py --device $DEV --arch hrnet18 --tiles 64 --clicks 5 --batch-size 32
step bench_evaluate_square 90 $PY bench/bench_evaluate.py --device $DEV --arch hrnet18 --tiles 64 --clicks 5 --batch-size 32 --zoom-square
step bench_evaluate_square_fp16 70 $PY bench/bench_evaluate.py --device $DEV --arch hrnet18 --tiles 64 --clicks 5 --batch-size 32 --zoom-square --precision fp16
step bench_train_step 80 $PY bench/bench_train_step.py --arch hrnet18s --batch-size 32 --crop 320,480 --steps 10 --warmup 3 --device $DEV
step bench_click_fp16 80 $PY bench/bench_click_latency.py --device $DEV --models hrnet18s,hrnet18 --modes none,fold,none+graphs,fold+graphs --precision fp16 --warmup-sessions 2

# Training, the paper's regimes at hrnet18s: natural images from scratch (DAVIS), then aerial
# fine-tuned from it and aerial from scratch (the training buildings at the chosen scale). The aerial
# runs have fixed step counts (FT_STEPS, SCRATCH_STEPS); the natural run gets what is left of the
# budget after them and EVAL_SECONDS for the evaluation, its steps sized from the throughput
# measured above (or RATE, images/s, when the bench ran in an earlier call). A run cut short by
# its time box still saves its weights, marked incomplete.
[ -n "${RATE:-}" ] || RATE=$(cat "$WORK/bench_train_step.log" 2>/dev/null | tr '\r' '\n' | $PY -c "
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.startswith('{')]
print(next((r['images_per_s'] for r in rows if r.get('variant') == 'project'), 60))" 2>/dev/null || echo 60)
FT_STEPS=${FT_STEPS:-100}
SCRATCH_STEPS=${SCRATCH_STEPS:-150}
seconds_for() { $PY -c "print(int($1 * 32 / ($RATE * 0.7)) + 25 if $1 else 0)"; }  # + start-up (data cache, workers)
FT_SECONDS=$(seconds_for $FT_STEPS)
SCRATCH_SECONDS=$(seconds_for $SCRATCH_STEPS)
LEFT=$((BUDGET - (SECONDS - START) - ${EVAL_SECONDS:-150} - FT_SECONDS - SCRATCH_SECONDS))
NAT_STEPS=$($PY -c "print(max(20, int($RATE * ($LEFT - 25) * 0.7 / 32) // 10 * 10))")
echo "train-step rate ${RATE} images/s -> natural ${NAT_STEPS} steps in ${LEFT}s, fine-tune ${FT_STEPS}, scratch ${SCRATCH_STEPS}" | tee -a "$LOG"

TRAIN="$PY -m ritm_qgis train --device $DEV --batch-size 32 --epoch-len 320 --workers 10 --no-resume"
AERIAL="--data grabcut:$DATA/aerial/train-zoom --crop-size 160,240 --aerial-aug"
step train_natural "$LEFT" $TRAIN --data "davis:$DATA/davis" --init none --arch hrnet18s --regime natural \
    --out "$WORK/natural-h18s" --epochs $((NAT_STEPS / 10)) --milestones $((NAT_STEPS * 85 / 1000)) \
    --crop-size 320,480 --lr 2e-3 --export-half "$OUT/natural-h18s.pth"
[ -f "$WORK/natural-h18s/last.pth" ] &&
step train_finetune "$FT_SECONDS" $TRAIN $AERIAL --init "$WORK/natural-h18s/last.pth" --regime finetune \
    --out "$WORK/aerial-finetuned-h18s" --epochs $((FT_STEPS / 10)) --milestones $((FT_STEPS * 85 / 1000)) \
    --lr 5e-4 --export-half "$OUT/aerial-finetuned-h18s.pth"
[ "$SCRATCH_STEPS" -gt 0 ] &&
step train_scratch "$SCRATCH_SECONDS" $TRAIN $AERIAL --init none --arch hrnet18s --regime scratch \
    --out "$WORK/aerial-scratch-h18s" --epochs $((SCRATCH_STEPS / 10)) --milestones $((SCRATCH_STEPS * 85 / 1000)) \
    --lr 2e-3 --export-half "$OUT/aerial-scratch-h18s.pth"

# a run stopped by its time box saved last.pth but wrote no fp16 copy: write it here
export_half() {
    [ -f "$OUT/$1.pth" ] || [ ! -f "$WORK/$1/last.pth" ] ||
        $PY -c "import sys; from ritm_qgis.models import save_half_copy; save_half_copy(*sys.argv[1:])" \
            "$WORK/$1/last.pth" "$OUT/$1.pth"
}
export_half natural-h18s
export_half aerial-finetuned-h18s
export_half aerial-scratch-h18s
MODELS=()  # the networks trained here first: they are what this run is for
for m in natural-h18s aerial-finetuned-h18s aerial-scratch-h18s; do [ -f "$OUT/$m.pth" ] && MODELS+=(--model "$OUT/$m.pth"); done
TINY=(--model natural-tiny --model aerial-finetuned-tiny)
for m in ${EXTRA_MODELS:-}; do TINY+=(--model "$m"); done  # e.g. other checkpoints carried along
MODELS+=("${TINY[@]}")
TAIL=30 step evaluate_test $((${EVAL_SECONDS:-150} - 45)) $PY -m ritm_qgis evaluate "${MODELS[@]}" --dataset "grabcut:$DATA/aerial/test" \
    --max-clicks 20 --thresholds 0.8,0.85,0.9 --out "$WORK/eval-test" --device $DEV --batch-size 32 --no-figures
TAIL=30 step evaluate_test_square 45 $PY -m ritm_qgis evaluate "${TINY[@]}" --dataset "grabcut:$DATA/aerial/test" \
    --max-clicks 20 --thresholds 0.8,0.85,0.9 --out "$WORK/eval-test-square" --device $DEV --batch-size 32 --no-figures \
    --zoom-in-size 400x400

for r in natural-h18s aerial-finetuned-h18s aerial-scratch-h18s; do
    [ -f "$WORK/$r/history.json" ] && cp "$WORK/$r/history.json" "$WORK/eval-test/history-$r.json" 2>/dev/null
done
[ -d "$WORK/eval-test" ] && tar czf "$OUT/results.tgz" -C "$WORK" eval-test $(cd "$WORK" && ls -d eval-test-square 2>/dev/null)
echo "total $((SECONDS - START))s" | tee -a "$LOG"
