#!/usr/bin/env bash
# Compute nodes of the test cluster, each a slurmd in network, UTS and mount namespaces
# of its own (issue 25): `source`d by start.sh, never run alone.
#
#   tre-br0    a bridge on this machine, $SERVICE_ADDR/24: the service node's address
#              (slurmctld, the tre service and the key service listen here).
#   nodeN      network namespace tre-nodeN, address 10.77.0.1N on the bridge, hostname
#              nodeN, its own slurmd spool, pid file and log. No route but the bridge.
#              The nftables fence in compute-fence.nft lets it reach the other nodes,
#              slurmctld and the key service's TLS port, and nothing else.
#              Its mount namespace hides /run/tre, where the key service's Unix sockets
#              are: a compute node on another machine cannot reach them either.
#
# The shared filesystem is this machine's (as a cluster's shared /home or /lustre is),
# and munge's socket with it.

BRIDGE=tre-br0
SERVICE_ADDR=10.77.0.1
NODE_NAMES=()
KEYS_TLS_PORT=${TRE_KEYS_TLS_PORT:-7643}
SLURMCTLD_PORT=6817
# slurm-cluster's schedulers on the service node, one port per job slot (profile
# local-nodes-cluster: scheduler_ports).
SCHEDULER_PORTS=7650-7665

node_addr() { echo "10.77.0.1$1"; }

plan_nodes() {
    local n
    NODE_NAMES=()
    for n in $(seq 1 "$NODES"); do NODE_NAMES+=("node$n"); done
}

make_network() {
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
    fi
    ip addr replace "$SERVICE_ADDR/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    local n ns addr fence
    for n in $(seq 1 "$NODES"); do
        ns=tre-node$n
        addr=$(node_addr "$n")
        if ! ip netns list | grep -qw "$ns"; then
            ip netns add "$ns"
        fi
        if ip link show "tre-v$n" >/dev/null 2>&1 && ! ip -n "$ns" link show eth0 >/dev/null 2>&1; then
            # Half a pair: a run stopped in the middle of a test that cut this node off
            # (or its namespace went away). Make the pair again rather than fail.
            ip link del "tre-v$n"
        fi
        if ! ip link show "tre-v$n" >/dev/null 2>&1; then
            ip link add "tre-v$n" type veth peer name eth0 netns "$ns"
            ip link set "tre-v$n" master "$BRIDGE" up
        fi
        ip -n "$ns" addr replace "$addr/24" dev eth0
        ip -n "$ns" link set lo up
        ip -n "$ns" link set eth0 up
        fence=$(sed -e "s|@COMPUTE@|10.77.0.11-10.77.0.19|" -e "s|@SERVICE@|$SERVICE_ADDR|" \
            -e "s|@SLURMCTLD_PORT@|$SLURMCTLD_PORT|" -e "s|@KEYS_PORT@|$KEYS_TLS_PORT|" \
            -e "s|@SCHEDULER_PORTS@|$SCHEDULER_PORTS|" \
            "$(dirname "${BASH_SOURCE[0]}")/compute-fence.nft")
        echo "$fence" | ip netns exec "$ns" nft -f -
    done
}

# The tre API's port on the service node, fenced from the job users (tre serve's default).
API_PORTS=${TRE_API_PORTS:-8000}

# The service node's fence for the job users (service-fence.nft), in this machine's own
# network namespace: their connections only (by uid), nobody else's. Needs the job
# users' pool (make sandbox-setup); without it there is nothing to fence yet.
make_service_fence() {
    local name uid first=${SCHEDULER_PORTS%-*} uids=() own=()
    while IFS=: read -r name _ uid _; do
        case "$name" in
            tre-job | tre-job-[0-9]* | tre-code | tre-code-[0-9]*) uids+=("$uid") ;;
            *) continue ;;
        esac
        case "$name" in
            tre-job-[0-9]*) own+=("$uid . $((first + ${name#tre-job-}))") ;;
        esac
    done < <(getent passwd)
    if [ "${#uids[@]}" = 0 ] || [ "${#own[@]}" = 0 ]; then
        say "no job users yet (make sandbox-setup): the service node's fence is not loaded"
        return 0
    fi
    local IFS=,
    sed -e "s|@JOB_UIDS@|${uids[*]}|" -e "s|@OWN_SCHEDULER@|${own[*]}|" \
        -e "s|@SCHEDULER_PORTS@|$SCHEDULER_PORTS|" -e "s|@API_PORTS@|$API_PORTS|" \
        -e "s|@COMPUTE@|10.77.0.11-10.77.0.19|" \
        "$(dirname "${BASH_SOURCE[0]}")/service-fence.nft" \
    | { echo "table inet tre_service_fence; delete table inet tre_service_fence;"; cat; } \
    | nft -f -
}

stop_service_fence() { nft delete table inet tre_service_fence 2>/dev/null || true; }

node_conf() {
    local n
    for n in $(seq 1 "$NODES"); do
        echo "NodeName=node$n NodeAddr=$(node_addr "$n") CPUs=$NODE_CPUS RealMemory=$NODE_MEMORY_MB State=UNKNOWN"
    done
    echo "PartitionName=nodes Nodes=node[1-$NODES] Default=NO MaxTime=INFINITE State=UP"
}

node_running() { ip netns pids "tre-node$1" 2>/dev/null | xargs -r ps -o comm= -p 2>/dev/null | grep -qx slurmd; }

# A job on the nodes runs as its job user (sudo -u tre-job-<k> sbatch: docs/slurm.md),
# whose bubblewrap is unprivileged and must reach the Python runtime itself, as on a
# site that installs tre where every user may read it (/opt/tre). Here the runtime is
# this checkout's venv and the interpreter it was made from (often under /root): open
# each folder above them that others cannot pass, for search (x) only, and say so.
open_runtime_to_job_users() {
    local python=$1 path folder
    [ -x "$python" ] || return 0
    "$python" -c 'import os,sys; print(sys.base_prefix); print(os.path.realpath(sys.prefix))' \
    | while IFS= read -r folder; do
        while [ "$folder" != / ]; do
            folder=$(dirname "$folder")
            if [ "$(( $(stat -c '0%a' "$folder") & 1 ))" = 0 ]; then
                say "opening $folder for search (o+x): the job users run the runtime below it"
                chmod o+x "$folder"
            fi
        done
    done
}

start_nodes() {
    local n own
    for n in $(seq 1 "$NODES"); do
        node_running "$n" && continue
        own="$STATE/nodes/node$n"
        mkdir -p "$own/d" "$own/run" "$own/log"
        say "starting slurmd of node$n in its namespaces"
        # Its own hostname (slurmd finds its NodeName by it), spool, pid file and log,
        # bound over the paths slurm.conf names; /run/tre hidden under an empty tmpfs.
        # nsenter, not `ip netns exec`: that mounts a fresh /sys, without the cgroup
        # hierarchies slurmd (and each job's cgroup) need.
        nsenter --net="/run/netns/tre-node$n" unshare --uts --mount --propagation private sh -c "
            hostname node$n
            mount --bind '$own/d' '$STATE/d'
            mount --bind '$own/run' '$STATE/run'
            mount --bind '$own/log' '$LOGS/d'
            mkdir -p /run/tre && mount -t tmpfs -o size=1m,mode=0755 tre-hidden /run/tre
            exec /usr/sbin/slurmd
        "
    done
}

stop_nodes() {
    local ns
    pkill -f "^/usr/sbin/slurmd" 2>/dev/null || true
    for ns in $(ip netns list 2>/dev/null | awk '/^tre-node/ {print $1}'); do
        ip netns pids "$ns" | xargs -r kill 2>/dev/null || true
        ip netns del "$ns"
    done
    ip link del "$BRIDGE" 2>/dev/null || true
}
