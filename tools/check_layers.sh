#!/usr/bin/env bash
# tools/check_layers.sh - the include-order check of docs/architecture.md (the CTest test `layers`).
# Reads the layer table of docs/architecture.md (rows "| N | name | `module`, ... | ... |"), maps every file of src/
# (its subfolders included: src/cli/) and wasm/et_wasm.c to its module (every file of src/kernels/ -> kernels,
# cli_*.c -> cli), and fails when
#   - a file includes "x.h" of a module in a HIGHER layer than its own (a lower layer may not know a higher one),
#   - a file belongs to no module of the table (place new modules in docs/architecture.md),
#   - a header named in an #include "..." is neither a module of the table nor third-party (cJSON.h),
#   - a file outside src/kernels/ includes one of its internal headers (all but kernels.h and kernels_int8.h),
#   - modules include each other in a cycle (even within one layer; e.g. bert.h <-> moe.h), found by tsort,
#   - JSON text is parsed with cJSON_Parse* anywhere but src/json.c (et_json_parse is the one entry: it tells
#     out of memory from malformed text).
# Usage: tools/check_layers.sh [ROOT]   (default: the repository of this script). Prints every violation.
set -u
ROOT=${1:-$(cd "$(dirname "$0")/.." && pwd)}
DOC="$ROOT/docs/architecture.md"
[ -f "$DOC" ] || { echo "check_layers: $DOC missing"; exit 2; }
declare -A LAYER NAME
while IFS='|' read -r _ num name mods _; do
  num=${num// /}
  [[ $num =~ ^[0-9]+$ ]] || continue
  NAME[$num]=$(echo "$name" | sed 's/^ *//; s/ *$//')
  for m in $(echo "$mods" | grep -o '`[a-z0-9_]*`' | tr -d '`'); do
    [ -n "${LAYER[$m]:-}" ] && { echo "check_layers: module '$m' is in two layers of $DOC"; exit 2; }
    LAYER[$m]=$num
  done
done < "$DOC"
[ ${#LAYER[@]} -gt 0 ] || { echo "check_layers: no layer table found in $DOC"; exit 2; }
THIRD_PARTY=" cJSON.h "
KERNELS_PUBLIC=" kernels.h kernels_int8.h "
module_of() { # file path (or an included name) -> module
  case $1 in "$ROOT"/src/kernels/*) echo kernels; return ;; esac
  [ -f "$ROOT/src/kernels/${1##*/}" ] && [ "${1#*/}" = "$1" ] && { echo kernels; return; }
  local b=${1##*/}
  b=${b%.*}
  case $b in
    cli_*) echo cli ;;
    *) echo "$b" ;;
  esac
}
bad=0 nfiles=0 nincl=0
EDGES=$(mktemp)
trap 'rm -f "$EDGES"' EXIT
for f in $(find "$ROOT"/src -name '*.[ch]' | sort) "$ROOT"/wasm/et_wasm.c; do
  [ -f "$f" ] || continue
  rel=${f#"$ROOT"/}
  m=$(module_of "$f")
  lf=${LAYER[$m]:-}
  if [ -z "$lf" ]; then
    echo "$rel: module '$m' is in no layer of docs/architecture.md"
    bad=$((bad + 1)); continue
  fi
  nfiles=$((nfiles + 1))
  while IFS=: read -r line inc; do
    nincl=$((nincl + 1))
    case $THIRD_PARTY in *" $inc "*) continue ;; esac
    mi=$(module_of "$inc")
    li=${LAYER[$mi]:-}
    [ "$mi" = "$m" ] || echo "$m $mi" >> "$EDGES"
    if [ "$mi" = kernels ] && [ "$m" != kernels ]; then
      case $KERNELS_PUBLIC in *" $inc "*) ;; *)
        echo "$rel:$line: includes \"$inc\", internal to src/kernels/ (outside it use kernels.h, kernels_int8.h)"
        bad=$((bad + 1)) ;;
      esac
    fi
    if [ -z "$li" ]; then
      echo "$rel:$line: includes \"$inc\", which is no module of docs/architecture.md"
      bad=$((bad + 1))
    elif [ "$li" -gt "$lf" ]; then
      echo "$rel:$line: $m (layer $lf, ${NAME[$lf]}) includes \"$inc\" of $mi (layer $li, ${NAME[$li]}): a lower layer may not include a higher one"
      bad=$((bad + 1))
    fi
  done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | sed 's/^\([0-9]*\):[^"]*"\([^"]*\)".*/\1:\2/')
done
# tsort reads "a b" pairs (a includes b) and reports every loop on stderr
loops=$(sort -u "$EDGES" | tsort 2>&1 >/dev/null)
if [ -n "$loops" ]; then
  echo "include cycle between modules (tsort):"
  echo "$loops" | sed 's/^/  /'
  bad=$((bad + 1))
fi
while IFS= read -r hit; do
  loc=${hit#"$ROOT"/}
  echo "${loc%%:[^0-9]*}: parses JSON with cJSON directly; use et_json_parse (json.h)"
  bad=$((bad + 1))
done < <(grep -rn --include='*.c' 'cJSON_Parse' "$ROOT"/src "$ROOT"/wasm/et_wasm.c 2>/dev/null | grep -v "^$ROOT/src/json.c:")
if [ $bad -gt 0 ]; then echo "check_layers: $bad violation(s)"; exit 1; fi
echo "check_layers: $nfiles files, $nincl includes, ${#LAYER[@]} modules in ${#NAME[@]} layers: ok"
