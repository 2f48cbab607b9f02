#!/usr/bin/env bash
# make bench (third part): what pottery's spans cost per call. Builds tests/span-cost twice in
# release, without pottery's `tracing` feature and with it (`--features spans`; each build
# alone selects only that package, so pottery's features are exactly those), then runs the one
# without spans, which compares the three configurations in interleaved rounds (see its docs).
#   QUICK=1 tools/span-cost.sh     a short run
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build -q --release -p pottery-span-cost
cp "$target/release/span-cost" "$target/release/span-cost-off"
cargo build -q --release -p pottery-span-cost --features spans
"$target/release/span-cost-off" "$target/release/span-cost"
