#!/usr/bin/env bash
# Idle cost of `paperboy run` between ticks: CPU seconds and resident memory after 60 s with
# nothing to do (no tick due, nothing pending). Usage: benches/idle.sh [SECONDS]
# Needs a release build (cargo build --release). Prints one line of figures.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
bin=target/release/paperboy
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 1; }
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
cat > "$dir/config.toml" <<TOML
[schedule]
cron = "0 0 8 1 1 *"
[delivery]
transport = "outbox"
[database]
url = "sqlite://$dir/paperboy.db"
[smtp]
from = "bench@example.org"
[topics.ml]
keywords = ["ml"]
[[subscribers]]
email = "a@example.org"
topics = ["ml"]
TOML
RUST_LOG=warn "$bin" --config "$dir/config.toml" run &
pid=$!
sleep 3   # start-up: migrations, first look at the schedule
read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
sleep "$secs"
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
tck=$(getconf CLK_TCK)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
cpu=$(awk -v a="$u0" -v b="$s0" -v c="$u1" -v d="$s1" -v t="$tck" 'BEGIN {printf "%.2f", (c - a + d - b) / t}')
echo "idle ${secs}s: cpu ${cpu}s, rss $((rss / 1024)) MiB (${rss} kB), peak rss $((hwm / 1024)) MiB"
