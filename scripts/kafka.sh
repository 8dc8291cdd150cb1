#!/usr/bin/env bash
# A real Apache Kafka 4.x broker (KRaft, one combined broker+controller node) on 127.0.0.1,
# built from Maven Central jars; no Docker, no downloads other than Maven.
#
#   scripts/kafka.sh install
#   scripts/kafka.sh start   [--port P] [--controller-port C] [--dir D] [--auto-create]
#   scripts/kafka.sh stop    [--dir D] [--kill]
#   scripts/kafka.sh restart [--dir D] [--kill] [--down SECONDS]
#   scripts/kafka.sh create-topic NAME PARTITIONS [--dir D] [--config K=V]...
#   scripts/kafka.sh add-partitions NAME N [--dir D]      (N = new total partition count)
#   scripts/kafka.sh status  [--dir D]                    (exit 0 running, 3 not running)
#   scripts/kafka.sh logs    [--dir D] [LINES]
#
# Defaults: port 19092, controller port = port + 1 (19093), run dir .cache/kafka/run.
# --port 0 picks a free port pair. start and restart print the bootstrap address
# (127.0.0.1:PORT) on stdout; everything else goes to stderr.
# Needs only bash, coreutils, Java 17+ and Maven. See e2e/README.md.
#
# Environment:
#   KAFKA_SH_JAVA           java binary (default: java on PATH)
#   KAFKA_SH_MVN            mvn binary (default: mvn on PATH)
#   KAFKA_SH_MVN_ARGS       extra Maven arguments for install (e.g. -Dmaven.repo.local=...)
#   KAFKA_SH_LIB            jar directory (default: .cache/kafka/lib)
#   KAFKA_SH_START_TIMEOUT  seconds to wait for the broker to come up (default 90)
#   KAFKA_SH_STOP_TIMEOUT   seconds to wait after SIGTERM before SIGKILL (default 30)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
POM="$SCRIPT_DIR/kafka/pom.xml"
BROKER_LOG4J="$SCRIPT_DIR/kafka/log4j2-broker.xml"
TOOLS_LOG4J="$SCRIPT_DIR/kafka/log4j2-tools.xml"
CACHE="$ROOT/.cache/kafka"
LIB="${KAFKA_SH_LIB:-$CACHE/lib}"
JAVA="${KAFKA_SH_JAVA:-java}"
MVN="${KAFKA_SH_MVN:-mvn}"
START_TIMEOUT="${KAFKA_SH_START_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_SH_STOP_TIMEOUT:-30}"

DEFAULT_PORT=19092
DEFAULT_DIR="$CACHE/run"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { printf 'kafka.sh: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

usage() { sed -n '2,/^set -euo pipefail/{/^set -euo/!p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

abspath() { # abspath DIR: absolute path without requiring it to exist
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s/%s\n' "$(pwd)" "$1" ;;
  esac
}

need_java() {
  command -v "$JAVA" >/dev/null 2>&1 || die "java not found (set KAFKA_SH_JAVA); Kafka 4.x needs Java 17+"
  local v
  v="$("$JAVA" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2; exit}')"
  [[ -n "$v" && "${v%%.*}" -ge 17 ]] || die "Kafka 4.x needs Java 17+, $JAVA is '$v'"
}

# ---------------------------------------------------------------------------------------
# install

pom_hash() { sha256sum "$POM" | awk '{print $1}'; }

lib_complete() {
  [[ -f "$LIB/.complete" ]] || return 1
  [[ "$(head -n1 "$LIB/.complete")" == "$(pom_hash)" ]] || return 1
  # every jar listed at install time must still be there
  local f
  while IFS= read -r f; do
    [[ -s "$LIB/$f" ]] || return 1
  done < <(tail -n +2 "$LIB/.complete")
}

cmd_install() {
  if lib_complete; then
    log "install: cached ($(($(wc -l <"$LIB/.complete") - 1)) jars in $LIB)"
    return 0
  fi
  command -v "$MVN" >/dev/null 2>&1 || die "mvn not found (set KAFKA_SH_MVN)"
  need_java
  local t0 tmp
  t0="$(now)"
  tmp="$LIB.partial.$$"
  rm -rf "$tmp"
  mkdir -p "$(dirname "$LIB")"
  log "install: resolving Kafka jars with Maven into $LIB ..."
  # shellcheck disable=SC2086
  if ! "$MVN" -q -B -f "$POM" ${KAFKA_SH_MVN_ARGS:-} \
      org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >"$tmp.log" 2>&1; then
    tail -n 40 "$tmp.log" >&2
    rm -rf "$tmp" "$tmp.log"
    die "install: Maven failed"
  fi
  rm -f "$tmp.log"
  # sanity: the classes this script runs, and exactly one SLF4J binding matching slf4j-api
  ls "$tmp"/kafka_2.13-*.jar "$tmp"/kafka-tools-[0-9]*.jar >/dev/null 2>&1 || die "install: Kafka jars missing in $tmp"
  local slf4j_ok=0
  if compgen -G "$tmp/slf4j-api-1.*.jar" >/dev/null; then
    compgen -G "$tmp/log4j-slf4j-impl-*.jar" >/dev/null && ! compgen -G "$tmp/log4j-slf4j2-impl-*.jar" >/dev/null && slf4j_ok=1
  elif compgen -G "$tmp/slf4j-api-2.*.jar" >/dev/null; then
    compgen -G "$tmp/log4j-slf4j2-impl-*.jar" >/dev/null && ! compgen -G "$tmp/log4j-slf4j-impl-*.jar" >/dev/null && slf4j_ok=1
  fi
  ((slf4j_ok)) || die "install: SLF4J API and log4j binding do not match: $(cd "$tmp" && ls | grep -E 'slf4j' | tr '\n' ' ')"
  { pom_hash; (cd "$tmp" && ls -1 -- *.jar); } >"$tmp/.complete"
  rm -rf "$LIB"
  mv "$tmp" "$LIB"
  log "install: $(($(wc -l <"$LIB/.complete") - 1)) jars in $LIB ($(du -sh "$LIB" | cut -f1)) in $(since "$t0")"
}

# ---------------------------------------------------------------------------------------
# run directory helpers

DIR="$DEFAULT_DIR"

pid_of() { # prints the broker pid of $DIR if it is alive and really ours
  local pidf="$DIR/kafka.pid" pid
  [[ -f "$pidf" ]] || return 1
  pid="$(cat "$pidf" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  # guard against a recycled pid: the process must be kafka.Kafka on this run dir's properties
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "kafka.Kafka $DIR/server.properties" || return 1
  # a zombie is not running
  [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != "Z" ]] || return 1
  printf '%s\n' "$pid"
}

load_env() {
  [[ -f "$DIR/broker.env" ]] || die "no broker in $DIR (run: scripts/kafka.sh start --dir $DIR)"
  # shellcheck disable=SC1091
  source "$DIR/broker.env"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

java_tool() { # java_tool MAIN ARGS...: a short-lived Kafka CLI tool
  "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$TOOLS_LOG4J" \
    -cp "$LIB/*" "$@"
}

write_properties() { # PORT CTL_PORT AUTO_CREATE
  local port="$1" ctl="$2" auto="$3"
  cat >"$DIR/server.properties" <<EOF
# written by scripts/kafka.sh start; one combined KRaft node on loopback
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctl
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctl
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DIR/data

# one node: every replication factor and min ISR is 1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# tests: consumer groups join at once; topics exist only when created explicitly
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=$auto
num.partitions=1

# broker.session.timeout.ms stays at its default (9 s): after a crash (restart --kill) the
# controller refuses the restarted broker until the dead one's session expires, so a crash
# restart takes ~12 s; 3 s made that ~5 s but fenced the broker (partitions leaderless)
# when the 2-core machine was overloaded and heartbeats were late
# a small machine
num.network.threads=2
num.io.threads=4
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
EOF
}

launch() { # start the JVM on existing (formatted) $DIR, wait until it serves
  local port ctl pid t0
  port="$1" ctl="$2"
  if port_open "$port"; then die "port $port on 127.0.0.1 is already in use (another broker? try: scripts/kafka.sh status / stop, or --port)"; fi
  if port_open "$ctl"; then die "controller port $ctl on 127.0.0.1 is already in use (use --controller-port)"; fi
  t0="$(now)"
  : >"$DIR/kafka.log"
  local setsid=()
  command -v setsid >/dev/null 2>&1 && setsid=(setsid)
  # own session (outlives the caller's terminal/process group), no inherited stdio, so a
  # caller that reads our stdout (e.g. Go's exec.Cmd) is not kept waiting by the broker
  "${setsid[@]}" "$JAVA" -Xms256m -Xmx512m -XX:+UseSerialGC \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$BROKER_LOG4J" \
    -XX:+ExitOnOutOfMemoryError \
    -cp "$LIB/*" kafka.Kafka "$DIR/server.properties" \
    </dev/null >>"$DIR/kafka.log" 2>&1 &
  pid=$!
  echo "$pid" >"$DIR/kafka.pid"
  local deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      rm -f "$DIR/kafka.pid"
      log "broker exited during startup; last lines of $DIR/kafka.log:"
      tail -n 40 "$DIR/kafka.log" >&2
      die "broker failed to start"
    fi
    if grep -q 'Kafka Server started' "$DIR/kafka.log" && port_open "$port"; then
      break
    fi
    if ((SECONDS >= deadline)); then
      log "broker not ready after ${START_TIMEOUT}s; last lines of $DIR/kafka.log:"
      tail -n 40 "$DIR/kafka.log" >&2
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$DIR/kafka.pid"
      die "broker start timed out (KAFKA_SH_START_TIMEOUT=$START_TIMEOUT)"
    fi
    sleep 0.2
  done
  log "broker up: 127.0.0.1:$port (controller $ctl) pid $pid dir $DIR in $(since "$t0")"
  printf '127.0.0.1:%s\n' "$port"
}

stop_broker() { # stop_broker KILL(0|1)
  local kill_now="$1" pid
  if ! pid="$(pid_of)"; then
    rm -f "$DIR/kafka.pid"
    log "stop: no broker running in $DIR"
    return 0
  fi
  local t0
  t0="$(now)"
  if [[ "$kill_now" == 1 ]]; then
    kill -KILL "$pid" 2>/dev/null || true
  else
    kill -TERM "$pid" 2>/dev/null || true
  fi
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while [[ -d "/proc/$pid" ]] && [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != "Z" ]]; do
    if ((SECONDS >= deadline)); then
      log "stop: pid $pid still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 10))
      kill_now=1
    fi
    sleep 0.1
  done
  # a multi-threaded process's leader can be a zombie while its other threads still tear
  # down (and hold the listening sockets): wait for the ports to close too
  if [[ -f "$DIR/broker.env" ]]; then
    local PORT CTL_PORT
    # shellcheck disable=SC1091
    source "$DIR/broker.env"
    deadline=$((SECONDS + 15))
    while (port_open "$PORT" || port_open "$CTL_PORT") && ((SECONDS < deadline)); do
      sleep 0.1
    done
  fi
  rm -f "$DIR/kafka.pid"
  if [[ "$kill_now" == 1 ]]; then
    log "stop: broker pid $pid killed in $(since "$t0")"
  else
    log "stop: broker pid $pid stopped in $(since "$t0")"
  fi
}

# ---------------------------------------------------------------------------------------
# subcommands

cmd_start() {
  local port="" ctl="" auto=false
  while (($#)); do
    case "$1" in
      --port) port="${2:?--port needs a value}"; shift 2 ;;
      --controller-port) ctl="${2:?--controller-port needs a value}"; shift 2 ;;
      --dir) DIR="$(abspath "${2:?--dir needs a value}")"; shift 2 ;;
      --auto-create) auto=true; shift ;;
      *) die "start: unknown argument '$1'" ;;
    esac
  done
  port="${port:-$DEFAULT_PORT}"
  if [[ "$port" == 0 ]]; then # pick a free pair (port, port + 1) in 20000-39999
    local try
    for try in $(seq 1 50); do
      port=$((20000 + (RANDOM % 10000) * 2))
      if ! port_open "$port" && ! port_open "$((port + 1))"; then break; fi
    done
  fi
  ctl="${ctl:-$((port + 1))}"
  [[ "$port" =~ ^[0-9]+$ && "$ctl" =~ ^[0-9]+$ ]] || die "start: ports must be numbers"
  cmd_install
  need_java
  # a fresh broker every time: stop one left running from this dir, wipe its data
  if pid_of >/dev/null; then
    log "start: a broker is already running from $DIR; stopping it for a fresh one"
    stop_broker 0
  fi
  if port_open "$port"; then die "port $port on 127.0.0.1 is already in use (another broker? try: scripts/kafka.sh status / stop, or --port)"; fi
  if port_open "$ctl"; then die "controller port $ctl on 127.0.0.1 is already in use (use --controller-port)"; fi
  rm -rf "$DIR"
  mkdir -p "$DIR/data"
  write_properties "$port" "$ctl" "$auto"
  printf 'PORT=%s\nCTL_PORT=%s\n' "$port" "$ctl" >"$DIR/broker.env"
  # cluster id: 16 random bytes, URL-safe base64 without padding (what StorageTool
  # random-uuid prints), not starting with '-'; saves a JVM launch
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* ]] && break
  done
  local t0
  t0="$(now)"
  if ! java_tool kafka.tools.StorageTool format -t "$id" -c "$DIR/server.properties" >"$DIR/format.log" 2>&1; then
    cat "$DIR/format.log" >&2
    die "start: formatting $DIR/data failed"
  fi
  log "start: formatted $DIR/data (cluster $id) in $(since "$t0")"
  launch "$port" "$ctl"
}

cmd_stop() {
  local kill_now=0
  while (($#)); do
    case "$1" in
      --dir) DIR="$(abspath "${2:?--dir needs a value}")"; shift 2 ;;
      --kill) kill_now=1; shift ;;
      *) die "stop: unknown argument '$1'" ;;
    esac
  done
  stop_broker "$kill_now"
}

cmd_restart() {
  local kill_now=0 down=0
  while (($#)); do
    case "$1" in
      --dir) DIR="$(abspath "${2:?--dir needs a value}")"; shift 2 ;;
      --kill) kill_now=1; shift ;;
      --down) down="${2:?--down needs seconds}"; shift 2 ;;
      *) die "restart: unknown argument '$1'" ;;
    esac
  done
  load_env
  [[ -f "$DIR/data/meta.properties" ]] || die "restart: $DIR/data is not formatted (use start)"
  need_java
  stop_broker "$kill_now"
  if [[ "$down" != 0 ]]; then
    log "restart: staying down for ${down}s"
    sleep "$down"
  fi
  launch "$PORT" "$CTL_PORT"
}

cmd_create_topic() {
  local args=() configs=()
  while (($#)); do
    case "$1" in
      --dir) DIR="$(abspath "${2:?--dir needs a value}")"; shift 2 ;;
      --config) configs+=(--config "${2:?--config needs K=V}"); shift 2 ;;
      -*) die "create-topic: unknown option '$1'" ;;
      *) args+=("$1"); shift ;;
    esac
  done
  ((${#args[@]} == 2)) || die "usage: create-topic NAME PARTITIONS [--dir D] [--config K=V]..."
  local name="${args[0]}" parts="${args[1]}"
  [[ "$parts" =~ ^[0-9]+$ && "$parts" -ge 1 ]] || die "create-topic: PARTITIONS must be a positive number"
  load_env
  pid_of >/dev/null || die "create-topic: no broker running in $DIR"
  local out
  if ! out="$(java_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$PORT" \
      --create --if-not-exists --topic "$name" --partitions "$parts" --replication-factor 1 \
      "${configs[@]}" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "create-topic $name failed"
  fi
  [[ -n "$out" ]] && printf '%s\n' "$out" >&2
  log "create-topic: $name ($parts partitions)"
}

partition_count() { # partition_count NAME: prints the current count
  java_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$PORT" \
    --describe --topic "$1" 2>/dev/null |
    awk '/PartitionCount:/ { for (i = 1; i <= NF; i++) if ($i == "PartitionCount:") print $(i + 1) }'
}

cmd_add_partitions() {
  local args=()
  while (($#)); do
    case "$1" in
      --dir) DIR="$(abspath "${2:?--dir needs a value}")"; shift 2 ;;
      -*) die "add-partitions: unknown option '$1'" ;;
      *) args+=("$1"); shift ;;
    esac
  done
  ((${#args[@]} == 2)) || die "usage: add-partitions NAME N [--dir D]   (N = new total partition count)"
  local name="${args[0]}" n="${args[1]}"
  [[ "$n" =~ ^[0-9]+$ ]] || die "add-partitions: N must be a number"
  load_env
  pid_of >/dev/null || die "add-partitions: no broker running in $DIR"
  local out
  if ! out="$(java_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$PORT" \
      --alter --topic "$name" --partitions "$n" 2>&1)"; then
    # idempotent: asking for the count the topic already has is not an error
    local cur
    cur="$(partition_count "$name" || true)"
    if [[ "$cur" == "$n" ]]; then
      log "add-partitions: $name already has $n partitions"
      return 0
    fi
    printf '%s\n' "$out" >&2
    die "add-partitions $name $n failed (current count: ${cur:-unknown})"
  fi
  log "add-partitions: $name now has $n partitions"
}

cmd_status() {
  while (($#)); do
    case "$1" in
      --dir) DIR="$(abspath "${2:?--dir needs a value}")"; shift 2 ;;
      *) die "status: unknown argument '$1'" ;;
    esac
  done
  local pid
  if ! pid="$(pid_of)"; then
    echo "stopped (dir $DIR)"
    return 3
  fi
  load_env
  echo "running pid=$pid bootstrap=127.0.0.1:$PORT controller=127.0.0.1:$CTL_PORT dir=$DIR"
  java_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$PORT" --describe \
    --exclude-internal 2>/dev/null | awk '/PartitionCount:/ { sub(/^Topic: /, "topic "); print }' || true
}

cmd_logs() {
  local lines=50
  while (($#)); do
    case "$1" in
      --dir) DIR="$(abspath "${2:?--dir needs a value}")"; shift 2 ;;
      *) lines="$1"; shift ;;
    esac
  done
  tail -n "$lines" "$DIR/kafka.log"
}

main() {
  local cmd="${1:-}"
  (($#)) && shift
  case "$cmd" in
    install) cmd_install "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    restart) cmd_restart "$@" ;;
    create-topic) cmd_create_topic "$@" ;;
    add-partitions) cmd_add_partitions "$@" ;;
    status) cmd_status "$@" ;;
    logs) cmd_logs "$@" ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
