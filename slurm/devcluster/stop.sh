#!/usr/bin/env bash
# Stop the test cluster's daemons (started by start.sh) and remove the compute nodes'
# namespaces and bridge.
set -u
say() { echo "devcluster: $*"; }
# shellcheck source=slurm/devcluster/nodes.sh
source "$(dirname "${BASH_SOURCE[0]}")/nodes.sh"
pkill -x slurmd 2>/dev/null
pkill -x slurmctld 2>/dev/null
pkill -x munged 2>/dev/null
stop_nodes
stop_service_fence
echo "devcluster: stopped"
