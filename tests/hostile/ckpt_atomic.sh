#!/usr/bin/env bash
# Checkpoints survive failed and interrupted saves: after a save that fails
# (fsync or rename errors injected through LD_PRELOAD, a full tmpfs when run
# as root) or a run killed in the middle of a save, the previous checkpoint
# is byte-for-byte unchanged and still loads; a failed save says why and
# exits non-zero; a corrupt or truncated checkpoint is refused. The same for
# the JSON log (see the end).
# usage: ckpt_atomic.sh BALM_BINARY FAULT_SHIM.so PYTHON
set -u
balm=$1 shim=$2 py=${3:-python3}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d); mnt=""
cleanup() { [ -n "$mnt" ] && umount "$mnt" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
# An ASan build of balm must accept the shim in front of its runtime.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
fails=0
die() { echo "FAIL: $*"; fails=$((fails + 1)); }
"$py" "$here/make_tiny_data.py" "$tmp/data" || { echo "cannot make data"; exit 1; }
train() { "$balm" train --data "$tmp/data" --hidden 4 --batch-size 4 "$@"; }

ck=$tmp/model.ckpt
train --epochs 1 --seed 1 --save "$ck" >"$tmp/log" 2>&1 || { cat "$tmp/log"; echo "first save failed"; exit 1; }
cp "$ck" "$tmp/orig.ckpt"
train --epochs 0 --load "$ck" >"$tmp/log" 2>&1 || die "a good checkpoint does not load: $(tail -1 "$tmp/log")"

for fault in fsync-eio rename-eio fsync-kill; do
  LD_PRELOAD=$shim BALM_FAULT=$fault train --epochs 1 --seed 2 --save "$ck" >"$tmp/log" 2>&1
  rc=$?
  msg=$(grep -m1 "balm train: --save:" "$tmp/log")
  [ $rc -ne 0 ] || die "$fault: the save reported success"
  if [ $fault != fsync-kill ]; then
    grep -q "balm train: --save:" "$tmp/log" || die "$fault: no message about the save: $(tail -1 "$tmp/log")"
    ls "$ck".tmp.* >/dev/null 2>&1 && die "$fault: temporary file left behind"
  fi
  cmp -s "$ck" "$tmp/orig.ckpt" || die "$fault: the previous checkpoint changed"
  train --epochs 0 --load "$ck" >"$tmp/log" 2>&1 || die "$fault: previous checkpoint no longer loads: $(tail -1 "$tmp/log")"
  echo "ok:   $fault: exit $rc, ${msg:-killed}; previous checkpoint intact and loads"
  rm -f "$ck".tmp.*
done

# A full disk, for real: a small tmpfs (root only; skipped otherwise).
if [ "$(id -u)" = 0 ] && mkdir -p "$tmp/mnt" && mount -t tmpfs -o size=256k tmpfs "$tmp/mnt" 2>/dev/null; then
  mnt=$tmp/mnt
  cp "$tmp/orig.ckpt" "$mnt/model.ckpt"
  dd if=/dev/zero of="$mnt/fill" bs=1k count=100000 2>/dev/null # fills it: ENOSPC
  train --epochs 1 --seed 3 --save "$mnt/model.ckpt" >"$tmp/log" 2>&1
  rc=$?
  [ $rc -ne 0 ] || die "full disk: the save reported success"
  msg=$(grep -m1 "balm train: --save:" "$tmp/log")
  grep -q "No space left on device" <<<"$msg" || die "full disk: the message does not say why: $msg"
  cmp -s "$mnt/model.ckpt" "$tmp/orig.ckpt" || die "full disk: the previous checkpoint changed"
  ls "$mnt"/model.ckpt.tmp.* >/dev/null 2>&1 && die "full disk: temporary file left behind"
  train --epochs 0 --load "$mnt/model.ckpt" >"$tmp/log" 2>&1 || die "full disk: previous checkpoint no longer loads"
  echo "ok:   full tmpfs: exit $rc, $msg; previous checkpoint intact and loads"
else
  echo "skip: full-disk leg (needs root and tmpfs)"
fi

# Damaged checkpoints are refused with a message, never loaded.
head -c 100 "$tmp/orig.ckpt" >"$tmp/trunc.ckpt"
cp "$tmp/orig.ckpt" "$tmp/flip.ckpt"
printf '\x55' | dd of="$tmp/flip.ckpt" bs=1 seek=90 conv=notrunc 2>/dev/null
: >"$tmp/empty.ckpt"
for bad in trunc flip empty; do
  train --epochs 0 --load "$tmp/$bad.ckpt" >"$tmp/log" 2>&1
  rc=$?
  [ $rc -ne 0 ] && grep -q "balm train: --load:" "$tmp/log" || die "$bad checkpoint: exit $rc: $(tail -1 "$tmp/log")"
  echo "ok:   $bad checkpoint refused (exit $rc): $(grep -m1 "balm train: --load:" "$tmp/log")"
done
# The JSON log (issue 8: written atomically, temporary file + rename): a run
# that fails or is killed must leave the previous log whole; a finished run
# leaves only complete JSON lines.
# Regression test: --log was opened with fopen("w") before --load was
# checked, so a failing run emptied the old log (fixed in 8084eb3).
printf '{"old": 1}\n' >"$tmp/log.jsonl"
cp "$tmp/log.jsonl" "$tmp/log.orig"
train --epochs 1 --log "$tmp/log.jsonl" --load "$tmp/trunc.ckpt" >"$tmp/log" 2>&1
cmp -s "$tmp/log.jsonl" "$tmp/log.orig" ||
  die "--log: a run refused at --load changed the previous log ($(wc -c <"$tmp/log.jsonl") bytes now)"
LD_PRELOAD=$shim BALM_FAULT=fsync-kill train --epochs 2 --log "$tmp/log.jsonl" --save "$ck" >"$tmp/log" 2>&1
if [ -s "$tmp/log.jsonl" ] && ! cmp -s "$tmp/log.jsonl" "$tmp/log.orig"; then
  "$py" -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$tmp/log.jsonl" 2>/dev/null ||
    die "--log: a run killed mid-save left a log that is not whole JSON lines"
fi
train --epochs 2 --log "$tmp/log.jsonl" >"$tmp/log" 2>&1 || die "--log: a plain run failed"
"$py" -c 'import json,sys; n=[json.loads(l) for l in open(sys.argv[1])]; assert len(n) >= 2' \
  "$tmp/log.jsonl" 2>/dev/null || die "--log: a finished run's log is not whole JSON lines"
echo "ok:   --log checks done"

if [ $fails -ne 0 ]; then echo "$fails checkpoint/log check(s) failed"; exit 1; fi
echo "checkpoints and logs: atomic under every injected fault"
