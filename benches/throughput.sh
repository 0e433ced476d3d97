#!/usr/bin/env bash
# End-to-end throughput of `paperboy send` (plan + render + send + record) against Postfix's
# smtp-sink, next to the sink's own limit measured with smtp-source at the same concurrency and
# message size. Figures in BENCHMARKS.md.
#
# Usage: benches/throughput.sh [options] [N ...]        (N: subscribers; default 10000 100000)
# (On 2 cores, 10000 takes a few seconds and 100000 about a minute on SQLite, three minutes on
# PostgreSQL; the smtp-source baseline and a dry run for the message size come on top.)
#   -c, --concurrency C   delivery.concurrency and smtp-source sessions (default 8)
#   --date YYYY-MM-DD     the recorded day to send (default 2026-04-10, tests/fixtures/hf), looked
#                         up in tests/fixtures/hf, then in the data dir
#   --data-dir DIR        recorded API responses (default ../shared/data/hf-daily-papers beside
#                         the repository; or PAPERBOY_BENCH_DATA_DIR)
#   --source-file FILE    a recorded response named YYYY-MM-DD.json (instead of --date)
#   --seed S              the synthetic population (default 1)
#   --runs K              K runs of paperboy (default 1), smtp-source before the first and
#                         after each: a run's fraction is against the mean of the two around it;
#                         with K > 1, also the median fraction (this machine's speed drifts
#                         from one run to the next: one run's fraction is good to about ±0.05)
#   --perf                also profile each run's CPU with `perf record -e cpu-clock` (a second
#                         run on a fresh database; its figures are not in the table)
#   --no-build            use the existing release binary
# Environment:
#   PAPERBOY_BENCH_DATABASE_URL  postgres://USER@HOST:PORT/DB: each run uses a fresh database
#                                created on that server with psql, dropped afterwards. Unset: a
#                                fresh SQLite file in the temporary directory.
#   TMPDIR                       where the temporary directory goes (SQLite file, configs,
#                                logs); put it on a real disk: on tmpfs, commits cost nothing.
#   PAPERBOY_BENCH_KEEP=1        keep the temporary directory (configs, logs, profiles).
#
# Needs: python3, GNU time (/usr/bin/time), smtp-sink and smtp-source (Debian package postfix;
# the postfix daemon itself need not run), psql for PostgreSQL, perf for --perf.
# Besides the table, each run prints the CPU the sink and (on PostgreSQL) this machine's
# PostgreSQL processes used meanwhile, from /proc: the sink does the same work per message for
# both senders. Prints figures only; nothing here asserts a time.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

die() {
  echo "throughput.sh: $*" >&2
  exit 1
}

conc=8
date=""
source_file=""
data_dir=${PAPERBOY_BENCH_DATA_DIR:-$root/../shared/data/hf-daily-papers}
seed=1
runs=1
perf=0
build=1
sizes=()
while [ $# -gt 0 ]; do
  case $1 in
    -c | --concurrency) conc=$2; shift 2 ;;
    --date) date=$2; shift 2 ;;
    --data-dir) data_dir=$2; shift 2 ;;
    --source-file) source_file=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --perf) perf=1; shift ;;
    --no-build) build=0; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) sizes+=("$1"); shift ;;
  esac
done
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 100000)
for n in "${sizes[@]}" "$conc" "$seed" "$runs"; do
  [[ $n =~ ^[0-9]+$ && $n -gt 0 ]] || die "not a positive number: $n"
done

# The tools, with a clear word on what is missing.
find_tool() {
  command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || true
}
sink_bin=$(find_tool smtp-sink)
source_bin=$(find_tool smtp-source)
if [ -z "$sink_bin" ] || [ -z "$source_bin" ]; then
  die "smtp-sink and smtp-source are missing: they come with Postfix (Debian:" \
    "DEBIAN_FRONTEND=noninteractive apt-get install -y postfix; the daemon need not run)." \
    "Do not install exim4 or opensmtpd instead: Debian's MTAs replace each other."
fi
/usr/bin/time -v true >/dev/null 2>&1 ||
  die "GNU time is missing (/usr/bin/time -v; Debian package time)"
command -v python3 >/dev/null || die "python3 is missing"
if [ "$perf" = 1 ]; then
  command -v perf >/dev/null || die "--perf: perf is missing (Debian package linux-perf)"
  perf record -q -e cpu-clock -o /dev/null true 2>/dev/null ||
    die "--perf: perf cannot sample here (kernel.perf_event_paranoid?)"
fi

# The recorded day.
if [ -z "$source_file" ]; then
  date=${date:-2026-04-10}
  for d in "$root/tests/fixtures/hf" "$data_dir"; do
    if [ -f "$d/$date.json" ]; then
      source_file=$d/$date.json
      break
    fi
  done
  [ -n "$source_file" ] || die "no recorded list $date.json in tests/fixtures/hf nor in $data_dir"
fi
[ -f "$source_file" ] || die "no such file: $source_file"
source_file=$(cd "$(dirname "$source_file")" && pwd)/$(basename "$source_file")

# The database backend.
db_base=${PAPERBOY_BENCH_DATABASE_URL:-}
case $db_base in
  "") backend=sqlite ;;
  postgres://* | postgresql://*)
    backend=postgres
    command -v psql >/dev/null || die "psql is missing (Debian package postgresql-client)"
    psql "$db_base" -v ON_ERROR_STOP=1 -qAtc 'SELECT 1' >/dev/null ||
      die "cannot connect to PAPERBOY_BENCH_DATABASE_URL's server with psql"
    ;;
  *) die "PAPERBOY_BENCH_DATABASE_URL: neither empty nor a postgres:// URL" ;;
esac

if [ "$build" = 1 ]; then
  cargo build --release --quiet
fi
target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
bin=$target_dir/release/paperboy
[ -x "$bin" ] || die "no release binary at $bin: run cargo build --release"

work=$(mktemp -d "${TMPDIR:-/tmp}/paperboy-throughput.XXXXXX")
sink_pid=""
pg_dbs=()
cleanup() {
  local rc=$?
  if [ -n "$sink_pid" ]; then
    kill "$sink_pid" 2>/dev/null || true
    wait "$sink_pid" 2>/dev/null || true
  fi
  for db in "${pg_dbs[@]}"; do
    psql "$db_base" -qAtc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 ||
      echo "throughput.sh: could not drop database $db" >&2
  done
  if [ "${PAPERBOY_BENCH_KEEP:-0}" = 1 ]; then
    echo "kept $work" >&2
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback port for smtp-sink: ask the kernel for one, then make sure the sink got it
# (another process may take it in between: then try another).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
sink_user=()
[ "$(id -u)" = 0 ] && sink_user=(-u nobody) # smtp-sink refuses to run as root without -u
port=""
for _ in 1 2 3 4 5; do
  p=$(free_port)
  # -c: running counters (sess=, quit=, mesg=) on stdout; 256: the listen backlog.
  "$sink_bin" -c "${sink_user[@]}" "127.0.0.1:$p" 256 >"$work/sink.out" 2>"$work/sink.err" &
  sink_pid=$!
  for _ in $(seq 50); do
    if ! kill -0 "$sink_pid" 2>/dev/null; then break; fi
    if python3 -c "import socket, sys; socket.create_connection(('127.0.0.1', $p), 1).close()" 2>/dev/null; then
      port=$p
      break
    fi
    sleep 0.1
  done
  [ -n "$port" ] && break
  kill "$sink_pid" 2>/dev/null || true
  wait "$sink_pid" 2>/dev/null || true
  sink_pid=""
done
[ -n "$port" ] || die "smtp-sink did not start: $(cat "$work/sink.err")"
# The sink has counted a connection by the probe; what counts is the change of mesg=.
sink_messages() {
  tr '\r' '\n' <"$work/sink.out" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -n 1 | grep . || echo 0
}

# A fresh database named $1, empty (dropped first if it is there): its URL in $db (not run in
# a subshell, so that cleanup knows every PostgreSQL database it created).
fresh_db() {
  if [ "$backend" = sqlite ]; then
    rm -f "$work/$1.db" "$work/$1.db-wal" "$work/$1.db-shm"
    db="sqlite://$work/$1.db"
  else
    local name base query
    name="paperboy_bench_$$_$1"
    psql "$db_base" -qAtc "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null || true
    psql "$db_base" -v ON_ERROR_STOP=1 -qAtc "CREATE DATABASE \"$name\"" >/dev/null ||
      die "could not create database $name"
    [[ " ${pg_dbs[*]} " == *" $name "* ]] || pg_dbs+=("$name")
    base=${db_base%%\?*}
    query=${db_base#"$base"}
    db="${base%/*}/$name$query"
  fi
}
drop_db() { # $1: the URL fresh_db gave
  [ "$backend" = postgres ] || return 0
  local name=${1##*/}
  name=${name%%\?*}
  psql "$db_base" -qAtc "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null || true
}

gen() { # $1: subscribers, $2: database URL, $3: outbox dir, $4: config file
  python3 "$root/benches/gen_subscribers.py" --subscribers "$1" --port "$port" \
    --database-url "$2" --outbox "$3" --concurrency "$conc" --seed "$seed" --out "$4"
}

now() { date +%s.%N; }
# CPU seconds used so far by the sink and by this machine's PostgreSQL processes (exited
# backends included: the server's postmaster counts them), from /proc: "SINK PG".
proc_cpu() {
  python3 - "$sink_pid" <<'PY'
import os, sys
hz = os.sysconf("SC_CLK_TCK")
def stat(pid):  # the fields after the command name: [11] utime ... [14] cstime
    with open("/proc/%s/stat" % pid) as f:
        return [int(x) for x in f.read().rsplit(")", 1)[1].split()[11:15]]
sink = pg = 0
try:
    sink = sum(stat(sys.argv[1])[:2])
except OSError:
    pass
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open("/proc/%s/comm" % pid) as f:
            if f.read().strip() == "postgres":
                pg += sum(stat(pid))
    except OSError:
        pass
print("%.2f %.2f" % (sink / hz, pg / hz))
PY
}
# $2 - $1, to the hundredth (seconds of the clock or of CPU).
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# smtp-source, same sessions (-s), each reusing its connection (-d) as paperboy does, $1
# messages of the mean size: its rate in $src_rate.
source_run() {
  local count=$1 before s0 s1 src_s sink0 sink1 _
  before=$(sink_messages)
  read -r sink0 _ < <(proc_cpu)
  s0=$(now)
  "$source_bin" -d -s "$conc" -m "$count" -l "$size" -f digest@example.org \
    -t reader@example.org -M bench.example.org "127.0.0.1:$port" >"$dir/source.out" 2>&1 ||
    die "smtp-source failed: $(tail -n 5 "$dir/source.out")"
  s1=$(now)
  read -r sink1 _ < <(proc_cpu)
  src_s=$(minus "$s0" "$s1")
  src_rate=$(fdiv "$count" "$src_s")
  echo "smtp-source -d -s $conc -m $count -l $size: ${src_s}s, $src_rate msgs/s" \
    "(the sink counted $(($(sink_messages) - before)), its CPU $(minus "$sink0" "$sink1")s)"
}
# Seconds from a `date +%s.%N` to each JSON log line with the given message: the first and the
# last, "- -" when there is none.
log_offsets() { # $1: log file, $2: start, $3: message
  python3 - "$1" "$2" "$3" <<'PY'
import datetime, json, sys
log, start, msg = sys.argv[1], float(sys.argv[2]), sys.argv[3]
ts = []
for line in open(log, encoding="utf-8", errors="replace"):
    try:
        j = json.loads(line)
    except ValueError:
        continue
    if j.get("fields", {}).get("message") == msg:
        t = j["timestamp"].replace("Z", "+00:00")
        ts.append(datetime.datetime.fromisoformat(t).timestamp() - start)
print("%.3f %.3f" % (ts[0], ts[-1]) if ts else "- -")
PY
}
fdiv() { awk -v a="$1" -v b="$2" -v f="${3:-%.0f}" 'BEGIN { if (b > 0) printf f, a / b; else printf "-" }'; }

echo "paperboy throughput: $(basename "$source_file"), concurrency $conc, backend $backend," \
  "seed $seed; smtp-sink on 127.0.0.1:$port; temporary files in $work" \
  "($(stat -f -c %T "$work"))"
rows=()
summaries=()
for n in "${sizes[@]}"; do
  dir=$work/n$n
  mkdir -p "$dir"
  echo
  echo "== N=$n"

  # The mean message size: a dry run of the first (up to) 1,000 subscribers writes their emails
  # as .eml files (the population is drawn per subscriber, so they are the same people).
  sample=$((n < 1000 ? n : 1000))
  gen "$sample" "sqlite://$dir/sample.db" "$dir/outbox" "$dir/sample.toml"
  "$bin" --config "$dir/sample.toml" send --dry-run --source-file "$source_file" \
    >"$dir/sample.out" 2>"$dir/sample.log" || die "the dry run failed: $(tail -n 5 "$dir/sample.log")"
  read -r emls bytes < <(find "$dir/outbox" -name '*.eml' -printf '%s\n' |
    awk '{ n++; s += $1 } END { print n + 0, s + 0 }')
  [ "$emls" -gt 0 ] || die "the dry run wrote no email: $(cat "$dir/sample.out")"
  size=$((bytes / emls))
  echo "message size: mean $size bytes over $emls of $sample sample subscribers (dry run)"

  # The sink's own limit before the first run (for as many messages as the dry run's share
  # of emails among its subscribers gives).
  source_run $(((n * emls + sample - 1) / sample))
  before_src=$src_rate
  # The config of every run: the same subscribers and database name (emptied before each).
  fresh_db "n$n"
  gen "$n" "$db" "$dir/outbox-unused" "$dir/config.toml"
  # What loading this config costs (parse, validate, compile templates): part of "plan s".
  c0=$(now)
  "$bin" --config "$dir/config.toml" check >/dev/null ||
    die "paperboy check refused the generated config (above)"
  config_s=$(minus "$c0" "$(now)")
  fractions=()
  for run in $(seq "$runs"); do
    [ "$runs" = 1 ] || echo "-- run $run of $runs"
    # paperboy send, end to end, on an empty database.
    fresh_db "n$n"
    before=$(sink_messages)
    read -r sink0 pg0 < <(proc_cpu)
    start=$(now)
    RUST_LOG=info /usr/bin/time -v -o "$dir/time.txt" \
      "$bin" --config "$dir/config.toml" --log-format json send --source-file "$source_file" \
      >"$dir/send.out" 2>"$dir/send.log" ||
      die "paperboy send failed: $(tail -n 5 "$dir/send.out" "$dir/send.log")"
    end=$(now)
    read -r sink1 pg1 < <(proc_cpu)
    total=$(minus "$start" "$end")
    received=$(($(sink_messages) - before))
    cat "$dir/send.out"
    sent=$(sed -n 's/.*(\([0-9]*\) by this run).*/\1/p' "$dir/send.out")
    sent=${sent:-0}
    [ "$sent" = "$received" ] || echo "note: paperboy says $sent sent, the sink counted $received"
    read -r planned _ < <(log_offsets "$dir/send.log" "$start" planned)
    read -r first_sent last_sent < <(log_offsets "$dir/send.log" "$start" sent)
    rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$dir/time.txt")
    cpu=$(sed -n 's/.*Percent of CPU this job got: //p' "$dir/time.txt")
    user=$(sed -n 's/.*User time (seconds): //p' "$dir/time.txt")
    sys=$(sed -n 's/.*System time (seconds): //p' "$dir/time.txt")
    rate=$(fdiv "$sent" "$total")
    send_rate="-"
    if [ "$last_sent" != "-" ] && [ "$planned" != "-" ]; then
      send_rate=$(fdiv "$sent" "$(awk -v a="$planned" -v b="$last_sent" 'BEGIN { print b - a }')")
    fi
    echo "paperboy: ${total}s wall, ${user}s user + ${sys}s system CPU ($cpu);" \
      "'planned' at ${planned}s (loading the config alone: ${config_s}s), first 'sent' at ${first_sent}s, last at ${last_sent}s;" \
      "$sent sent: $rate msgs/s end to end, $send_rate msgs/s from 'planned' to the last 'sent'"
    others="the sink's CPU meanwhile $(minus "$sink0" "$sink1")s"
    [ "$backend" = sqlite ] ||
      others="$others, PostgreSQL's on this machine $(minus "$pg0" "$pg1")s"
    echo "$others"
    drop_db "$db"

    # The sink's own limit, measured after this run as before it (the machine's speed
    # drifts): paperboy's rate is compared with the mean of the two.
    count=$((sent > 0 ? sent : n))
    source_run "$count"
    after_src=$src_rate
    src_rate=$(awk -v a="$before_src" -v b="$after_src" 'BEGIN { printf "%.0f", (a + b) / 2 }')
    before_src=$after_src
    fraction=$(awk -v a="$rate" -v b="$src_rate" 'BEGIN { if (a != "-" && b > 0) printf "%.3f", a / b; else printf "-" }')
    rows+=("| $n | $backend | $sent | $planned | $total | $rate | $src_rate | $fraction | $((rss_kb / 1024)) |")
    fractions+=("$fraction")
  done
  if [ "$runs" -gt 1 ]; then
    summary=$(printf '%s\n' "${fractions[@]}" | grep -v '^-$' | sort -n | awk '
      { v[NR] = $1 }
      END { if (NR == 0) { print "-"; exit }
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "median %.3f, min %.3f, max %.3f, over %d runs", m, v[1], v[NR], NR }')
    echo "fraction of smtp-source's rate, N=$n: $summary"
    summaries+=("N=$n, $backend: $summary")
  fi

  if [ "$perf" = 1 ]; then
    fresh_db "n$n"
    echo "profiling a second run under perf ..."
    RUST_LOG=info perf record -q -e cpu-clock -F 999 -o "$dir/perf.data" -- \
      "$bin" --config "$dir/config.toml" --log-format json send --source-file "$source_file" \
      >"$dir/perf.out" 2>"$dir/perf.log" || die "the profiled run failed: $(tail -n 5 "$dir/perf.log")"
    drop_db "$db"
    # By thread: sqlx-sqlite-wor(ker) runs SQLite, tokio-rt-worker renders and sends.
    perf report -i "$dir/perf.data" --stdio --no-children -F overhead,comm,dso 2>/dev/null |
      grep -v '^#' | grep . | sed 's/ *$//' | head -n 12 >"$dir/perf-threads.txt" || true
    perf report -i "$dir/perf.data" --stdio --no-children -F overhead,dso,sym 2>/dev/null |
      grep -v '^#' | grep . | sed 's/ *$//' | head -n 40 >"$dir/perf-symbols.txt" || true
    echo "CPU by thread and object (perf, cpu-clock samples):"
    cat "$dir/perf-threads.txt"
    echo "top symbols:"
    cat "$dir/perf-symbols.txt"
  fi
done

echo
echo "| N | backend | msgs sent | plan s | total s | msgs/s | smtp-source msgs/s (before and after, mean) | fraction | peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
if [ ${#summaries[@]} -gt 0 ]; then
  echo
  printf 'fraction %s\n' "${summaries[@]}"
fi
