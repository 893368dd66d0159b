#!/usr/bin/env bash
# Named pipes given where a file is expected must be refused (not a regular
# file), never block the process: a FIFO without a writer makes a plain
# fopen() wait forever. Each command gets 10 s; a timeout is a hang.
# Regression test: all four hung (fopen before checking the file type) until
# 846c404 (checkpoint, IDX) and 1b8e7e2 (npy reader, case.txt).
# usage: fifo_inputs.sh BALM_BINARY PYTHON
set -u
balm=$1 py=${2:-python3}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$py" "$here/make_tiny_data.py" "$tmp/data" || exit 1
mkdir -p "$tmp/case" "$tmp/npycase" "$tmp/fifodata"
mkfifo "$tmp/ck.fifo" "$tmp/case/case.txt"
cp "$tmp/data"/*.npy "$tmp/fifodata/"; rm "$tmp/fifodata/test_labels.npy"
mkfifo "$tmp/fifodata/test_labels.npy"
printf 'kind: kl_reg\nN: 3\n' >"$tmp/npycase/case.txt"
mkfifo "$tmp/npycase/fused.npy"
fails=0
run() { # run WHAT COMMAND...: must end (not time out) with a non-zero status
  local what=$1; shift
  timeout 10 "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ $rc -eq 124 ]; then echo "FAIL: $what: hung (no answer after 10 s)"; fails=$((fails + 1))
  elif [ $rc -eq 0 ]; then echo "FAIL: $what: accepted"; fails=$((fails + 1))
  else echo "ok:   $what: exit $rc: $(cat "$tmp/err" "$tmp/out" | grep -m1 -iv '^usage')"; fi
}
run "balm train --load FIFO" "$balm" train --data "$tmp/data" --hidden 4 --epochs 0 --load "$tmp/ck.fifo"
run "balm check, case.txt is a FIFO" "$balm" check "$tmp/case"
run "balm check, an input .npy is a FIFO" "$balm" check "$tmp/npycase"
run "balm train --data, a .npy is a FIFO" "$balm" train --data "$tmp/fifodata" --hidden 4 --epochs 0
if [ $fails -ne 0 ]; then echo "$fails FIFO input(s) not refused"; exit 1; fi
echo "every FIFO input refused without blocking"
