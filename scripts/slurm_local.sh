#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the tests and for trying the cluster path.
#
#   scripts/slurm_local.sh start    # install (Debian, as root) if missing, configure, start
#   scripts/slurm_local.sh status   # which daemons run, and the node as SLURM sees it
#   scripts/slurm_local.sh stop     # cancel the jobs, end the daemons this script started
#   eval "$(scripts/slurm_local.sh env)"   # SLURM_CONF for sbatch, squeue, sacct, submitit
#
# Everything it writes (slurm.conf, the munge key and socket, pid files, logs, spools, the
# job-completion and accounting files) lives in one folder, .slurm_local/ in the repository
# (git-ignored), or $SLURM_LOCAL_DIR. Nothing under /etc changes: the client commands find the
# cluster through SLURM_CONF, and munge runs on its own socket and key. Idempotent: `start`
# leaves running daemons alone; `stop` ends only the processes whose pids this script's
# daemons wrote, and leaves none of them running.
#
# Configuration (SLURM 22.05, Debian bookworm): the node's CPUs and memory from `slurmd -C`;
# proctrack/linuxproc and task/none (no cgroups: slurmd refuses CgroupPlugin=disabled);
# select/cons_tres with CR_CPU_Memory, so two 1-CPU jobs run side by side; job states for
# `sacct` (which submitit polls) from slurmdbd on MariaDB in the same folder; requeued jobs may
# start again after 5 s (cred_expire); partition `local` (default) is preempted (requeued) by
# jobs of partition `urgent`.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${SLURM_LOCAL_DIR:-$REPO/.slurm_local}
CONF=$STATE/slurm.conf
PACKAGES=(slurmd slurmctld slurm-client slurmdbd munge mariadb-server)
DAEMONS=(slurmd slurmctld slurmdbd mariadbd munged)  # the order `stop` ends them in
# Ports: SLURM_LOCAL_PORT (slurmctld), +1 slurmd, +2 slurmdbd, +3 MariaDB; by default one
# of 200 blocks picked by the folder's path, so clusters of two checkouts do not collide.
PORT=${SLURM_LOCAL_PORT:-$((17000 + ($(cksum <<<"$STATE" | cut -d' ' -f1) % 200) * 4))}
DB_PORT=$((PORT + 3))

log() { echo "slurm_local: $*" >&2; }

pidfile() { echo "$STATE/run/$1.pid"; }

# The pid a daemon of ours wrote, when that process still runs that daemon.
live_pid() {
  local file pid
  file=$(pidfile "$1")
  [[ -s $file ]] || return 1
  pid=$(tr -dc '0-9' < "$file")
  [[ -n $pid && -r /proc/$pid/comm ]] || return 1
  [[ $(cat "/proc/$pid/comm") == "$1"* ]] || return 1
  echo "$pid"
}

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [[ ${#missing[@]} -eq 0 ]] && return
  if [[ $(id -u) -ne 0 ]]; then
    log "missing Debian packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})"
    exit 1
  fi
  log "installing ${missing[*]} (apt-get)"
  # policy-rc.d keeps the packages' own services from starting (docker images ship one)
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >"$STATE/log/apt.log" 2>&1 || {
    apt-get update -qq >>"$STATE/log/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
      >>"$STATE/log/apt.log" 2>&1 || { log "apt-get failed: see $STATE/log/apt.log"; exit 1; }
  }
}

write_conf() {
  local node cpus mem host
  node=$(slurmd -C | head -1)
  host=$(hostname -s)
  cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$node")
  mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
  mem=$((mem * 9 / 10))  # leave the system a tenth
  cat >"$CONF.new" <<EOF
# Written by scripts/slurm_local.sh: one node, $cpus CPUs, $mem MB for jobs.
ClusterName=mnistlab
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$STATE/munge/munge.socket,cred_expire=5
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$(pidfile slurmctld)
SlurmdPidFile=$(pidfile slurmd)
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=$((mem / cpus))
ReturnToService=2
SchedulerParameters=sched_interval=2
MessageTimeout=30
KillWait=10
InactiveLimit=0
MinJobAge=300
JobRequeue=1
# Job states for sacct (submitit polls it): slurmdbd, on MariaDB in $STATE/db
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$((PORT + 2))
AccountingStoragePass=$STATE/munge/munge.socket
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/log/jobcomp.log
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
# Preemption: a job of 'urgent' requeues the 'local' jobs it needs room from: SIGTERM, then
# SIGKILL after KillWait seconds (time to checkpoint), then back in the queue.
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=urgent Nodes=$host MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
EOF
  cat >"$STATE/slurmdbd.conf" <<EOF
# Written by scripts/slurm_local.sh
AuthType=auth/munge
AuthInfo=socket=$STATE/munge/munge.socket
DbdHost=$host
DbdAddr=127.0.0.1
DbdPort=$((PORT + 2))
SlurmUser=root
PidFile=$(pidfile slurmdbd)
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=root
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$STATE/slurmdbd.conf"
  if [[ -f $CONF ]] && cmp -s "$CONF" "$CONF.new"; then rm "$CONF.new"; else mv "$CONF.new" "$CONF"; fi
}

start_munged() {
  live_pid munged >/dev/null && return
  [[ -f $STATE/munge/munge.key ]] || {
    dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$STATE/munge/munge.key"
  }
  munged --force --socket="$STATE/munge/munge.socket" --key-file="$STATE/munge/munge.key" \
    --pid-file="$(pidfile munged)" --log-file="$STATE/log/munged.log" \
    --seed-file="$STATE/munge/munged.seed"
}

start_mariadbd() {
  live_pid mariadbd >/dev/null && return
  if [[ ! -d $STATE/db/mysql ]]; then
    mariadb-install-db --no-defaults --user=root --datadir="$STATE/db" \
      --auth-root-authentication-method=normal >"$STATE/log/mariadb-install.log" 2>&1
  fi
  # its own datadir, socket and port, on 127.0.0.1 only; no /etc/mysql settings
  mariadbd --no-defaults --user=root --datadir="$STATE/db" --socket="$STATE/run/mariadb.sock" \
    --port="$DB_PORT" --bind-address=127.0.0.1 --pid-file="$(pidfile mariadbd)" \
    --log-error="$STATE/log/mariadb.log" --innodb-buffer-pool-size=128M \
    --innodb-lock-wait-timeout=900 \
    --skip-log-bin >/dev/null 2>&1 &
  disown
  wait_for "MariaDB" 60 mariadb --no-defaults --socket="$STATE/run/mariadb.sock" -uroot -e "SELECT 1"
}

start_slurmdbd() {
  live_pid slurmdbd >/dev/null && return
  SLURM_CONF=$CONF slurmdbd 2>>"$STATE/log/slurmdbd.log"  # reads slurmdbd.conf beside SLURM_CONF
  SLURM_CONF=$CONF wait_for "slurmdbd" 60 sacctmgr -i -n list cluster
}

start_slurm() {
  export SLURM_CONF=$CONF
  if ! sacctmgr -n -P list cluster format=cluster 2>/dev/null | grep -qx mnistlab; then
    sacctmgr -i add cluster mnistlab >/dev/null
  fi
  if ! cmp -s "$CONF" "$STATE/run/started.conf"; then  # running on an older slurm.conf
    stop_daemon slurmd
    stop_daemon slurmctld
  fi
  live_pid slurmctld >/dev/null || slurmctld -f "$CONF"
  live_pid slurmd >/dev/null || slurmd -f "$CONF"
  cp "$CONF" "$STATE/run/started.conf"
  wait_for "an idle node" 60 bash -c "sinfo -h -o %t | grep -qE '^(idle|mix|alloc)'"
}

# wait_for WHAT SECONDS COMMAND...: until COMMAND succeeds
wait_for() {
  local what=$1 seconds=$2 deadline=$((SECONDS + $2))
  shift 2
  while ((SECONDS < deadline)); do
    timeout 10 "$@" >/dev/null 2>&1 && return
    sleep 0.5
  done
  log "gave up waiting for $what after ${seconds}s (ports $PORT-$((PORT + 3)) in use by another"
  log "cluster? set SLURM_LOCAL_PORT); logs: $STATE/log/"
  exit 1
}

cmd_start() {
  mkdir -p "$STATE"/{log,run,munge,spool/ctld,spool/d}
  chmod 700 "$STATE/munge"
  install_packages
  write_conf
  start_munged
  start_mariadbd
  start_slurmdbd
  start_slurm
  log "running: $(sinfo -h -o '%P %D node(s) %c CPUs %m MB %t') (SLURM_CONF=$CONF)"
}

cmd_stop() {
  export SLURM_CONF=$CONF
  if live_pid slurmctld >/dev/null; then
    timeout 20 scancel --full --user="$(id -un)" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do  # (a dead controller: squeue times out, lists nothing)
      [[ -z $(timeout 5 squeue -h -o %i 2>/dev/null) ]] && break
      sleep 0.5
    done
  fi
  for d in "${DAEMONS[@]}"; do
    stop_daemon "$d"
  done
}

# stop_daemon NAME: end the daemon whose pid ours wrote (TERM, then KILL after 30 s)
stop_daemon() {
  local pid
  pid=$(live_pid "$1") || return 0
  kill -TERM "$pid"
  for ((i = 0; i < 60; i++)); do
    [[ -d /proc/$pid ]] || break
    sleep 0.5
  done
  if [[ -d /proc/$pid ]]; then
    log "$1 (pid $pid) did not end within 30 s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$(pidfile "$1")"
  log "stopped $1 (pid $pid)"
}

cmd_status() {
  local down=0
  for d in "${DAEMONS[@]}"; do
    if pid=$(live_pid "$d"); then echo "$d: running (pid $pid)"; else echo "$d: stopped"; down=1; fi
  done
  [[ $down -eq 0 ]] && SLURM_CONF=$CONF sinfo
  return $down
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
