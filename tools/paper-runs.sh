#!/usr/bin/env bash
# The runs at the paper's own scale that docs/reproduction.md reports, one after another, at
# low priority. Run it again to continue: finished configurations are not run again, and an
# interrupted one resumes from its last finished epoch.
#
#   tools/paper-runs.sh [DATA_DIR] [OUT_ROOT]     # defaults: data, runs/experiments
#
# Each folder starts from the committed results (docs/results/NAME.json) where there are some,
# so that only what is missing from them is trained. A finished run is added to the docs by
# copying OUT_ROOT/NAME/results.json to docs/results/NAME.json (docs/reproduction.md says how).
set -u
cd "$(dirname "$0")/.."
data=${1:-data}
root=${2:-runs/experiments}
TAUS=(0.5 1 5 10 50)
CELLS=()
for k in 3 5; do for tau in "${TAUS[@]}"; do CELLS+=("cg${k}_tau${tau}"); done; done

start_from() {  # start_from NAME [OTHER...]: OUT_ROOT/NAME begins with the first committed
    local out="$root/$1" stem  # docs/results/STEM.json of NAME, OTHER, ...
    [ -e "$out/results.json" ] && return
    for stem in "$@"; do
        if [ -e "docs/results/$stem.json" ]; then
            mkdir -p "$out" && cp "docs/results/$stem.json" "$out/results.json"
            return
        fi
    done
}
run() {  # run NAME EXPERIMENT OPTIONS...: one experiment into OUT_ROOT/NAME
    local name=$1; shift
    echo "=== $(date -u +%FT%TZ) $name: $*"
    nice -n 10 python -m penaltyprop experiment "$@" --data-dir "$data" --out "$root/$name"
    local status=$?
    echo "=== $(date -u +%FT%TZ) $name: exit $status"
    [ "$status" -ne 130 ] || exit 130  # interrupted (Ctrl-C): stop here, not only this run
}

start_from figure3-paper-cnn-authors
run figure3-paper-cnn-authors figure3 --scale paper --model cnn-authors
start_from figure2-paper-seeds figure2-paper  # its seed-0 runs are the Figure 2 run's
run figure2-paper-seeds figure2 --scale paper --seeds 1 2 --cells backprop cg3
start_from table1-paper-authors
run table1-paper-authors table1 --scale paper --cg-variant authors --cells "${CELLS[@]}"
start_from table1-paper
run table1-paper table1 --scale paper --cells "${CELLS[@]}"
start_from figure3-paper
run figure3-paper figure3 --scale paper
