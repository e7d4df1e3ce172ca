# bash completion for agriclip.  Commands and options are read from
# `agriclip --help` and `agriclip COMMAND --help`, so they never go stale;
# --labels also offers the ids of the installed label sets.
_agriclip_label_ids ()
{
  local dir IFS=:
  for dir in ${AGRICLIP_LABELS_PATH:-} "${XDG_DATA_HOME:-$HOME/.local/share}/agriclip/labels" \
             $(for d in ${XDG_DATA_DIRS:-/usr/local/share:/usr/share}; do printf '%s:' "$d/agriclip/labels"; done); do
    [ -d "$dir" ] || continue
    for f in "$dir"/*.json; do
      [ -e "$f" ] && f=${f##*/} && printf '%s\n' "${f%.json}"
    done
  done
}

_agriclip ()
{
  local cur prev words cword
  _init_completion -s || return

  local i command=""
  for (( i = 1; i < cword; i++ )); do
    case ${words[i]} in
      --threads) (( i++ )) ;;
      -*) ;;
      *) command=${words[i]}; break ;;
    esac
  done

  if [[ -z $command ]]; then
    if [[ $cur == -* ]]; then
      COMPREPLY=( $(compgen -W '--help --version --threads' -- "$cur") )
    else
      COMPREPLY=( $(compgen -W "$(LC_ALL=C "$1" --help 2>/dev/null |
        awk '/^Commands:/ { on = 1; next } on && NF == 0 { exit } on { print $1 }')" -- "$cur") )
    fi
    return
  fi

  case $prev in
    -l|--labels)
      COMPREPLY=( $(compgen -W "$(_agriclip_label_ids | sort -u)" -- "$cur") )
      _filedir json
      return ;;
    -m|--model|-d|--data|-o|--out|--tokenizer|--dir)
      _filedir -d
      return ;;
    -a|--adapter|--resnet|--pixels|--prompts)
      _filedir
      return ;;
    -f|--format)
      COMPREPLY=( $(compgen -W 'csv jsonl text json' -- "$cur") )
      return ;;
    --method)
      COMPREPLY=( $(compgen -W 'probe finetune aligner dino contrastive' -- "$cur") )
      return ;;
    --threads|-t|-k|--top|-b|--batch|-n|--iterations|--seed|--epochs|--label|--template|--text|--per-image)
      return ;;
  esac
  [[ $split == true ]] && return

  if [[ $cur == -* ]]; then
    COMPREPLY=( $(compgen -W "$(LC_ALL=C "$1" "$command" --help 2>/dev/null |
      grep -oE -- '--[a-z0-9-]+' | sort -u) --threads" -- "$cur") )
    [[ ${COMPREPLY-} == *= ]] && compopt -o nospace
  elif [[ $command == models ]]; then
    COMPREPLY=( $(compgen -W 'list show pull' -- "$cur") )
  else
    _filedir
  fi
} && complete -F _agriclip agriclip
