#!/usr/bin/env bash
# Build weight (#23): what pottery costs a user's clean debug build, next to raw redis-rs.
#
# Makes two throwaway user crates outside the repository and builds each clean (its own target
# dir, removed before every build), in the dev profile, alternating, RUNS times each (3 unless
# told), and prints the median user+sys CPU seconds (CPU seconds, not wall time: the machine
# may be shared) and the crate count of each, and the ratio.
#
#   pottery  pottery by path with SET's features (the defaults unless told) + serde (derive)
#   redis    redis-rs with the matching features + tokio (rt-multi-thread, macros) + serde
#            (derive) + serde_json
#
#   tools/measure-weight.sh                      the defaults vs redis (tokio-comp)
#   SET=full tools/measure-weight.sh             pottery with cluster, sentinel and
#                                                tls-rustls-ring vs redis with tokio-comp,
#                                                cluster-async, sentinel, tokio-rustls-comp and
#                                                rustls with ring
#   RUNS=1 KEEP=1 tools/measure-weight.sh        one run each; keep the crates (path printed)
#
# `make weight` runs it; it is not part of `make test` (a clean build is minutes of CPU).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
runs="${RUNS:-3}"
set_name="${SET:-default}"
work="$(mktemp -d "${TMPDIR:-/tmp}/pottery-weight.XXXXXX")"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR RUSTC_WRAPPER CARGO_BUILD_RUSTC_WRAPPER

case "$set_name" in
  default)
    pottery_dep='pottery = { path = "'"$repo"'/pottery" }'
    redis_deps='redis = { version = "1.8", features = ["tokio-comp"] }'
    ;;
  full)
    pottery_dep='pottery = { path = "'"$repo"'/pottery", features = ["cluster", "sentinel", "tls-rustls-ring"] }'
    redis_deps='redis = { version = "1.8", features = ["tokio-comp", "cluster-async", "sentinel", "tokio-rustls-comp"] }
rustls = { version = "0.23", default-features = false, features = ["std", "ring"] }'
    ;;
  *) echo "SET is default or full" >&2; exit 2 ;;
esac

make_crate() { # name, dependency lines
  mkdir -p "$work/$1/src"
  cat >"$work/$1/Cargo.toml" <<EOF
[package]
name = "weight-$1"
version = "0.0.0"
edition = "2024"
publish = false

[workspace]

[dependencies]
serde = { version = "1", features = ["derive"] }
$2
EOF
  # The repository's lock file: both crates build the same versions of what they share.
  cp "$repo/Cargo.lock" "$work/$1/Cargo.lock"
}

make_crate pottery "$pottery_dep"
cat >"$work/pottery/src/main.rs" <<'EOF'
#[derive(serde::Serialize, serde::Deserialize)]
struct Point {
    x: i64,
}

fn main() {
    let _ = pottery::Redis::from_url;
    let _ = Point { x: 1 }.x;
}
EOF
make_crate redis "$redis_deps
tokio = { version = \"1\", features = [\"rt-multi-thread\", \"macros\"] }
serde_json = \"1\""
cat >"$work/redis/src/main.rs" <<'EOF'
#[derive(serde::Serialize, serde::Deserialize)]
struct Point {
    x: i64,
}

#[tokio::main]
async fn main() {
    let _ = redis::Client::open::<&str>;
    let _ = serde_json::to_string(&Point { x: 1 });
}
EOF

# Resolve (and download) before timing anything.
for c in pottery redis; do
  (cd "$work/$c" && cargo fetch -q)
done

build() { # crate -> "cpu-seconds units"
  local dir="$work/$1" t
  rm -rf "$dir/target"
  if ! (cd "$dir" && /usr/bin/time -o "$dir/time" -f "%U %S" cargo build -q --message-format json \
          >"$dir/build.json" 2>"$dir/build.err"); then
    cat "$dir/build.err" >&2
    grep '"rendered"' "$dir/build.json" | head -3 >&2
    echo "the $1 crate did not build" >&2
    return 1
  fi
  t="$(awk '{ print $1 + $2 }' "$dir/time")"
  echo "$t $(grep -c '"reason":"compiler-artifact"' "$dir/build.json")"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

: >"$work/pottery.times"
: >"$work/redis.times"
for i in $(seq 1 "$runs"); do
  for c in pottery redis; do
    out="$(build "$c")"
    read -r secs units <<<"$out"
    echo "$secs" >>"$work/$c.times"
    echo "$units" >"$work/$c.units"
    printf 'run %d  %-8s %7.1f CPU-s  %3d units\n' "$i" "$c" "$secs" "$units"
  done
done

crates() { # distinct packages in the normal and build dependency graph, the crate itself included
  (cd "$work/$1" && cargo tree -q -e normal,build --prefix none \
     | sed 's/ (\*)$//; s/ (proc-macro)$//; s/ ([^)]*)$//' | sort -u | wc -l)
}

p="$(median <"$work/pottery.times")"
r="$(median <"$work/redis.times")"
echo "== SET=$set_name, median of $runs clean debug builds (user+sys CPU seconds)"
printf '%-8s %7.1f CPU-s  %3d crates  %3d units\n' pottery "$p" "$(crates pottery)" "$(cat "$work/pottery.units")"
printf '%-8s %7.1f CPU-s  %3d crates  %3d units\n' redis "$r" "$(crates redis)" "$(cat "$work/redis.units")"
awk -v p="$p" -v r="$r" 'BEGIN { printf "ratio    %.2f (goal <= 1.25)\n", p / r }'
# Each run's pottery build over the redis build right after it: less swayed by load that
# changes between runs.
paste "$work/pottery.times" "$work/redis.times" | awk '{ print $1 / $2 }' | median \
  | awk '{ printf "median of the per-run ratios %.2f\n", $1 }'
[ -z "${KEEP:-}" ] || echo "crates kept in $work"
