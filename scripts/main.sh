#!/usr/bin/env bash
# The main job: install what is missing, build, recompute Figure 4 (a)-(d) of the PISA paper
# (Appendix A.2, least squares) from scratch, plot it, and compare every curve's final
# objective with the committed reference run, results/figure4{a,b,c,d}/<run>/summary.json.
#   --out DIR   where the recomputed runs and figures go; it must not hold Figure 4 runs yet.
#               Default: results/.recompute/ (git-ignored), emptied first.
# Other arguments go to every `pisa sweep` (e.g. --jobs 1).
# Exits 1 when a curve is missing or its final objective differs from the reference by more
# than RTOL (relative). The runs are deterministic: bit-identical from run to run on the same
# machine and thread count, and the committed runs were made by this code on the project's
# 2-core machine. Another machine or libtorch build sums in another order: runs made by an
# earlier version differed by at most 7.7e-14, so RTOL = 1e-12 allows for rounding only.
set -euo pipefail
cd "$(dirname "$0")/.."
RTOL=1e-12
. scripts/env.sh
cargo build --release --quiet
pisa=./target/release/pisa

out=
sweep_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --out)
            [ $# -ge 2 ] || { echo "main.sh: --out needs a folder" >&2; exit 2; }
            out="$2"
            shift 2
            ;;
        --out=*) out="${1#--out=}"; shift ;;
        *) sweep_args+=("$1"); shift ;;
    esac
done
if [ -z "$out" ]; then
    out=results/.recompute
    rm -rf "$out"
fi
figures=(figure4a figure4b figure4c figure4d)
for name in "${figures[@]}"; do
    if [ -e "$out/$name" ]; then
        echo "main.sh: $out/$name already exists; the main job recomputes from scratch:" \
            "remove it or choose another --out" >&2
        exit 2
    fi
done

for spec in experiments/figure4/*.toml; do
    "$pisa" sweep "$spec" --out "$out" "${sweep_args[@]}"
done
for name in "${figures[@]}"; do
    "$pisa" plot "$out/$name"
done

# summary.json's last.objective, as written (serde_json's shortest round-trip form, so two
# equal strings are the same f64); empty when there is none.
final_objective() {
    [ -f "$1" ] || return 0
    awk '/"last": \{/ { last = 1 }
         last && /"objective":/ { sub(/.*"objective": /, ""); sub(/,$/, ""); print; exit }' "$1"
}

echo
echo "Final objective per curve: recomputed in $out/ vs committed in results/ (tolerance $RTOL relative)"
printf '%-24s %-24s %-24s %s\n' run recomputed reference "relative difference"
failures=0
identical=0
runs=$({
    for name in "${figures[@]}"; do
        for dir in "results/$name"/*/ "$out/$name"/*/; do
            if [ -f "$dir/summary.json" ]; then
                echo "$name/$(basename "$dir")"
            fi
        done
    done
} | sort -u)
for run in $runs; do
    new=$(final_objective "$out/$run/summary.json")
    ref=$(final_objective "results/$run/summary.json")
    if [ "$new" = "$ref" ] && [ -n "$new" ]; then
        verdict="0 (bit-identical)"
        identical=$((identical + 1))
    elif ! verdict=$(awk -v a="$new" -v b="$ref" -v tol="$RTOL" 'BEGIN {
            numeric = "^-?[0-9.]+(e[-+]?[0-9]+)?$"
            if (a !~ numeric || b !~ numeric || b == 0) { print "not comparable"; exit 1 }
            d = (a - b) / b; if (d < 0) d = -d
            printf "%.2e", d; if (d > tol) { print " > tolerance"; exit 1 } }'); then
        failures=$((failures + 1))
    fi
    printf '%-24s %-24s %-24s %s\n' "$run" "${new:-missing}" "${ref:-missing}" "$verdict"
done
total=$(echo "$runs" | wc -w)
if [ "$failures" -gt 0 ]; then
    echo "main.sh: $failures of $total curves differ from the committed reference by more than $RTOL" >&2
    exit 1
fi
echo "main.sh: all $total curves match the committed reference within $RTOL ($identical bit-identical); ${SECONDS} s"
