#!/bin/sh
# DINO adaptation to a second camera (issue #16): does self-supervision on
# UNLABELLED photos of a new camera raise the k-NN and zero-shot accuracy
# of an AgriCLIP-form model on that camera, after the aligner is fitted
# again on the first camera's labels?  Not a CI test: it trains a ResNet-50.
#
#   tools/experiments/second-camera.sh [BUILD_DIR [WORK_DIR]]
#       (defaults build, BUILD_DIR/second-camera; env and defaults below)
#
#   SIZE 64        the leaves' own scale: the model's agriclip.json says
#                  "image_size": 64, so the ResNet is evaluated at 64 px and
#                  DINO crops at 64 (local crops 27 px: 96/224 of it)
#   PER_CLASS 80   photos per class and camera (halves: 40 per class, 480
#                  photos per split)
#   BACKBONE_PER_CLASS 150  > 0: the ResNet-50 is first trained with the tags
#                  of that many camera-1 photos per class (their own synth
#                  seed, none of the photos below): a stand-in for a backbone
#                  pretrained on the domain; BACKBONE_EPOCHS (12) its epochs;
#                  0: torchvision's random initialisation
#   DOMAIN_EPOCHS  > 0: DINO on camera 1's photos first (AgriCLIP's domain
#                  pretraining; labels unused), and that ResNet is "before";
#                  0: "before" is the ResNet-50 above (trained or random)
#   EPOCHS 10      DINO on camera 2's unlabelled photos
#   MOMENTUM, TEACHER_TEMP, OUT_DIM, LR   --teacher-momentum, --teacher-temp,
#                  --out-dim, --lr (per 256 images): train --method dino's
#                  defaults, DINO's reference (0.996, 0.04, 4096, 0.0005);
#                  the runs from a random ResNet-50 needed a sharper teacher
#                  and a higher rate (docs/second-camera.md, "Earlier runs")
#
#   data     agriclip synth: camera 1 (DIR/eval) and camera 2 (DIR/finetune),
#            each split in halves by file: cam1-train (labels: the aligner,
#            the k-NN bank), cam1-test (control), cam2-unlabelled (DINO sees
#            these, without their tags), cam2-test (held out, measured)
#   text     a small CLIP trained by agriclip pretrain on the first camera's
#            captions: its text tower is the space the aligner maps into
#   model    agriclip-model.py: that CLIP + a ResNet-50 (trained on the
#            backbone photos' tags, or random; BatchNorm statistics of
#            cam1-train at SIZE) + a placeholder
#            aligner; with DOMAIN_EPOCHS, its ResNet replaced by the one DINO
#            trained on cam1-train's photos (base/)
#   before   train --method aligner on cam1-train
#   DINO     train --method dino on cam2-unlabelled (no labels)
#   after    train --method aligner --adapter DINO on cam1-train (the same
#            labels as before; none of camera 2)
#   control  bn-model: the model's ResNet with the BatchNorm statistics of
#            cam2-unlabelled and no training (batchnorm-only.py), its aligner
#            fitted on cam1-train: how much of "after" that alone gives
#   measure  evaluate --knn-bank cam1-train on cam2-test and cam1-test:
#            zero-shot ("adapted" column: the fitted aligner) and k-NN (k 20,
#            cosine, T 0.07, ResNet features), before and after, per seed;
#            and k-NN as DINO evaluates it: bank = the photos DINO trained
#            on with their tags (cam2-bank: used only to measure), query
#            cam2-test
set -eu
build=${1:-build}
work=${2:-$build/second-camera}
agriclip=$build/cli/agriclip
here=$(cd "$(dirname "$0")" && pwd)
vocab=${AGC_SHARED_DIR:-$here/../../../shared}/clip-vocab
SEEDS=${SEEDS:-1 2}
SIZE=${SIZE:-64}
DOMAIN_EPOCHS=${DOMAIN_EPOCHS:-0}
EPOCHS=${EPOCHS:-10}
MOMENTUM=${MOMENTUM:-0.996}
TEACHER_TEMP=${TEACHER_TEMP:-0.04}
OUT_DIM=${OUT_DIM:-4096}
LOCAL=${LOCAL:-2}
BATCH=${BATCH:-16}
ACCUMULATE=${ACCUMULATE:-1}
LR=${LR:-0.0005}
PER_CLASS=${PER_CLASS:-80}
BACKBONE_PER_CLASS=${BACKBONE_PER_CLASS:-150}
BACKBONE_EPOCHS=${BACKBONE_EPOCHS:-12}
# train --method dino with the settings above: $1 DATA, $2 OUT, $3 EPOCHS, $4 SEED, then
# more options; its times in OUT without .safetensors, .time
dino() {
  dino_data=$1 dino_out=$2 dino_epochs=$3 dino_seed=$4
  shift 4
  [ -f "$dino_out" ] || /usr/bin/time -f "%e s wall, %U s user, %S s sys" \
    -o "${dino_out%.safetensors}.time" $agriclip train --method dino --data "$dino_data" \
    --out "$dino_out" --epochs "$dino_epochs" --seed "$dino_seed" --local-crops "$LOCAL" \
    --batch-size "$BATCH" --accumulate "$ACCUMULATE" --lr "$LR" --out-dim "$OUT_DIM" \
    --teacher-momentum "$MOMENTUM" --teacher-temp "$TEACHER_TEMP" --checkpoint-every 1 "$@"
  cat "${dino_out%.safetensors}.time"
}
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
half "$work/leaves/finetune" "$work/cam2-bank" 0 # the same photos, tagged: only measured
backbone=""
if [ "$BACKBONE_PER_CLASS" -gt 0 ]; then
  complete "$work/backbone-leaves" || $agriclip synth --out "$work/backbone-leaves" --seed 3 \
    --pretrain 1 --eval-per-class "$BACKBONE_PER_CLASS" --finetune-per-class 1
  backbone="--backbone-data $work/backbone-leaves/eval --backbone-epochs $BACKBONE_EPOCHS"
fi

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
  say "seed $seed: the AgriCLIP-form model ($SIZE px)"
  [ -d "$run/model" ] || /usr/bin/python3 "$here/agriclip-model.py" "$work/text-clip" \
    "$work/cam1-train" "$run/model" --seed "$seed" --image-size "$SIZE" $backbone
  model=$run/model
  if [ "$DOMAIN_EPOCHS" -gt 0 ]; then
    say "seed $seed: domain pretraining: DINO on camera 1's photos ($DOMAIN_EPOCHS epochs)"
    dino "$work/cam1-train" "$run/domain.safetensors" "$DOMAIN_EPOCHS" "$seed" --model "$model"
    # the same folder, its ResNet the domain-pretrained one (the adapter holds
    # torchvision's names: a ResNet-50 checkpoint as it is)
    if [ ! -d "$run/base" ]; then
      mkdir "$run/base.tmp"
      for f in "$model"/*; do ln -s "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" "$run/base.tmp/"; done
      rm -f "$run/base.tmp/agriclip.json" "$run/base.tmp/Weights"
      mkdir "$run/base.tmp/Weights"
      ln -s "$(cd "$model/Weights" && pwd)/Agri_Dino_aligner_DPT_CPT.pth" "$run/base.tmp/Weights/"
      ln -s "$(cd "$run" && pwd)/domain.safetensors" "$run/base.tmp/Weights/dino_pretrain.safetensors"
      printf '{"family": "agriclip", "image_size": %d, "image_encoder": {"weights": "Weights/dino_pretrain.safetensors"}}\n' \
        "$SIZE" > "$run/base.tmp/agriclip.json"
      mv "$run/base.tmp" "$run/base"
    fi
    model=$run/base
  fi

  say "seed $seed: before: the aligner on camera 1's labels"
  [ -f "$run/before.safetensors" ] || $agriclip train --model "$model" \
    --data "$work/cam1-train" --method aligner --seed "$seed" --out "$run/before.safetensors"

  say "seed $seed: DINO on camera 2's unlabelled photos ($EPOCHS epochs)"
  dino "$work/cam2-unlabelled" "$run/dino.safetensors" "$EPOCHS" "$seed" --model "$model"

  say "seed $seed: after: the aligner again, on the DINO ResNet, camera 1's labels"
  [ -f "$run/after.safetensors" ] || $agriclip train --model "$model" \
    --data "$work/cam1-train" --method aligner --seed "$seed" \
    --adapter "$run/dino.safetensors" --out "$run/after.safetensors"

  say "seed $seed: control: camera 2's BatchNorm statistics alone, no training"
  [ -d "$run/bn-model" ] || /usr/bin/python3 "$here/batchnorm-only.py" "$model" \
    "$work/cam2-unlabelled" "$run/bn-model"
  [ -f "$run/bn.safetensors" ] || $agriclip train --model "$run/bn-model" \
    --data "$work/cam1-train" --method aligner --seed "$seed" --out "$run/bn.safetensors"

  say "seed $seed: measure (adapted: the fitted aligner; k-NN: bank cam1-train, then cam2-bank)"
  for stage in before bn after; do
    stage_model=$model
    [ "$stage" = bn ] && stage_model=$run/bn-model
    $agriclip evaluate --model "$stage_model" --data "$work/cam2-test" --data "$work/cam1-test" \
      --knn-bank "$work/cam1-train" --adapter "$run/$stage.safetensors" --format json \
      > "$run/$stage.json"
    $agriclip evaluate --model "$stage_model" --data "$work/cam2-test" --data "$work/cam1-test" \
      --knn-bank "$work/cam1-train" --adapter "$run/$stage.safetensors"
    $agriclip evaluate --model "$stage_model" --data "$work/cam2-test" --knn-bank "$work/cam2-bank" \
      --adapter "$run/$stage.safetensors" --format json > "$run/$stage-bank2.json"
  done
done

say "summary"
/usr/bin/python3 "$here/second-camera-table.py" "$work" $SEEDS
