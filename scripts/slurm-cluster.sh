#!/usr/bin/env bash
# Start and stop a real one-node Slurm cluster on this machine, so that the
# integration tests can run the submitit Slurm launcher against real sbatch,
# squeue, sacct, job arrays, signals and preemption.
#
# Targets Debian 12 (Slurm 22.05) run as root on a machine whose PID 1 is not
# systemd: every daemon is started by hand and tracked through its pid file.
#
# Usage:
#   bash scripts/slurm-cluster.sh start      install packages if missing, start all
#                                            daemons, wait until the node is idle
#   bash scripts/slurm-cluster.sh stop       cancel all jobs, wait, stop all daemons
#   bash scripts/slurm-cluster.sh status     exit 0 if the cluster is up and usable
#   bash scripts/slurm-cluster.sh available  exit 0 if this machine can run the
#                                            cluster, else print why and exit 1
#
# Environment:
#   SLURM_CLUSTER_KILLWAIT   seconds between SIGTERM and SIGKILL when a job is
#                            cancelled, times out or is preempted (default 5;
#                            Slurm's own default of 30 s makes tests slow)
#   SLURM_CLUSTER_GRACETIME  seconds a preempted job on "debug" gets between its
#                            --signal and SIGTERM (default 5)
#
# The cluster:
#   partition "debug"  (default) PriorityTier=1, jobs there are preempted by REQUEUE
#   partition "nograce"          as "debug" but GraceTime=0 (Slurm's default): a
#                                preempted job is requeued at once
#   partition "urgent"           PriorityTier=2, never preempted; a job there that
#                                needs the CPUs of running "debug"/"nograce" jobs preempts them
#   Accounting through slurmdbd + MariaDB, because submitit polls `sacct` for job
#   states: without it a job killed before writing its result (scancel, timeout)
#   stays UNKNOWN to submitit and the launcher waits forever.
#
# Daemons: munged, mariadbd, slurmdbd, slurmctld, slurmd. Logs in /var/log/slurm
# (munged: /var/log/munge). The cluster is machine-wide: one per machine.
set -euo pipefail

KILLWAIT=${SLURM_CLUSTER_KILLWAIT:-5}
GRACETIME=${SLURM_CLUSTER_GRACETIME:-5}

PACKAGES="slurmctld slurmd slurm-client munge slurmdbd mariadb-server"
# What the script runs; a machine with all of these needs no packages installed.
DAEMONS="/usr/sbin/munged /usr/sbin/mariadbd /usr/sbin/slurmdbd /usr/sbin/slurmctld /usr/sbin/slurmd"
CLIENTS="munge unmunge mariadb sbatch squeue sinfo scontrol scancel sacct"

CONF_DIR=/etc/slurm
RUN_DIR=/run/slurm-cluster            # pid files of slurmdbd, slurmctld, slurmd
LOG_DIR=/var/log/slurm
STATE_DIR=/var/lib/slurm/slurmctld
SPOOL_DIR=/var/lib/slurm/slurmd
LOCK_FILE=/run/slurm-cluster.lock

MUNGE_PID=/run/munge/munged.pid       # munged's built-in default
MUNGE_LOG=/var/log/munge/munged.log
MARIADB_PID=/run/mysqld/mysqld.pid    # set by Debian's /etc/mysql/mariadb.conf.d/50-server.cnf
MARIADB_LOG=$LOG_DIR/mariadb.log
SLURMDBD_PID=$RUN_DIR/slurmdbd.pid
SLURMDBD_LOG=$LOG_DIR/slurmdbd.log
SLURMCTLD_PID=$RUN_DIR/slurmctld.pid
SLURMCTLD_LOG=$LOG_DIR/slurmctld.log
SLURMD_PID=$RUN_DIR/slurmd.pid
SLURMD_LOG=$LOG_DIR/slurmd.log

SLURMDBD_PORT=6819
# MariaDB runs with --skip-networking, so this user is reachable only through the
# local unix socket; a fixed password is fine for a throw-away test cluster.
DB_USER=slurm
DB_PASS=slurmdbpass
DB_NAME=slurm_acct_db

T0=$(date +%s%N)
log() {
  local ms=$(( ($(date +%s%N) - T0) / 1000000 ))
  printf 'slurm-cluster [%d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*"
}
# die MESSAGE [LOGFILE]: fail, naming the log and showing its end.
die() {
  echo "slurm-cluster: error: $1" >&2
  if [ -n "${2:-}" ]; then
    echo "slurm-cluster: see $2; its last lines:" >&2
    tail -n 25 "$2" >&2 2>/dev/null || echo "  ($2 does not exist)" >&2
  fi
  exit 1
}

# ---------------------------------------------------------------------------
# Processes are tracked by pid file. PID 1 on these machines reaps orphans only
# lazily, so a daemon that has exited can linger as a zombie and `kill -0` still
# succeeds on it: read the state letter in /proc/PID/stat instead. The command
# name is checked too, so a stale pid file whose pid was reused does not count.

pid_alive() {   # PID NAME
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  # /proc/PID/stat is "PID (COMM) STATE ..."; COMM may hold spaces, so split on ") "
  [ "${stat#*) }" != "$stat" ] || return 1
  local comm=${stat#*(}; comm=${comm%) *}
  local state=${stat##*) }; state=${state%% *}
  [ "$comm" = "$2" ] && [ "$state" != Z ]
}

pid_gone() { ! pid_alive "$@"; }

alive() {   # PIDFILE NAME
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  pid_alive "$pid" "$2"
}

# stop_pidfile PIDFILE NAME: SIGTERM, wait up to 20 s, then SIGKILL.
stop_pidfile() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  if [[ "$pid" =~ ^[0-9]+$ ]] && pid_alive "$pid" "$2"; then
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_for 20 pid_gone "$pid" "$2"; then
      echo "slurm-cluster: $2 (pid $pid) ignored SIGTERM for 20 s, sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $2 (pid $pid)"
  fi
  rm -f "$1"
}

# wait_for SECONDS COMMAND...: poll COMMAND every 0.1 s until it succeeds.
wait_for() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# wait_daemon SECONDS PIDFILE NAME COMMAND...: like wait_for, but give up early
# when the daemon is gone for 5 s in a row (e.g. it hit a fatal error at once).
# Not at once: a daemon writes its pid file only a moment after it forks.
wait_daemon() {
  local deadline=$(( $(date +%s) + $1 )) pidfile=$2 name=$3 gone_since=""
  shift 3
  until "$@"; do
    if alive "$pidfile" "$name"; then
      gone_since=""
    elif [ -z "$gone_since" ]; then
      gone_since=$(date +%s)
    elif [ $(( $(date +%s) - gone_since )) -ge 5 ]; then
      return 1
    fi
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# The node is named after the short hostname: slurmd looks itself up by it.
node_name() { hostname -s; }

# The timeout: scontrol waits 10 s (MessageTimeout) for an answer when something
# else holds the port.
ctld_up() { timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP'; }

# Usable = registered and able to take jobs. "idle*" (trailing *: not
# responding), "down", "drained" and "unknown" are not.
node_ok() {
  case "$(sinfo -h -n "$(node_name)" -o %T 2>/dev/null)" in
    idle | mixed | allocated | completing | planned) return 0 ;;
  esac
  return 1
}

queue_empty() { [ -z "$(squeue -h -o %i 2>/dev/null)" ]; }
munge_ok() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }
mariadb_ok() { mariadb -e 'SELECT 1' >/dev/null 2>&1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------------------
# available

# Prints the reason this machine cannot run the cluster; empty if it can.
unavailable_reason() {
  if [ "$(id -u)" != 0 ]; then
    echo "must run as root (the daemons run as root and write /etc, /run, /var)"
    return
  fi
  local missing="" b
  for b in $DAEMONS; do [ -x "$b" ] || missing="$missing $b"; done
  for b in $CLIENTS; do command -v "$b" >/dev/null || missing="$missing $b"; done
  [ -z "$missing" ] && return
  if [ ! -r /etc/debian_version ] || ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
    echo "not a Debian system with apt-get, and Slurm is not installed (missing:$missing)"
  fi
}

cmd_available() {
  local reason
  reason=$(unavailable_reason)
  if [ -n "$reason" ]; then
    echo "slurm-cluster: unavailable: $reason" >&2
    return 1
  fi
  echo "slurm-cluster: available"
}

# ---------------------------------------------------------------------------
# start

install_packages() {
  command -v dpkg-query >/dev/null || return 0   # not Debian: binaries checked by `available`
  local missing="" p
  for p in $PACKAGES; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
  done
  [ -n "$missing" ] || return 0
  log "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  # Without systemd the postinst scripts print "invoke-rc.d: policy-rc.d denied
  # execution of start" and start nothing: harmless, the daemons are started below.
  # shellcheck disable=SC2086  # word splitting of the package list is wanted
  apt-get install -y -qq --no-install-recommends $missing >/dev/null \
    || die "apt-get install$missing failed"
  log "installed:$missing"
}

start_munge() {
  # The munge postinst creates the key; recreate it only if it is gone.
  if [ ! -s /etc/munge/munge.key ]; then
    /usr/sbin/mungekey --create --force
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
  fi
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
  if ! alive "$MUNGE_PID" munged; then
    # munged refuses to run as root; it forks into the background by itself.
    runuser -u munge -- /usr/sbin/munged 9>&- || die "munged failed to start" "$MUNGE_LOG"
  fi
  wait_daemon 10 "$MUNGE_PID" munged munge_ok || die "munged is not answering (munge -n | unmunge fails)" "$MUNGE_LOG"
  log "munged up"
}

start_mariadb() {
  install -d -o mysql -g mysql -m 0755 /run/mysqld
  # The mariadb-server postinst creates the data dir; create it if it was removed.
  if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >>"$MARIADB_LOG" 2>&1 \
      || die "mariadb-install-db failed" "$MARIADB_LOG"
  fi
  if ! alive "$MARIADB_PID" mariadbd; then
    # mariadbd does not daemonize: detach it so this script returns and leaves no
    # pipe open. No TCP port: slurmdbd uses the unix socket /run/mysqld/mysqld.sock.
    setsid -f /usr/sbin/mariadbd --user=mysql --skip-networking \
      >>"$MARIADB_LOG" 2>&1 </dev/null 9>&-
  fi
  wait_daemon 30 "$MARIADB_PID" mariadbd mariadb_ok || die "MariaDB did not come up" "$MARIADB_LOG"
  # As root, Debian's MariaDB authenticates through the unix socket: no password.
  mariadb -e "CREATE DATABASE IF NOT EXISTS $DB_NAME;
              CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
              GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost';
              FLUSH PRIVILEGES;" || die "could not create the Slurm database user" "$MARIADB_LOG"
  log "MariaDB up"
}

# write_if_changed FILE MODE < CONTENT: replace FILE only if CONTENT differs,
# and set FILE_CHANGED=1 if it did (so a running cluster is reconfigured only
# when needed).
FILE_CHANGED=0
write_if_changed() {
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  chmod "$2" "$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then
    rm -f "$tmp"
    FILE_CHANGED=0
  else
    mv -f "$tmp" "$1"
    FILE_CHANGED=1
  fi
}

start_slurmdbd() {
  # slurmdbd refuses a slurmdbd.conf that others can read (it holds the password):
  # "fatal: slurmdbd.conf file ... should be 600 is 644".
  write_if_changed "$CONF_DIR/slurmdbd.conf" 0600 <<EOF
# Written by scripts/slurm-cluster.sh; edits are overwritten on the next start.
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$SLURMDBD_PORT
SlurmUser=root
DebugLevel=info
LogFile=$SLURMDBD_LOG
PidFile=$SLURMDBD_PID
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=$DB_USER
StoragePass=$DB_PASS
StorageLoc=$DB_NAME
EOF
  if ! alive "$SLURMDBD_PID" slurmdbd; then
    /usr/sbin/slurmdbd 9>&- || die "slurmdbd failed to start" "$SLURMDBD_LOG"
  fi
  wait_daemon 30 "$SLURMDBD_PID" slurmdbd port_open "$SLURMDBD_PORT" || die "slurmdbd is not listening on port $SLURMDBD_PORT" "$SLURMDBD_LOG"
  log "slurmdbd up"
}

# Slurm 23.02 renamed the switch that makes preemption send the job's --signal.
# 22.05 (Debian 12) stops with a parse error on the new spelling.
preempt_signal_line() {
  local ver major minor
  ver=$(/usr/sbin/slurmctld -V 2>/dev/null | awk '{print $2}')
  major=${ver%%.*}; minor=${ver#*.}; minor=${minor%%.*}
  if [[ "$major" =~ ^[0-9]+$ && "$minor" =~ ^[0-9]+$ ]] && [ $((10#$major * 100 + 10#$minor)) -ge 2302 ]; then
    echo "PreemptParameters=send_user_signal"
  else
    echo "SlurmctldParameters=preempt_send_user_signal"
  fi
}

# Writes slurm.conf; sets FILE_CHANGED=1 if it changed.
write_slurm_conf() {
  local host hw mem_mb
  host=$(node_name)
  # The real layout, e.g. "CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2
  # ThreadsPerCore=1". With only CPUs=N slurmd complains that the node was
  # reconfigured and sinfo shows a wrong socket/core split.
  hw=$(/usr/sbin/slurmd -C | head -n 1 | sed -e 's/^NodeName=[^ ]* //' -e 's/ RealMemory=[0-9]*//')
  [[ "$hw" == CPUs=* ]] || die "unexpected output of 'slurmd -C': $hw"
  # Offer all memory but 1 GiB, so jobs do not starve the daemons and MariaDB.
  mem_mb=$(awk '/^MemTotal:/ { m = int($2 / 1024) - 1024; print (m > 512 ? m : 512) }' /proc/meminfo)

  # submitit makes a job's log folder (.submitit/<job id>/) only once sbatch has returned, and
  # Slurm 22.05 fails a batch job whose stdout folder is missing ("Could not open stdout file",
  # hydra-ecosystem/hydra#2100). On this idle node a job can start within 40 ms of its
  # submission, before the folder is there: the prolog waits for it (10 s at most, never failing,
  # as a failing prolog would drain the node). A path with spaces is not waited for.
  write_if_changed "$CONF_DIR/prolog-wait-for-stdout-dir.sh" 0755 <<'EOF'
#!/bin/sh
PATH=/usr/bin:/bin:/usr/sbin:/sbin
out=$(scontrol show job "$SLURM_JOB_ID" --oneliner 2>/dev/null | tr ' ' '\n' | sed -n 's/^StdOut=//p')
[ -n "$out" ] || exit 0
dir=$(dirname "$out")
i=0
while [ ! -d "$dir" ] && [ "$i" -lt 100 ]; do
  sleep 0.1
  i=$((i + 1))
done
exit 0
EOF
  local prolog_changed=$FILE_CHANGED
  write_if_changed "$CONF_DIR/slurm.conf" 0644 <<EOF
# One-node test cluster. Written by scripts/slurm-cluster.sh; edits are
# overwritten on the next start.
ClusterName=localci
# The address avoids any dependence on resolving the hostname.
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# No mail on this machine; the default MailProg is missing and slurmctld logs an error.
MailProg=/bin/true

# No systemd and no cgroup delegation: track job processes through /proc;
# no CPU binding and no memory enforcement.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30

# sacct must work: submitit polls it for job states.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=${SLURMDBD_PORT}
JobCompType=jobcomp/none

# Waits for the job's stdout folder (see above).
Prolog=${CONF_DIR}/prolog-wait-for-stdout-dir.sh

SchedulerType=sched/backfill
# Start the next job (e.g. the next array task) as soon as one ends, instead of
# Slurm's default 3 s gap.
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
# Reject at submit time, instead of queueing forever (Reason=PartitionConfig),
# a job asking for more CPUs than the node has.
EnforcePartLimits=ALL

# Preemption: a job on "urgent" that needs the CPUs of running jobs on "debug"
# requeues them; they first get their --signal (e.g. submitit's USR2), then
# SIGTERM after GraceTime and SIGKILL after KillWait.
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
$(preempt_signal_line)

# A node that was DOWN (e.g. cluster stopped while a job ran) comes back by itself.
ReturnToService=2
SlurmctldPidFile=${SLURMCTLD_PID}
SlurmdPidFile=${SLURMD_PID}
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=${STATE_DIR}
SlurmdSpoolDir=${SPOOL_DIR}
SlurmctldLogFile=${SLURMCTLD_LOG}
SlurmdLogFile=${SLURMD_LOG}
SlurmctldDebug=info
SlurmdDebug=info
# Seconds between SIGTERM and SIGKILL (Slurm's default 30 makes tests slow).
KillWait=${KILLWAIT}
InactiveLimit=0
# Finished jobs stay visible to squeue/scontrol for 5 minutes.
MinJobAge=300
MaxArraySize=1001
SlurmctldTimeout=30
SlurmdTimeout=30

NodeName=${host} NodeAddr=127.0.0.1 ${hw} RealMemory=${mem_mb} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=${GRACETIME}
PartitionName=nograce Nodes=ALL Default=NO MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=0
PartitionName=urgent Nodes=ALL Default=NO MaxTime=INFINITE State=UP PriorityTier=2 PreemptMode=OFF
EOF
  [ "$prolog_changed" = 0 ] || FILE_CHANGED=1
}

start_slurm() {
  write_slurm_conf

  if alive "$SLURMCTLD_PID" slurmctld; then
    # Already running (start called twice): apply a changed slurm.conf, e.g. a
    # different SLURM_CLUSTER_KILLWAIT, to slurmctld and slurmd.
    if [ "$FILE_CHANGED" = 1 ] && ctld_up; then
      scontrol reconfigure || die "scontrol reconfigure failed" "$SLURMCTLD_LOG"
      log "slurm.conf changed: reconfigured"
    fi
  else
    # -i: ignore unreadable state files left by an earlier run.
    /usr/sbin/slurmctld -i 9>&- || die "slurmctld failed to start" "$SLURMCTLD_LOG"
  fi
  wait_daemon 30 "$SLURMCTLD_PID" slurmctld ctld_up || die "slurmctld did not come up (scontrol ping)" "$SLURMCTLD_LOG"
  log "slurmctld up"

  if ! alive "$SLURMD_PID" slurmd; then
    /usr/sbin/slurmd 9>&- || die "slurmd failed to start" "$SLURMD_LOG"
  fi
  if ! wait_daemon 10 "$SLURMD_PID" slurmd node_ok; then
    # A node drained or down from an earlier run does not come back by itself.
    alive "$SLURMD_PID" slurmd || die "slurmd exited" "$SLURMD_LOG"
    scontrol update NodeName="$(node_name)" State=RESUME 2>/dev/null || true
    wait_for 20 node_ok \
      || die "node $(node_name) is not usable: $(sinfo -h -n "$(node_name)" -o '%T %E' 2>/dev/null)" "$SLURMD_LOG"
  fi
  log "slurmd up, node $(node_name) $(sinfo -h -n "$(node_name)" -o %T)"
}

cmd_start() {
  local reason
  reason=$(unavailable_reason)
  [ -z "$reason" ] || die "$reason"
  [[ "$KILLWAIT" =~ ^[0-9]+$ ]] || die "SLURM_CLUSTER_KILLWAIT must be a number of seconds, not '$KILLWAIT'"
  [[ "$GRACETIME" =~ ^[0-9]+$ ]] || die "SLURM_CLUSTER_GRACETIME must be a number of seconds, not '$GRACETIME'"

  install_packages
  install -d -m 0755 "$CONF_DIR" "$RUN_DIR" "$LOG_DIR" "$STATE_DIR" "$SPOOL_DIR"
  start_munge
  start_mariadb
  start_slurmdbd
  start_slurm
  sinfo
}

# ---------------------------------------------------------------------------
# stop

cmd_stop() {
  [ "$(id -u)" = 0 ] || die "must run as root"
  # Stopping slurmd does not stop running jobs (their slurmstepd lives on), so
  # cancel everything first and wait until the queue is empty: SIGTERM, then
  # SIGKILL after KillWait, then slurmd reports the job gone.
  if alive "$SLURMCTLD_PID" slurmctld && ctld_up; then
    if ! queue_empty; then
      log "cancelling all jobs"
      scancel --user=root 2>/dev/null || true
      local kw
      kw=$(scontrol show config 2>/dev/null | awk '$1 == "KillWait" { print $3 + 0 }')
      if ! wait_for $(( ${kw:-30} + 30 )) queue_empty; then
        echo "slurm-cluster: jobs still in the queue, stopping anyway:" >&2
        squeue >&2 || true
      fi
    fi
  fi
  # Reverse start order: slurmctld reports to slurmdbd on shutdown, slurmdbd
  # needs MariaDB, and all of them authenticate through munged.
  stop_pidfile "$SLURMD_PID" slurmd
  stop_pidfile "$SLURMCTLD_PID" slurmctld
  stop_pidfile "$SLURMDBD_PID" slurmdbd
  stop_pidfile "$MARIADB_PID" mariadbd
  stop_pidfile "$MUNGE_PID" munged
  log "stopped"
}

# ---------------------------------------------------------------------------
# status

cmd_status() {
  local host
  host=$(node_name)
  if ! command -v scontrol >/dev/null || ! ctld_up; then
    echo "slurm-cluster: down (slurmctld not answering)"
    return 1
  fi
  if ! node_ok; then
    echo "slurm-cluster: down (node $host: $(sinfo -h -n "$host" -o '%T %E' 2>/dev/null))"
    return 1
  fi
  if ! alive "$SLURMDBD_PID" slurmdbd; then
    echo "slurm-cluster: down (slurmdbd not running, sacct would fail)"
    return 1
  fi
  echo "slurm-cluster: up (node $host $(sinfo -h -n "$host" -o %T))"
}

# ---------------------------------------------------------------------------

usage() {
  echo "usage: bash $0 {start|stop|status|available}" >&2
  exit 2
}

main() {
  [ $# = 1 ] || usage
  case "$1" in
    start | stop)
      # Serialise start/stop from parallel test sessions on the same machine.
      # The daemons are started with "9>&-": a daemon inheriting fd 9 would hold
      # the lock for as long as it runs and block every later start or stop.
      [ "$(id -u)" = 0 ] || die "must run as root"
      exec 9>"$LOCK_FILE"
      flock -w 300 9 || die "another start/stop has held $LOCK_FILE for 5 minutes"
      "cmd_$1"
      ;;
    status) cmd_status ;;
    available) cmd_available ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"
