#!/usr/bin/env bash
# A single-node Slurm cluster for tre's tests, CI and `make demo BACKEND=slurm`.
#
#   bash slurm/devcluster/start.sh     install slurm-wlm + munge if missing (apt-get, as
#                                      root), write slurm.conf, start munged, slurmctld and
#                                      slurmd, and wait until the node takes jobs.
#   bash slurm/devcluster/stop.sh      stop the daemons.
#
# It is idempotent: daemons already running are left alone. Known pitfalls in containers
# (see docs/slurm.md): munged needs /run/munge owned by munge; proctrack/linuxproc and
# task/none avoid cgroups; SlurmdParameters=config_overrides lets the node declare more
# CPUs than the machine has so several jobs' tasks fit; node changes need a restart.
set -euo pipefail

CONF_DIR=${SLURM_CONF_DIR:-/etc/slurm}
STATE=${TRE_SLURM_STATE:-/var/spool/tre-slurm}
LOGS=${TRE_SLURM_LOGS:-/var/log/tre-slurm}
CPUS=${TRE_SLURM_CPUS:-16}
MEMORY_MB=${TRE_SLURM_MEMORY_MB:-20000}
NODE=$(hostname -s)

say() { echo "devcluster: $*"; }

if [ "$(id -u)" != 0 ]; then
    echo "devcluster: must run as root (it installs packages and starts daemons)" >&2
    exit 1
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    say "installing slurm-wlm and munge"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/d" "$LOGS"
if [ ! -s /etc/munge/munge.key ]; then
    say "creating the munge key"
    mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
        || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge

cat > "$CONF_DIR/slurm.conf.new" <<CONF
# Written by tre's slurm/devcluster/start.sh: a one-node test cluster.
ClusterName=tre-dev
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Keep finished jobs visible to scontrol for an hour: there is no accounting database.
MinJobAge=3600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGS/jobcomp.log
KillWait=5
InactiveLimit=0
SchedulerParameters=sched_interval=2
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEMORY_MB State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=long Nodes=$NODE Default=NO MaxTime=INFINITE State=UP
CONF

restart=0
if ! cmp -s "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf" 2>/dev/null; then
    mv "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf"
    restart=1
else
    rm -f "$CONF_DIR/slurm.conf.new"
fi

running() { pgrep -x "$1" >/dev/null; }

if ! running munged; then
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged
fi
if [ "$restart" = 1 ]; then
    # A changed node definition needs a daemon restart, not `scontrol reconfigure`.
    pkill -x slurmd 2>/dev/null || true
    pkill -x slurmctld 2>/dev/null || true
    for _ in $(seq 1 30); do
        running slurmd || running slurmctld || break
        sleep 0.5
    done
fi
if ! running slurmctld; then
    say "starting slurmctld"
    /usr/sbin/slurmctld
fi
if ! running slurmd; then
    say "starting slurmd"
    /usr/sbin/slurmd
fi

for _ in $(seq 1 60); do
    state=$(sinfo -h -n "$NODE" -o %t 2>/dev/null | head -1 || true)
    case "$state" in
        idle|mix|alloc) say "node $NODE is $state; partitions: $(sinfo -h -o %P | tr '\n' ' ')"; exit 0 ;;
        down*|drain*) scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 1
done
echo "devcluster: the node did not come up; see $LOGS/slurmctld.log and $LOGS/slurmd.log" >&2
exit 1
