#!/usr/bin/env bash
# A Slurm cluster for tre's tests, CI and `make demo BACKEND=slurm`: this machine as a
# node of its own (partition debug, and long), and $TRE_SLURM_NODES (default 3) compute
# nodes each in namespaces of its own on a private bridge (partition nodes; nodes.sh).
#
#   bash slurm/devcluster/start.sh     install slurm-wlm, munge, iproute2 and nftables if
#                                      missing (apt-get, as root), write slurm.conf, make
#                                      the bridge and the nodes' namespaces and fences,
#                                      start munged, slurmctld and every slurmd, and wait
#                                      until every node takes jobs.
#   bash slurm/devcluster/stop.sh      stop the daemons, remove the namespaces.
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
NODES=${TRE_SLURM_NODES:-3}
NODE_CPUS=${TRE_SLURM_NODE_CPUS:-4}
NODE_MEMORY_MB=${TRE_SLURM_NODE_MEMORY_MB:-4000}

say() { echo "devcluster: $*"; }
# shellcheck source=slurm/devcluster/nodes.sh
source "$(dirname "${BASH_SOURCE[0]}")/nodes.sh"

if [ "$(id -u)" != 0 ]; then
    echo "devcluster: must run as root (it installs packages and starts daemons)" >&2
    exit 1
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null \
    || ! command -v nft >/dev/null || ! command -v ip >/dev/null; then
    say "installing slurm-wlm, munge, iproute2 and nftables"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge iproute2 nftables \
        >/dev/null
fi

mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/d" "$STATE/run" "$LOGS/d"
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
# Written by tre's slurm/devcluster/start.sh: a test cluster of this machine and
# $NODES compute nodes in namespaces of their own (nodes.sh).
ClusterName=tre-dev
SlurmctldHost=$NODE($SERVICE_ADDR)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
# Each compute node binds its own folders over these (nodes.sh).
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/d/slurmd.log
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
# A node that stops answering (cut from the bridge, say) is DOWN after 20 s, and its jobs
# end NODE_FAIL, rather than after the default five minutes.
SlurmdTimeout=20
InactiveLimit=0
SchedulerParameters=sched_interval=2
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEMORY_MB State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=long Nodes=$NODE Default=NO MaxTime=INFINITE State=UP
$(node_conf)
CONF

restart=0
if ! cmp -s "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf" 2>/dev/null; then
    mv "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf"
    restart=1
else
    rm -f "$CONF_DIR/slurm.conf.new"
fi

running() { pgrep -x "$1" >/dev/null; }
# This machine's own slurmd, not a compute node's (those are in namespaces of their own).
host_slurmd() { pgrep -x slurmd | while read -r pid; do
    [ "$(readlink "/proc/$pid/ns/net")" = "$(readlink /proc/self/ns/net)" ] && echo "$pid"
done; }

make_network
make_service_fence

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
if [ -z "$(host_slurmd)" ]; then
    say "starting slurmd"
    /usr/sbin/slurmd
fi
open_runtime_to_job_users "$(dirname "${BASH_SOURCE[0]}")/../../.venv/bin/python"
start_nodes

all_nodes="$NODE,node[1-$NODES]"
for _ in $(seq 1 60); do
    states=$(sinfo -h -N -n "$all_nodes" -o "%N %t" 2>/dev/null | sort -u || true)
    waiting=0
    while read -r name state; do
        case "$state" in
            idle|mix|alloc) ;;
            down*|drain*) waiting=1
                scontrol update nodename="$name" state=resume >/dev/null 2>&1 || true ;;
            *) waiting=1 ;;
        esac
    done <<< "$states"
    if [ -n "$states" ] && [ "$waiting" = 0 ] \
        && [ "$(wc -l <<< "$states")" -ge $((NODES + 1)) ]; then
        say "nodes $(echo $states | tr '\n' ' '); partitions: $(sinfo -h -o %P | sort -u | tr '\n' ' ')"
        exit 0
    fi
    sleep 1
done
echo "devcluster: the nodes did not come up; see $LOGS/slurmctld.log and $STATE/nodes/*/log" >&2
sinfo -N >&2 || true
exit 1
