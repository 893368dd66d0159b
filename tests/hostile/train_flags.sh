#!/usr/bin/env bash
# `balm train` refuses nonsensical flags: exit status 2, a one-line message
# naming the flag on stderr, then the usage; nothing on stdout, no training.
# usage: train_flags.sh BALM_BINARY
set -u
balm=$1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
# each case: the expected text in the message, then the arguments
check() {
  local want=$1; shift
  "$balm" train "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$? first; first=$(head -n 1 "$tmp/err")
  if [ $rc -ne 2 ] || ! grep -qF -- "$want" <<<"$first" || [[ "$first" != "balm train:"* ]] ||
     [ "$(sed -n 2p "$tmp/err")" != "usage: balm train [options]" ] || [ -s "$tmp/out" ]; then
    echo "FAIL: balm train $* -> exit $rc, stderr: $first (want exit 2, '$want', usage)"
    fails=$((fails + 1))
  else
    echo "ok:   balm train $* -> exit 2: $first"
  fi
}
check "--lr" --lr -1
check "--lr" --lr 0
check "--lr" --lr nan
check "--lr" --lr inf
# Regression: 1e40 is finite as a double but infinite as a float; it was
# accepted, then refused late by balm_grm_create with exit 1 (fixed in 3032419).
check "--lr" --lr 1e40
check "--lr" --lr 0.001x
check "--lr" --lr ""
check "--l2" --l2 -3e-5
check "--tau" --tau -0.3
check "--tau" --tau 1e39        # as --lr 1e40
check "--rho" --rho -1.4
check "--missing-rates" --missing-rates 1,0.5,0.5
check "--missing-rates" --missing-rates 0.5,1.0,0.5
check "--missing-rates" --missing-rates 0.5,0.5,2
check "--missing-rates" --missing-rates -0.1,0.5,0.5
check "--missing-rates" --missing-rates 0.5,0.5
check "--missing-rates" --missing-rates 0.5,0.5,0.5,0.5
check "--missing-rates" --missing-rates nan,0,0
check "--missing-rates" --missing-rates ,,
check "--batch-size" --batch-size 0
check "--batch-size" --batch-size -4
check "--batch-size" --batch-size 99999999999999999999999
check "--batch-size" --batch-size 16x
check "--epochs" --epochs -1
check "--hidden" --hidden 0
check "--limit" --limit 0
check "--d-global" --d-global 0
check "--end-epoch" --start-epoch 5 --end-epoch 2
check "--seed" --seed -1
check "unknown ISA" --isa sse9
check "unknown ISA" --isa ""
check "--mask-order" --mask-order random
check "--data" --data /nonexistent/balm-data
check "--data" --data ""
check "--bogus" --bogus          # names the flag (its text says "needs a value")
check "unknown flag" --bogus 1
check "unexpected argument" positional
check "needs a value" --lr
check "takes no value" --no-noise=1
if [ $fails -ne 0 ]; then echo "$fails bad-flag case(s) not refused properly"; exit 1; fi
echo "all bad flags refused with exit 2, one line and usage"
