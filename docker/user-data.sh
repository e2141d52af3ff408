#!/usr/bin/env bash
# EC2 user data for a fleet instance (a template: `exp run --fleet` fills the @…@ fields).
# It runs the worker image until the worker leaves (no work, idle, store lost, or a spot
# notice), then powers the instance off, so nothing bills after the work is done.
set -euo pipefail
trap 'shutdown -h now' EXIT
docker run --rm --network host \
    -e PADDOCK_EXPERIMENT='@EXPERIMENT@' \
    -e PADDOCK_QUEUE=1 \
    -e AWS_REGION='@REGION@' \
    -e PADDOCK_IDLE_TIMEOUT='@IDLE_TIMEOUT@' \
    @GPU_FLAG@ '@IMAGE@'
