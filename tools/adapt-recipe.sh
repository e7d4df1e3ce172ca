#!/bin/sh
# AgriCLIP's recipe (README, "Adapting AgriCLIP to your photos") in one
# command, on an AgriCLIP model and your tagged folder:
#
#   tools/adapt-recipe.sh --model AGRICLIP --data TAGGED --out WORK
#                         [--photos UNLABELLED] [--eval TAGGED2]... [--agriclip CLI]
#                         [--dino "OPTIONS"] [--aligner "OPTIONS"] [--contrastive "OPTIONS"]
#
#   1 captions     TAGGED -> WORK/pairs (image-text pairs, prompt generation by domain)
#   2 contrastive  the model's towers on WORK/pairs (train --method contrastive),
#                  when this agriclip has it (train --help lists it); skipped otherwise
#   3 DINO         the ResNet-50 by self-distillation on UNLABELLED (default TAGGED:
#                  tags are not needed) -> WORK/dino.safetensors
#   4 aligner      refitted on TAGGED on top of the DINO adapter (stacked:
#                  WORK/adapted.safetensors holds both, usable alone)
#   5 evaluate     zero-shot accuracy before and adapted accuracy after, per folder
#                  (TAGGED and each --eval) and their mean
#
# --dino, --aligner and --contrastive pass more options to that stage's
# `agriclip train` (e.g. --dino "--epochs 10 --batch-size 8 --accumulate 4").
# Stops at the first stage that fails (a contrastive stage that fails is
# reported and left out).  Adapters are written to WORK; an interrupted stage
# continues from its checkpoint when the command is run again.
set -eu

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

agriclip=${AGRICLIP:-agriclip}
model= data= work= photos= evals= dino_opts= aligner_opts= contrastive_opts=
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || usage
  case $1 in
    --model) model=$2 ;;
    --data) data=$2 ;;
    --out) work=$2 ;;
    --photos) photos=$2 ;;
    --eval) evals="$evals --data $2" ;;
    --agriclip) agriclip=$2 ;;
    --dino) dino_opts=$2 ;;
    --aligner) aligner_opts=$2 ;;
    --contrastive) contrastive_opts=$2 ;;
    *) usage ;;
  esac
  shift 2
done
[ -n "$model" ] && [ -n "$data" ] && [ -n "$work" ] || usage
photos=${photos:-$data}
say() { printf '\n== %s\n' "$*"; }
mkdir -p "$work"

say "1 captions: $data -> $work/pairs"
"$agriclip" captions --data "$data" --out "$work/pairs" --per-image 5 --seed 1

base=
if "$agriclip" train --help | grep -q 'contrastive'; then
  say "2 contrastive training of the model's towers on the pairs"
  # shellcheck disable=SC2086 # the options are words
  if "$agriclip" train --method contrastive --model "$model" --data "$work/pairs" \
       --out "$work/contrastive.safetensors" $contrastive_opts; then
    base="--adapter $work/contrastive.safetensors"
  else
    say "2 contrastive: failed (above); the recipe goes on without it"
  fi
else
  say "2 contrastive: not in this agriclip (train --method contrastive): skipped"
fi

say "3 DINO self-supervision of the ResNet-50 on $photos"
# shellcheck disable=SC2086
"$agriclip" train --method dino --model "$model" --data "$photos" \
  --out "$work/dino.safetensors" $base $dino_opts

say "4 the aligner on top of the DINO adapter, on $data"
# shellcheck disable=SC2086
"$agriclip" train --method aligner --model "$model" --data "$data" \
  --adapter "$work/dino.safetensors" --out "$work/adapted.safetensors" $aligner_opts

say "5 zero-shot (before) and adapted (after) accuracy"
# shellcheck disable=SC2086
"$agriclip" evaluate --model "$model" --data "$data" $evals \
  --adapter "$work/adapted.safetensors"
