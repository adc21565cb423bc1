#!/usr/bin/env bash
# A one-node SLURM cluster on localhost (slurmctld + slurmd + munge + slurmdbd on MariaDB, so
# `sacct` works and submitit sees jobs that died without a result). Used by the tests and CI.
#
#   scripts/slurm_cluster.sh up       install (if needed) + start (if not running); prints the env line
#   scripts/slurm_cluster.sh install  apt packages only (--no-install-recommends, no daemon auto-start)
#   scripts/slurm_cluster.sh start    write configs under $SLURM_CLUSTER_DIR and start the daemons
#   scripts/slurm_cluster.sh stop     stop the daemons this script started (by their pid files)
#   scripts/slurm_cluster.sh status   sinfo of the running cluster
#
# Everything lives under SLURM_CLUSTER_DIR (default /var/tmp/resa-bench-slurm); clients need
# SLURM_CONF=$SLURM_CLUSTER_DIR/etc/slurm.conf (printed by `up`/`start`). Idempotent: a second
# `up` on a running cluster only checks it. Needs root (the daemons run as root, SlurmUser=root).
# Facts behind the settings: ../shared/notes/environment.md (cred_expire=10 makes a requeue fast;
# the node advertises more CPUs than it has so that the tests' jobs run side by side).
set -euo pipefail

DIR="${SLURM_CLUSTER_DIR:-/var/tmp/resa-bench-slurm}"
CPUS="${SLURM_CLUSTER_CPUS:-8}"
DB_PORT="${SLURM_CLUSTER_DB_PORT:-3307}"
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
ETC="$DIR/etc"
export SLURM_CONF="$ETC/slurm.conf"

die() { echo "slurm_cluster: $*" >&2; exit 1; }

install_packages() {
    local missing=()
    for pkg in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "installing ${missing[*]} needs root"
    command -v apt-get >/dev/null || die "apt-get not found; install ${missing[*]} by hand"
    local policy=/usr/sbin/policy-rc.d created=0
    if [ ! -e "$policy" ]; then  # keep package scripts from starting the daemons themselves
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && created=1
    fi
    echo "slurm_cluster: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 \
        || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; } || status=$?
    [ "$created" -eq 1 ] && rm -f "$policy"
    [ "${status:-0}" -eq 0 ] || die "apt-get install failed"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2; shift 2
    for _ in $(seq $((seconds * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    die "$what did not come up in ${seconds}s (logs in $DIR/log)"
}

write_configs() {
    local host mem
    host="$(hostname -s)"
    mem=$(( $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) * 2 ))
    mkdir -p "$ETC" "$DIR/log" "$DIR/run" "$DIR/state" "$DIR/spool" "$DIR/munge/key" "$DIR/munge/run" "$DIR/db"
    chmod 700 "$DIR/munge/key"; chmod 755 "$DIR/munge/run"
    cat >"$SLURM_CONF" <<EOF
# Written by scripts/slurm_cluster.sh: a one-node test cluster on localhost.
ClusterName=resa
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/run/munge.socket.2,cred_expire=10
CryptoType=crypto/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
SchedulerParameters=sched_interval=2,bf_interval=2
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
MinJobAge=300
KillWait=5
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePass=$DIR/munge/run/munge.socket.2
JobCompType=jobcomp/none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$CPUS Sockets=1 CoresPerSocket=$CPUS ThreadsPerCore=1 RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$ETC/slurmdbd.conf" <<EOF
# Written by scripts/slurm_cluster.sh (slurmdbd reads it from the directory of SLURM_CONF).
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/run/munge.socket.2
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$ETC/slurmdbd.conf"
}

start_munge() {
    alive "$DIR/run/munged.pid" && return 0
    [ -f "$DIR/munge/key/munge.key" ] || dd if=/dev/urandom of="$DIR/munge/key/munge.key" bs=1024 count=1 2>/dev/null
    chmod 400 "$DIR/munge/key/munge.key"
    munged --force --key-file="$DIR/munge/key/munge.key" --socket="$DIR/munge/run/munge.socket.2" \
        --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/seed"
    wait_for 10 munged munge -n -S "$DIR/munge/run/munge.socket.2"
}

start_mariadb() {
    local sock="$DIR/run/mysqld.sock"
    alive "$DIR/run/mariadb.pid" && return 0
    if [ ! -d "$DIR/db/mysql" ]; then
        mariadb-install-db --user=root --datadir="$DIR/db" --auth-root-authentication-method=socket \
            >"$DIR/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed (see $DIR/log)"
    fi
    mariadbd --no-defaults --user=root --datadir="$DIR/db" --socket="$sock" --port="$DB_PORT" \
        --bind-address=127.0.0.1 --pid-file="$DIR/run/mariadb.pid" --log-error="$DIR/log/mariadb.log" \
        --innodb-buffer-pool-size=64M >/dev/null 2>&1 &
    wait_for 60 mariadb mariadb --no-defaults -S "$sock" -e "select 1"
    mariadb --no-defaults -S "$sock" -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"
}

start_slurm() {
    if ! alive "$DIR/run/slurmdbd.pid"; then
        slurmdbd
        wait_for 30 slurmdbd sacctmgr -n list cluster
    fi
    sacctmgr -n list cluster format=cluster | grep -qw resa || sacctmgr -i add cluster resa >/dev/null
    sacctmgr -n list account format=account | grep -qw tests || sacctmgr -i add account tests >/dev/null
    sacctmgr -n list user format=user | grep -qw root || sacctmgr -i add user root account=tests >/dev/null
    alive "$DIR/run/slurmctld.pid" || slurmctld
    wait_for 30 slurmctld scontrol ping
    alive "$DIR/run/slurmd.pid" || slurmd
    wait_for 30 "slurmd (node idle)" bash -c "sinfo -h -o %t | grep -qx idle"
}

start() {
    [ "$(id -u)" -eq 0 ] || die "starting the test cluster needs root"
    command -v slurmctld >/dev/null || die "slurmctld not installed; run: $0 install"
    write_configs
    start_munge
    start_mariadb
    start_slurm
    echo "export SLURM_CONF=$SLURM_CONF"
}

stop() {
    local pidfile
    for name in slurmd slurmctld slurmdbd mariadb munged; do
        pidfile="$DIR/run/$name.pid"
        if alive "$pidfile"; then
            kill "$(cat "$pidfile")"
            for _ in $(seq 50); do alive "$pidfile" || break; sleep 0.2; done
        fi
        rm -f "$pidfile"
    done
}

case "${1:-up}" in
    up) install_packages; start ;;
    install) install_packages ;;
    start) start ;;
    stop) stop ;;
    status) sinfo ;;
    *) die "usage: $0 {up|install|start|stop|status}" ;;
esac
