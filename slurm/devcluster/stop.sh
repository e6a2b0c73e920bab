#!/usr/bin/env bash
# Stop the test cluster's daemons (started by start.sh).
set -u
pkill -x slurmd 2>/dev/null
pkill -x slurmctld 2>/dev/null
pkill -x munged 2>/dev/null
echo "devcluster: stopped"
