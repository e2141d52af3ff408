#!/usr/bin/env bash
# EC2 user data for a fleet instance (a template: `exp run --fleet` fills the @…@ fields).
# It runs the worker image until the worker leaves (no work, idle, store lost, or a spot
# notice), then powers the instance off, so nothing bills after the work is done.
#
# The worker's working copies live on the instance's disk (/var/lib/paddock/work), not in
# the container. If the worker exits 3 (the store lost the experiment's state: its copies
# may be the only ones left), the instance stays up for 2 hours before powering off, so
# they can be put back with `paddock exp restore` from it (docs/experiments.md, "What can
# go wrong"); that is bounded cost against an experiment's results.
set -uo pipefail
trap 'shutdown -h now' EXIT
mkdir -p /var/lib/paddock/work
docker run --rm --network host \
    -v /var/lib/paddock/work:/var/lib/paddock/work \
    -e PADDOCK_WORK_DIR=/var/lib/paddock/work \
    -e PADDOCK_EXPERIMENT='@EXPERIMENT@' \
    -e PADDOCK_QUEUE=1 \
    -e AWS_REGION='@REGION@' \
    -e PADDOCK_IDLE_TIMEOUT='@IDLE_TIMEOUT@' \
    @GPU_FLAG@ '@IMAGE@'
rc=$?
if [ "$rc" -eq 3 ]; then
    echo "paddock: the store lost the experiment's state; the working copies are in /var/lib/paddock/work; powering off in 2 hours" >&2
    sleep 7200
fi
