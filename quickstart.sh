#!/usr/bin/env bash
# The whole pipeline on the embedded synthetic KITTI, from a fresh clone: install, generate the data and
# its depth hints, train the small preset, evaluate, predict one frame. About seven minutes on 2 CPU cores.
# Everything is written under this checkout (data/synthetic_kitti, logs/quickstart, outputs/quickstart),
# except the compiled network predict.py caches in ~/.cache/mlda-net (or $MLDA_CACHE_DIR).
#
# Environment (all optional):
#   PYTHON                   the interpreter (python3)
#   QUICKSTART_TRAIN_ARGS    extra train.py arguments, appended after the preset's (flags given win), e.g.
#                            QUICKSTART_TRAIN_ARGS="--num_epochs 1 --height 32 --width 64" for a shorter run
#   QUICKSTART_SKIP_INSTALL  1: leave the Python environment as it is (no pip), e.g. where it is set up already
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
read -r -a TRAIN_ARGS <<< "${QUICKSTART_TRAIN_ARGS:-}"

if [ "${QUICKSTART_SKIP_INSTALL:-0}" != 1 ]; then
    # The CPU wheel only where no Paddle is installed, so a GPU build is never replaced.
    "$PY" -c "import paddle" 2>/dev/null || "$PY" -m pip install --quiet "paddlepaddle==3.3.1"
    "$PY" -m pip install --quiet -r requirements.txt
fi

# data + hints on first use, then training
"$PY" train.py --dataset synthetic --model_name quickstart ${TRAIN_ARGS[@]+"${TRAIN_ARGS[@]}"}
WEIGHTS=logs/quickstart/models/best
"$PY" test.py --load_weights_folder "$WEIGHTS" --data_path data/synthetic_kitti \
    --eval_split data/synthetic_kitti/splits --eval_stereo
read -r DRIVE FRAME _ < data/synthetic_kitti/splits/test_files.txt
"$PY" predict.py --load_weights_folder "$WEIGHTS" --output_dir outputs/quickstart \
    --color_path "data/synthetic_kitti/$DRIVE/image_02/data/$(printf '%010d' "$FRAME").jpg"
echo "quick start done: weights in $WEIGHTS, prediction in outputs/quickstart"
