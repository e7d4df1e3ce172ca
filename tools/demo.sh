#!/bin/sh
# The main job on a fresh machine: installs the dependencies, builds
# agriclip and labels photos with the PlantVillage label set.
#
#   tools/demo.sh                         generated model and photos (see below)
#   tools/demo.sh MODEL_DIR IMAGE_OR_FOLDER...   a real model on your photos
#
# Until the project has trained a model of its own, the default model is a
# small CLIP with RANDOM, UNTRAINED weights, generated on the spot: the whole
# pipeline runs (tokenizer, preprocessing, encoders, zero-shot
# classification) but its labels are meaningless.
set -eu
cd "$(dirname "$0")/.."
tools/install-deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

if [ $# -eq 0 ]; then
  work=build/demo
  /usr/bin/python3 tools/make-demo-model.py "$work" "${AGC_SHARED_DIR:-../shared}"
  echo "NOTE: $work/random-clip has random, untrained weights: the labels below" \
       "demonstrate the pipeline, not a trained model." >&2
  set -- "$work/random-clip" "$work/photos"
elif [ $# -lt 2 ]; then
  echo "usage: tools/demo.sh [MODEL_DIR IMAGE_OR_FOLDER...]" >&2
  exit 2
fi
model=$1
shift
exec build/cli/agriclip classify --model "$model" --labels models/labels/plantvillage.json \
  --top 3 "$@"
