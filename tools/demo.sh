#!/bin/sh
# The main job on a fresh machine: installs the dependencies, builds
# agriclip, and runs the whole pipeline on the embedded default.
#
#   tools/demo.sh                                 the demonstration (below)
#   tools/demo.sh MODEL_DIR IMAGE_OR_FOLDER...    a real model on your photos
#                                                 (PlantVillage labels)
#
# The demonstration needs no download: it draws a synthetic set of leaf
# photos with captions (agriclip synth), trains a small CLIP on it from
# scratch (agriclip pretrain, a few minutes; kept in build/demo for the
# next run), measures its zero-shot accuracy on held-out leaves, labels a
# few, then trains an adapter on tagged photos from a different "camera"
# and labels again.  It is a DEMONSTRATION model: it knows drawn leaves, not
# real crops.
set -eu
cd "$(dirname "$0")/.."
tools/install-deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
agriclip=build/cli/agriclip

if [ $# -gt 0 ]; then
  [ $# -ge 2 ] || { echo "usage: tools/demo.sh [MODEL_DIR IMAGE_OR_FOLDER...]" >&2; exit 2; }
  model=$1
  shift
  exec $agriclip classify --model "$model" --labels plantvillage --top 3 "$@"
fi

work=build/demo
vocab=${AGC_SHARED_DIR:-../shared}/clip-vocab
model=$work/leaves-clip
say() { printf '\n== %s\n' "$*"; }

say "Drawing the synthetic leaf set (training captions, held-out test leaves, a second camera)"
complete() { grep -qs "\"complete\": *true" "$1/.agriclip-synth"; }
complete $work/leaves || $agriclip synth --out $work/leaves --seed 1
# new photos from the second camera, never used for training (another seed)
complete $work/new-photos ||
  $agriclip synth --out $work/new-photos --seed 2 --pretrain 1 --eval-per-class 1 \
    --finetune-per-class 5

if [ ! -d $model ]; then
  say "Training a small CLIP from scratch on $(wc -l < $work/leaves/pretrain/captions.jsonl) captioned leaves"
  $agriclip pretrain --data $work/leaves/pretrain --tokenizer "$vocab" --out $model
fi
echo "NOTE: $model is a demonstration model trained on drawn leaves, not on real photos."

say "Zero-shot accuracy on held-out leaves, from the class prompts alone"
$agriclip evaluate --model $model --data $work/leaves/eval

labels=$work/leaves/eval/labels.json
photos=$(find $work/new-photos/finetune -name '000.png' | sort | head -n 4)
say "Zero-shot labels of a few photos from a second camera (colour cast, blur, noise)"
$agriclip classify --model $model --labels $labels --top 2 $photos
say "Zero-shot accuracy on 60 photos from that camera"
$agriclip evaluate --model $model --data $work/new-photos/finetune

say "Training an adapter on 480 tagged photos from that camera"
# probe: a new head on the image embeddings, from the zero-shot classes
# (--method finetune trains the last vision blocks instead)
$agriclip train --model $model --data $work/leaves/finetune --out $work/second-camera.adapter \
  --restart

say "The same photos, labelled again with the fine-tuned adapter"
$agriclip classify --model $model --adapter $work/second-camera.adapter --top 2 $photos
say "Accuracy on the 60 photos from that camera, with the adapter"
$agriclip evaluate --model $model --adapter $work/second-camera.adapter \
  --data $work/new-photos/finetune
