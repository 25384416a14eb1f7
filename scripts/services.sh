#!/usr/bin/env bash
# Starts/stops the scaled-mode backing services on 127.0.0.1 without Docker:
#   - Redis (Debian's redis-server), AOF on, daemonized with a pidfile;
#   - Apache Kafka 4.x, single node KRaft (broker+controller), from Maven Central jars.
#
# Usage: bash scripts/services.sh up|down|status|env [redis|kafka]
#   up      start what is not running, wait until it answers, print the two env lines on stdout
#   down    stop what this script started (by pidfile), wait for exit
#   status  one line per service
#   env     print the two env lines if both services run (exit 1 otherwise)
# The optional second argument limits up/down/status to one service (tests restart one at a time).
#
# stdout carries only KAFKA_BROKERS=... and REDIS_URL=... lines; everything else goes to stderr.
#
# Environment (all optional):
#   CHAT_SERVICES_DIR   state folder (default: <repo>/.services)
#   CHAT_REDIS_PORT     Redis port (default 6390)
#   CHAT_KAFKA_PORT     Kafka broker port (default 9192)
#   CHAT_KAFKA_CONTROLLER_PORT  KRaft controller port (default 9193)
#   CHAT_KAFKA_VERSION  Kafka version fetched from Maven Central (default 4.3.1)
#   CHAT_KAFKA_CACHE    where the jars are cached (default ~/.cache/chat-p2p/kafka-<version>)
#   CHAT_KAFKA_HEAP     JVM heap flags (default "-Xms256m -Xmx512m")
#   CHAT_SERVICES_TIMEOUT  seconds to wait for each service (default 90)
#   DENO                deno binary for the Kafka metadata probe (default: deno on PATH)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${CHAT_SERVICES_DIR:-$ROOT/.services}"
REDIS_PORT="${CHAT_REDIS_PORT:-6390}"
KAFKA_PORT="${CHAT_KAFKA_PORT:-9192}"
CONTROLLER_PORT="${CHAT_KAFKA_CONTROLLER_PORT:-9193}"
KAFKA_VERSION="${CHAT_KAFKA_VERSION:-4.3.1}"
KAFKA_CACHE="${CHAT_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chat-p2p/kafka-$KAFKA_VERSION}"
KAFKA_LIBS="$KAFKA_CACHE/libs"
KAFKA_HEAP="${CHAT_KAFKA_HEAP:--Xms256m -Xmx512m}"
TIMEOUT="${CHAT_SERVICES_TIMEOUT:-90}"
DENO="${DENO:-deno}"
HOST=127.0.0.1

REDIS_DIR="$STATE/redis"
REDIS_PID="$REDIS_DIR/redis.pid"
REDIS_LOG="$REDIS_DIR/redis.log"
KAFKA_DIR="$STATE/kafka"
KAFKA_PID="$KAFKA_DIR/kafka.pid"
KAFKA_LOGS="$KAFKA_DIR/logs"
KAFKA_OUT="$KAFKA_LOGS/stdout.log"
# The JVM command of Kafka's tools and of the broker.
# shellcheck disable=SC2206 # KAFKA_HEAP is a list of flags
KAFKA_JAVA=(java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.xml" -Dkafka.logs.dir="$KAFKA_LOGS"
  -cp "$KAFKA_LIBS/*")

log() { printf 'services: %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# pid_alive PIDFILE PATTERN: prints the pid when it runs and its command line contains PATTERN
# (so a recycled pid never gets signalled).
pid_alive() {
  local file="$1" pattern="$2" pid
  [[ -s "$file" ]] || return 1
  pid="$(tr -dc '0-9' <"$file")"
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern" || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# listener_pid PORT: the pid holding the listening socket of PORT (empty when none is found, e.g.
# while a killed process is being torn down). Asks ss when it is installed, else reads /proc.
listener_pid() {
  local hex inode fd
  if command -v ss >/dev/null 2>&1; then
    ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2
    return 0
  fi
  hex="$(printf ':%04X' "$1")"
  inode="$(awk -v p="$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10; exit }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null)"
  [[ -n "$inode" && "$inode" != 0 ]] || return 0
  for fd in /proc/[0-9]*/fd/*; do
    if [[ "$(readlink "$fd" 2>/dev/null)" == "socket:[$inode]" ]]; then
      fd="${fd#/proc/}"
      echo "${fd%%/*}"
      return 0
    fi
  done
}

cmdline_of() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true; }

# ours NAME PID: true when PID is a service this script started, for this state folder or for a
# checkout that was deleted since (an orphan: nothing else can reach its files any more).
ours() {
  local name="$1" pid="$2" cmd dir props
  cmd="$(cmdline_of "$pid")"
  case "$name" in
  redis)
    [[ "$cmd" == redis-server* ]] || return 1
    dir="$(readlink "/proc/$pid/cwd" 2>/dev/null)" || return 1
    [[ "$dir" == "$REDIS_DIR" || "$dir" == */redis" (deleted)" ]]
    ;;
  kafka)
    [[ "$cmd" == *kafka.Kafka* ]] || return 1
    props="${cmd##*kafka.Kafka }"
    props="${props%% *}"
    [[ "$props" == "$KAFKA_DIR/server.properties" ]] ||
      [[ "$props" == */kafka/server.properties && ! -e "$props" ]]
    ;;
  *) return 1 ;;
  esac
}

# free_port NAME PORT SETTING: makes sure PORT can be listened on. A process of ours still on it
# (one exiting after a SIGKILL, or a stale one from a deleted checkout or a lost pidfile) is
# waited for or stopped; anything else is an error naming the holder.
free_port() {
  local name="$1" port="$2" setting="$3" pid deadline=$((SECONDS + 30))
  while port_open "$port"; do
    pid="$(listener_pid "$port")"
    if [[ -n "$pid" ]] && ours "$name" "$pid"; then
      log "stopping a stale $name of ours on port $port (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      wait_exit "$name" "$pid" 30
    elif [[ -n "$pid" && -n "$(cmdline_of "$pid")" ]]; then
      die "port $HOST:$port is taken by pid $pid ($(cmdline_of "$pid" | cut -c1-120)); set $setting"
    elif ((SECONDS >= deadline)); then
      die "port $HOST:$port is still taken after 30 s by a process this user cannot see" \
        "(another user's, or one still exiting); set $setting"
    else
      sleep 0.2 # a killed process lets go of its sockets only once it is fully gone
    fi
  done
}

# wait_exit NAME PID SECONDS: waits for PID to exit, SIGKILL after SECONDS.
wait_exit() {
  local name="$1" pid="$2" deadline=$((SECONDS + $3))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "$name (pid $pid) still running after $3s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
      break
    fi
    sleep 0.1
  done
}

show_tail() {
  local f
  for f in "$@"; do
    [[ -s "$f" ]] || continue
    printf -- '--- last lines of %s ---\n' "$f" >&2
    tail -n 30 "$f" >&2
  done
}

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found; $2"; }

# ---------------------------------------------------------------- Redis

redis_running() { pid_alive "$REDIS_PID" redis-server >/dev/null; }
redis_answers() { [[ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

redis_up() {
  if redis_running; then
    redis_answers || die "redis-server (pid $(cat "$REDIS_PID")) runs but does not answer on $HOST:$REDIS_PORT"
    log "redis already running on $HOST:$REDIS_PORT"
    return
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    log "redis-server missing; installing Debian's redis-server"
    apt-get install -y redis-server >&2 || { apt-get update >&2 && apt-get install -y redis-server >&2; } ||
      die "could not install redis-server (apt-get install -y redis-server)"
  fi
  free_port redis "$REDIS_PORT" CHAT_REDIS_PORT
  mkdir -p "$REDIS_DIR"
  # appendfsync always: a put is fsynced before Redis answers, so an envelope the relay
  # acknowledged survives even a power loss, as in the embedded (SQLite synchronous=FULL) mode.
  # Redis groups the fsyncs of one event-loop turn; "everysec" is faster but can lose ~1 s.
  cat >"$REDIS_DIR/redis.conf" <<EOF
bind $HOST
port $REDIS_PORT
protected-mode yes
daemonize yes
pidfile $REDIS_PID
logfile $REDIS_LOG
loglevel notice
dir $REDIS_DIR
appendonly yes
appendfilename appendonly.aof
appendfsync always
save ""
maxmemory-policy noeviction
EOF
  log "starting redis-server on $HOST:$REDIS_PORT (state in $REDIS_DIR)"
  redis-server "$REDIS_DIR/redis.conf" </dev/null >>"$REDIS_LOG" 2>&1 ||
    { show_tail "$REDIS_LOG"; die "redis-server failed to start"; }
  local deadline=$((SECONDS + TIMEOUT))
  until redis_answers; do
    if ((SECONDS >= deadline)); then
      show_tail "$REDIS_LOG"
      stop redis "$REDIS_PID" redis-server
      die "redis did not answer PING on $HOST:$REDIS_PORT within ${TIMEOUT}s"
    fi
    sleep 0.1
  done
  log "redis ready"
}

# ---------------------------------------------------------------- Kafka

kafka_running() { pid_alive "$KAFKA_PID" kafka.Kafka >/dev/null; }

kafka_answers() {
  port_open "$KAFKA_PORT" || return 1
  (cd "$ROOT" && "$DENO" run --quiet --allow-net --allow-env --allow-read --allow-sys \
    scripts/kafka/ready.ts "$HOST:$KAFKA_PORT" 5000) 2>>"$KAFKA_LOGS/probe.log"
}

kafka_fetch() {
  if [[ -f "$KAFKA_CACHE/.complete" ]]; then return; fi
  need mvn "install Maven (apt-get install -y maven) to fetch the Kafka jars"
  log "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS"
  local tmp="$KAFKA_CACHE/libs.tmp"
  rm -rf "$tmp"
  mkdir -p "$KAFKA_CACHE"
  mvn -B -q -f "$ROOT/scripts/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >&2 ||
    die "mvn could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  touch "$KAFKA_CACHE/.complete"
}

kafka_up() {
  if kafka_running; then
    local deadline=$((SECONDS + TIMEOUT))
    until kafka_answers; do
      ((SECONDS < deadline)) || { show_tail "$KAFKA_LOGS/server.log" "$KAFKA_OUT" "$KAFKA_LOGS/probe.log"; die "kafka (pid $(cat "$KAFKA_PID")) runs but does not answer on $HOST:$KAFKA_PORT"; }
      sleep 0.5
    done
    log "kafka already running on $HOST:$KAFKA_PORT"
    return
  fi
  need java "install a Java 17+ runtime (apt-get install -y openjdk-17-jre-headless)"
  need "$DENO" "deno is needed for the Kafka readiness probe (set DENO=/path/to/deno)"
  free_port kafka "$KAFKA_PORT" CHAT_KAFKA_PORT
  free_port kafka "$CONTROLLER_PORT" CHAT_KAFKA_CONTROLLER_PORT
  kafka_fetch
  mkdir -p "$KAFKA_DIR/data" "$KAFKA_LOGS"
  cat >"$KAFKA_DIR/server.properties" <<EOF
# Generated by scripts/services.sh: single-node KRaft dev broker on $HOST.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$KAFKA_DIR/data
# Topics are created explicitly (the relay creates its topic with its partition count).
auto.create.topics.enable=false
num.partitions=12
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# A consumer group joins at once instead of waiting 3 s for more members (each relay has its own).
group.initial.rebalance.delay.ms=0
# Announcements are only hints (mailboxes are the truth), so a day of retention is plenty.
log.retention.hours=24
log.segment.bytes=104857600
EOF
  if [[ ! -f "$KAFKA_DIR/data/meta.properties" ]]; then
    local cluster_id
    # As Kafka's own Uuid.randomUuid: never one that starts with "-", which the format tool's
    # argument parser would take for an option (1 run in 64 failed with "expected one argument").
    cluster_id="-"
    while [[ "$cluster_id" == -* ]]; do
      cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    done
    log "formatting KRaft storage (cluster id $cluster_id)"
    "${KAFKA_JAVA[@]}" kafka.tools.StorageTool format --ignore-formatted -t "$cluster_id" \
      -c "$KAFKA_DIR/server.properties" </dev/null >>"$KAFKA_OUT" 2>&1 ||
      { show_tail "$KAFKA_OUT"; die "kafka storage format failed"; }
  fi
  log "starting kafka $KAFKA_VERSION on $HOST:$KAFKA_PORT (controller $CONTROLLER_PORT, state in $KAFKA_DIR)"
  # setsid + redirected stdio: the broker outlives this shell and holds no pipe of the caller.
  rm -f "$KAFKA_PID"
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$KAFKA_PID" \
    "${KAFKA_JAVA[@]}" kafka.Kafka "$KAFKA_DIR/server.properties" </dev/null >>"$KAFKA_OUT" 2>&1 &
  local deadline=$((SECONDS + TIMEOUT))
  until [[ -s "$KAFKA_PID" ]] || ((SECONDS >= deadline)); do sleep 0.05; done
  until kafka_answers; do
    if ! kafka_running; then
      show_tail "$KAFKA_LOGS/server.log" "$KAFKA_OUT"
      die "kafka exited during startup"
    fi
    if ((SECONDS >= deadline)); then
      show_tail "$KAFKA_LOGS/server.log" "$KAFKA_OUT" "$KAFKA_LOGS/probe.log"
      stop kafka "$KAFKA_PID" kafka.Kafka
      die "kafka did not answer a metadata request on $HOST:$KAFKA_PORT within ${TIMEOUT}s"
    fi
    sleep 0.5
  done
  log "kafka ready"
}

# ---------------------------------------------------------------- stop

# stop NAME PIDFILE PATTERN
stop() {
  local name="$1" file="$2" pattern="$3" pid
  if ! pid="$(pid_alive "$file" "$pattern")"; then
    rm -f "$file"
    log "$name not running"
    return
  fi
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  wait_exit "$name" "$pid" 60
  rm -f "$file"
  log "$name stopped"
}

print_env() {
  echo "KAFKA_BROKERS=$HOST:$KAFKA_PORT"
  echo "REDIS_URL=redis://$HOST:$REDIS_PORT"
}

status_line() {
  local name="$1" file="$2" pattern="$3" port="$4" pid
  if pid="$(pid_alive "$file" "$pattern")"; then
    echo "$name: running (pid $pid, $HOST:$port)"
  else
    echo "$name: stopped"
    return 1
  fi
}

cmd="${1:-}"
which="${2:-all}"
case "$which" in all | redis | kafka) ;; *) die "unknown service '$which' (redis or kafka)" ;; esac
want() { [[ "$which" == all || "$which" == "$1" ]]; }

case "$cmd" in
up)
  if want redis; then redis_up; fi
  if want kafka; then kafka_up; fi
  print_env
  ;;
down)
  if want kafka; then stop kafka "$KAFKA_PID" kafka.Kafka; fi
  if want redis; then stop redis "$REDIS_PID" redis-server; fi
  ;;
status)
  rc=0
  if want redis; then status_line redis "$REDIS_PID" redis-server "$REDIS_PORT" || rc=3; fi
  if want kafka; then status_line kafka "$KAFKA_PID" kafka.Kafka "$KAFKA_PORT" || rc=3; fi
  exit "$rc"
  ;;
env)
  redis_running || die "redis is not running (bash scripts/services.sh up)"
  kafka_running || die "kafka is not running (bash scripts/services.sh up)"
  print_env
  ;;
*)
  echo "usage: bash scripts/services.sh up|down|status|env [redis|kafka]" >&2
  exit 2
  ;;
esac
