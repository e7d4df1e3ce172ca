#!/bin/sh
# The recipe of README's "Adapting AgriCLIP to your photos", end to end on a
# tiny model and drawn leaves, in about a minute on 2 cores:
#
#   tools/adapt-recipe.sh [BUILD_DIR [WORK_DIR]]     (default build, build/adapt-recipe)
#
#   0 a model      a tiny CLIP pretrained on the first camera's captions
#                  (stands in for a released CLIP)
#   1 captions     tagged photos of the second camera -> image-text pairs
#   2 contrastive  train --method contrastive: the last block of both towers
#                  and the logit scale on those pairs
#   3 DINO         train --method dino trains an AgriCLIP model's ResNet-50,
#                  which this tiny ViT CLIP has not: skipped
#   4 adapt        finetune the image tower on the second camera stacked on
#                  the contrastive adapter, then a probe stacked on both (on an
#                  AgriCLIP model: --method aligner on the dino adapter)
#   5 evaluate     zero-shot and adapted accuracy on both cameras, and the mean
set -eu
build=${1:-build}
work=${2:-$build/adapt-recipe}
agriclip=$build/cli/agriclip
vocab=${AGC_SHARED_DIR:-$(dirname "$0")/../../shared}/clip-vocab
export XDG_CACHE_HOME=$work/cache
say() { printf '\n== %s\n' "$*"; }
rm -rf "$work"
mkdir -p "$work"

say "drawn leaves: a captioned first camera, tagged test leaves, a tagged second camera"
$agriclip synth --out "$work/leaves" --seed 1 --size 32 --pretrain 3000 \
  --eval-per-class 10 --finetune-per-class 20

say "0 a tiny CLIP pretrained on the first camera's captions (stands in for a released CLIP)"
$agriclip pretrain --data "$work/leaves/pretrain" --tokenizer "$vocab" --out "$work/model" \
  --image-size 32 --patch 8 --width 48 --layers 2 --text-width 48 --text-layers 2 \
  --embed-dim 32 --epochs 6 --batch 64 --seed 1

say "1 captions from the second camera's tags"
$agriclip captions --data "$work/leaves/finetune" --out "$work/pairs" --per-image 3 --seed 1

say "2 contrastive training of both towers' last block on the new pairs"
$agriclip train --model "$work/model" --data "$work/pairs" --out "$work/contrastive.safetensors" \
  --method contrastive --blocks 1 --epochs 10 --lr 0.0003 --batch-size 32

say "3 DINO self-supervised adaptation (train --method dino): for AgriCLIP models, skipped"

say "4 finetune the image tower on the second camera on top of it, then a probe on both"
$agriclip train --model "$work/model" --data "$work/leaves/finetune" --out "$work/tower.safetensors" \
  --adapter "$work/contrastive.safetensors" --method finetune --blocks 1 --epochs 10 --lr 0.0003
$agriclip train --model "$work/model" --data "$work/leaves/finetune" --out "$work/adapted.safetensors" \
  --adapter "$work/tower.safetensors" --epochs 30

say "5 zero-shot and adapted accuracy on both cameras"
$agriclip evaluate --model "$work/model" --data "$work/leaves/eval" \
  --data "$work/leaves/finetune" --adapter "$work/adapted.safetensors"
