#!/usr/bin/env bash
# Before/after timings of a change: each benchmark run on two commits in one invocation, before
# then after, benchmark by benchmark, so a drift of the machine's speed hits both alike.
#
#   bench/before_after.sh                                   # HEAD~1 vs HEAD, the four benchmarks below
#   BEFORE_COMMIT=1351589 AFTER_COMMIT=1ded9d3 bench/before_after.sh "bench/score_vs_pipeline.py --repeats 3"
#
# Each commit is checked out as a git worktree in a temporary folder and imported from there
# (PYTHONPATH): the venv's editable install of this checkout is moved aside while it runs and put
# back on exit. Result files go to that folder's results-before/ and results-after/, never to
# bench/results/. Run it with nothing else running; it takes hours at the default sizes.
set -u
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PY:-$REPO/.venv/bin/python}
BEFORE_COMMIT=${BEFORE_COMMIT:-HEAD~1}
AFTER_COMMIT=${AFTER_COMMIT:-HEAD}
if [ $# -eq 0 ]; then
  set -- "bench/train_vs_trl.py --layers 4 --steps 10 --repeats 3" \
         "bench/train_vs_trl.py --layers 0 --steps 6 --repeats 2" \
         "bench/serve_load.py --layers 4 --repeats 3 --work /tmp/sl4" \
         "bench/serve_load.py --layers 30 --repeats 2 --work /tmp/sl30"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/before-after.XXXXXX")
PTH=$(compgen -G "$(dirname "$PY")/../lib/python*/site-packages/__editable__.rewardlab-*.pth" | head -1)
cleanup() {
  [ -n "$PTH" ] && [ -e "$PTH.off" ] && mv "$PTH.off" "$PTH"
  git -C "$REPO" worktree remove --force "$WORK/before" 2>/dev/null
  git -C "$REPO" worktree remove --force "$WORK/after" 2>/dev/null
  echo "results: $WORK/results-before, $WORK/results-after"
}
trap cleanup EXIT
git -C "$REPO" worktree add --detach "$WORK/before" "$BEFORE_COMMIT" >/dev/null || exit 1
git -C "$REPO" worktree add --detach "$WORK/after" "$AFTER_COMMIT" >/dev/null || exit 1
echo "before: $(git -C "$WORK/before" log -1 --format='%h %s')"
echo "after:  $(git -C "$WORK/after" log -1 --format='%h %s')"
[ -n "$PTH" ] && mv "$PTH" "$PTH.off"  # else the venv imports this checkout, not the worktree

export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export REWARDLAB_SHARED_DATA=${REWARDLAB_SHARED_DATA:-$(cd "$REPO/.." && pwd)/shared/data}

run() {  # which benchmark-command: one benchmark on one tree
  local which=$1 tree=$WORK/$1; shift
  echo "=== $which ($tree) $(date +%H:%M:%S) $*"
  # $* unquoted on purpose: a benchmark is given as one string of words
  # shellcheck disable=SC2048,SC2086
  (cd "$tree" && REWARDLAB_BENCH_RESULTS="$WORK/results-$which" PYTHONPATH="$tree" timeout 2400 "$PY" $* 2>&1 \
     | grep -v "it/s\]" | tail -25)
}
for b in "$@"; do
  run before "$b"
  run after "$b"
done
