#!/usr/bin/env bash
# The whole pipeline on the embedded synthetic KITTI, from a fresh clone: install, generate the data and
# its depth hints, train the small preset, evaluate, predict one frame. About ten minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}

# The CPU wheel only where no Paddle is installed, so a GPU build is never replaced.
"$PY" -c "import paddle" 2>/dev/null || "$PY" -m pip install --quiet "paddlepaddle==3.3.1"
"$PY" -m pip install --quiet -r requirements.txt

"$PY" train.py --dataset synthetic --model_name quickstart          # data + hints on first use, then training
WEIGHTS=logs/quickstart/models/best
"$PY" test.py --load_weights_folder "$WEIGHTS" --data_path data/synthetic_kitti \
    --eval_split data/synthetic_kitti/splits --eval_stereo
read -r DRIVE FRAME _ < data/synthetic_kitti/splits/test_files.txt
"$PY" predict.py --load_weights_folder "$WEIGHTS" --output_dir outputs/quickstart \
    --color_path "data/synthetic_kitti/$DRIVE/image_02/data/$(printf '%010d' "$FRAME").jpg"
echo "quick start done: weights in $WEIGHTS, prediction in outputs/quickstart"
