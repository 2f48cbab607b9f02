#!/usr/bin/env bash
# The feature sets `make features` checks: no features, each feature alone, and every pair of
# features (a feature powerset of depth 2, as `cargo hack --feature-powerset --depth 2` would,
# without installing cargo-hack), read from pottery/Cargo.toml's [features] table. A pair in
# which one feature turns on the other (`tls-rustls-ring` turns on `tls-rustls`) is the larger
# feature alone, and is left out. One set a line, features comma-separated; the first line is
# empty (no features).
#
#   tools/feature-sets.sh            print the sets
#   tools/feature-sets.sh --check    `cargo check -p pottery` each set (no default features),
#                                    failing on any warning or error
#   DEPTH=1 tools/feature-sets.sh    no pairs: no features and each feature alone
#   tools/feature-sets.sh --background start|wait
#                                    `--check` in the background at idle priority, in its own
#                                    target dir (target/features): `make test` starts it once
#                                    the workspace suite is built, before it runs the suites,
#                                    which wait on their servers and leave most of the two cores
#                                    idle, and waits for it at the end (printing how long it
#                                    waited: the part of the checks the suites did not hide)
#
# 64 sets for 11 features; measured on the 2-core machine while other builds ran: 371 CPU
# seconds (398 s wall) from an empty target dir, 208 CPU seconds with the dependencies already
# checked. If `make test` runs out of its 15 minutes, DEPTH=1 (12 sets) is the fallback.
set -euo pipefail
cd "$(dirname "$0")/.."

# "name deps..." per feature, from lines like `name = ["a", "dep:x", "redis/y"]`.
table="$(awk '
  /^\[features\]/ { on = 1; next }
  /^\[/ { on = 0 }
  on && /^[a-z][a-z0-9-]* *= *\[/ {
    name = $1
    line = $0; sub(/^[^[]*\[/, "", line); sub(/\].*/, "", line)
    gsub(/[" ]/, "", line)
    n = split(line, deps, ",")
    out = name
    for (i = 1; i <= n; i++) if (deps[i] != "" && deps[i] !~ /[:\/]/) out = out " " deps[i]
    print out
  }' pottery/Cargo.toml)"

features=()
declare -A implies=()
while read -r name deps; do
  [ "$name" = default ] && continue
  features+=("$name")
  implies[$name]="$deps"
done <<<"$table"

# Whether feature $1 turns on $2 (directly or through others).
turns_on() {
  local f
  for f in ${implies[$1]}; do
    [ "$f" = "$2" ] && return 0
    turns_on "$f" "$2" && return 0
  done
  return 1
}

sets=("")
for a in "${features[@]}"; do
  sets+=("$a")
done
for ((i = 0; i < ${#features[@]} && ${DEPTH:-2} >= 2; i++)); do
  for ((j = i + 1; j < ${#features[@]}; j++)); do
    a="${features[$i]}" b="${features[$j]}"
    turns_on "$a" "$b" || turns_on "$b" "$a" || sets+=("$a,$b")
  done
done

if [ "${1:-}" = --background ]; then
  bg=target/features-bg
  case "${2:-}" in
    start)
      mkdir -p target
      rm -f "$bg.rc" "$bg.log"
      # Its own target dir: cargo holds a target dir's lock for a whole command, so sharing
      # the suites' would serialise the two. stdin/stdout/stderr away from make's: a pipe
      # held open by it would keep a `make test | tee` waiting.
      (
        # SCHED_IDLE: the checks get a core only when nothing else wants it (nice 19 still
        # took a share from the suites' builds), so they fill the time the suites wait.
        idle="nice -n 19"
        chrt -i 0 true 2>/dev/null && idle="chrt -i 0"
        # The status is written whatever it is (under `set -e` a failed check would end this
        # subshell before it wrote one, and `wait` would then wait out its bound).
        rc=0
        CARGO_TARGET_DIR="$PWD/target/features" $idle "$0" --check </dev/null >"$bg.log" 2>&1 || rc=$?
        echo "$rc" >"$bg.rc"
      ) </dev/null >/dev/null 2>&1 &
      echo "features: the depth-2 checks run in the background (log: $bg.log)"
      ;;
    wait)
      start=$(date +%s)
      # Bounded: from cold the checks take about 400 s of CPU on the 2-core machine.
      while [ ! -s "$bg.rc" ] && [ $(($(date +%s) - start)) -lt 1200 ]; do sleep 1; done
      echo "features: waited $(($(date +%s) - start)) s for the background checks"
      tail -n 3 "$bg.log" 2>/dev/null || true
      if [ "$(cat "$bg.rc" 2>/dev/null)" != 0 ]; then
        echo "features: the background checks failed or did not finish:"
        cat "$bg.log" 2>/dev/null || true
        exit 1
      fi
      ;;
    *) echo "usage: $0 --background start|wait" >&2; exit 2 ;;
  esac
  exit 0
fi

if [ "${1:-}" != --check ]; then
  printf '%s\n' "${sets[@]}"
  exit 0
fi

log="${CARGO_TARGET_DIR:-target}/features.log"
mkdir -p "$(dirname "$log")"
n=0
for f in "${sets[@]}"; do
  n=$((n + 1))
  echo "== [$n/${#sets[@]}] cargo check -p pottery --no-default-features --features '$f'"
  cargo check -q -p pottery --no-default-features --features "$f" --message-format short \
    >"$log" 2>&1 || { cat "$log"; exit 1; }
  if grep -q "warning\|error" "$log"; then
    cat "$log"
    exit 1
  fi
done
echo "features: ${#sets[@]} sets checked"
