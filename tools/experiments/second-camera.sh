#!/bin/sh
# DINO adaptation to a second camera (issue #16): does self-supervision on
# UNLABELLED photos of a new camera raise the k-NN and zero-shot accuracy
# of an AgriCLIP-form model on that camera, after the aligner is fitted
# again on the first camera's labels?  Not a CI test: it trains a ResNet-50.
#
#   tools/experiments/second-camera.sh [BUILD_DIR [WORK_DIR]]
#       (defaults build, BUILD_DIR/second-camera; env SEEDS="1 2", EPOCHS=10,
#        CROP=64, LOCAL=2, BATCH=16, ACCUMULATE=1, LR=0.008, PER_CLASS=40)
#
#   CROP 64: the leaves are 64 px, so DINO's crops are taken at their own
#   scale (global 64, local 27 px: train.c scales 96/224) rather than as
#   224-px upsampled blur, about 12 times cheaper; LR is --lr, per 256
#   images of a step (0.008 at batch 16: 5e-4 per step, AdamW's usual rate
#   for training from scratch; the default 5e-4 per 256 gives 3e-5, which
#   barely moves a random ResNet in a few hundred steps)
#
#   data     agriclip synth: camera 1 (DIR/eval) and camera 2 (DIR/finetune),
#            each split in halves by file: cam1-train (labels: the aligner,
#            the k-NN bank), cam1-test (control), cam2-unlabelled (DINO sees
#            these, without their tags), cam2-test (held out, measured)
#   text     a small CLIP trained by agriclip pretrain on the first camera's
#            captions: its text tower is the space the aligner maps into
#   model    agriclip-model.py: that CLIP + a ResNet-50 (torchvision init,
#            BatchNorm statistics of cam1-train) + a placeholder aligner
#   before   train --method aligner on cam1-train
#   DINO     train --method dino on cam2-unlabelled (no labels)
#   after    train --method aligner --adapter DINO on cam1-train (the same
#            labels as before; none of camera 2)
#   measure  evaluate --knn-bank cam1-train on cam2-test and cam1-test:
#            zero-shot ("adapted" column: the fitted aligner) and k-NN (k 20,
#            cosine, T 0.07, ResNet features), before and after, per seed
set -eu
build=${1:-build}
work=${2:-$build/second-camera}
agriclip=$build/cli/agriclip
here=$(cd "$(dirname "$0")" && pwd)
vocab=${AGC_SHARED_DIR:-$here/../../../shared}/clip-vocab
SEEDS=${SEEDS:-1 2}
EPOCHS=${EPOCHS:-10}
CROP=${CROP:-64}
LOCAL=${LOCAL:-2}
BATCH=${BATCH:-16}
ACCUMULATE=${ACCUMULATE:-1}
LR=${LR:-0.008}
PER_CLASS=${PER_CLASS:-40}
export XDG_CACHE_HOME=$work/cache
say() { printf '\n== %s\n' "$*"; }
mkdir -p "$work"

# half of each class's files (first: 0, second: 1) of $1 as links in $2
half() {
  [ -d "$2" ] && return 0
  mkdir -p "$2.tmp"
  [ -f "$1/labels.json" ] && cp "$1/labels.json" "$2.tmp/"
  for class in "$1"/*/; do
    name=$(basename "$class")
    mkdir -p "$2.tmp/$name"
    n=$(ls "$class" | wc -l)
    ls "$class" | sort | awk -v n="$n" -v h="$3" '(NR <= n / 2) == (h == 0)' |
      while read -r f; do ln -s "$(cd "$class" && pwd)/$f" "$2.tmp/$name/$f"; done
  done
  mv "$2.tmp" "$2"
}

say "data: two cameras, halves"
complete() { grep -qs "\"complete\": *true" "$1/.agriclip-synth"; }
complete "$work/leaves" || $agriclip synth --out "$work/leaves" --seed 2 --pretrain 1 \
  --eval-per-class "$PER_CLASS" --finetune-per-class "$PER_CLASS"
half "$work/leaves/eval" "$work/cam1-train" 0
half "$work/leaves/eval" "$work/cam1-test" 1
half "$work/leaves/finetune" "$work/cam2-unlabelled" 0
half "$work/leaves/finetune" "$work/cam2-test" 1
rm -f "$work/cam2-unlabelled/labels.json" # DINO needs no labels

say "text space: a small CLIP on the first camera's captions"
complete "$work/text-leaves" || $agriclip synth --out "$work/text-leaves" --seed 1 --size 32 \
  --pretrain 6000 --eval-per-class 10 --finetune-per-class 10
[ -d "$work/text-clip" ] || $agriclip pretrain --data "$work/text-leaves/pretrain" \
  --tokenizer "$vocab" --out "$work/text-clip" --image-size 32 --patch 8 --width 48 \
  --layers 2 --text-width 48 --text-layers 2 --embed-dim 32 --epochs 6 --batch 64 --seed 1
$agriclip evaluate --model "$work/text-clip" --data "$work/text-leaves/eval" \
  --data "$work/text-leaves/finetune" | tee "$work/text-clip.txt"

for seed in $SEEDS; do
  run=$work/seed-$seed
  mkdir -p "$run"
  say "seed $seed: the AgriCLIP-form model"
  [ -d "$run/model" ] || /usr/bin/python3 "$here/agriclip-model.py" "$work/text-clip" \
    "$work/cam1-train" "$run/model" --seed "$seed"

  say "seed $seed: before: the aligner on camera 1's labels"
  [ -f "$run/before.safetensors" ] || $agriclip train --model "$run/model" \
    --data "$work/cam1-train" --method aligner --seed "$seed" --out "$run/before.safetensors"

  say "seed $seed: DINO on camera 2's unlabelled photos ($EPOCHS epochs, crops $CROP px)"
  [ -f "$run/dino.safetensors" ] || /usr/bin/time -f "%e s wall, %U s user, %S s sys" \
    -o "$run/dino.time" $agriclip train --model "$run/model" --data "$work/cam2-unlabelled" \
    --method dino --seed "$seed" --epochs "$EPOCHS" --crop-size "$CROP" \
    --local-crops "$LOCAL" --batch-size "$BATCH" --accumulate "$ACCUMULATE" \
    --lr "$LR" --checkpoint-every 1 --out "$run/dino.safetensors"
  cat "$run/dino.time"

  say "seed $seed: after: the aligner again, on the DINO ResNet, camera 1's labels"
  [ -f "$run/after.safetensors" ] || $agriclip train --model "$run/model" \
    --data "$work/cam1-train" --method aligner --seed "$seed" \
    --adapter "$run/dino.safetensors" --out "$run/after.safetensors"

  say "seed $seed: measure (adapted: the fitted aligner; k-NN: bank cam1-train)"
  for stage in before after; do
    $agriclip evaluate --model "$run/model" --data "$work/cam2-test" --data "$work/cam1-test" \
      --knn-bank "$work/cam1-train" --adapter "$run/$stage.safetensors" --format json \
      > "$run/$stage.json"
    $agriclip evaluate --model "$run/model" --data "$work/cam2-test" --data "$work/cam1-test" \
      --knn-bank "$work/cam1-train" --adapter "$run/$stage.safetensors"
  done
done

say "summary"
/usr/bin/python3 "$here/second-camera-table.py" "$work" $SEEDS
