#!/usr/bin/env bash
# The worker image's entrypoint: `paddock worker` on the experiment the instance was started
# for, with spot notices on and an idle timeout. Settings come from the environment (the
# fleet's user data passes them to `docker run -e`):
#   PADDOCK_EXPERIMENT       required: s3://bucket/prefix/<experiment id>
#   PADDOCK_IDLE_TIMEOUT     seconds with nothing to claim before leaving (default 300)
#   PADDOCK_STORE_LOST_AFTER seconds of an unreachable store before leaving (default 300)
#   PADDOCK_SPOT_NOTICES     1 (default): poll the instance metadata service; 0: do not;
#                            or the service's URL
#   PADDOCK_QUEUE            1: take trial ids from the experiment's SQS queue (its URL in
#                            the store's dispatch.json); a URL: that queue; unset or 0: look
#                            through the trials' states in the store
#   PADDOCK_SHUTDOWN_CMD     run when the worker leaves for lack of work (default none: the
#                            user data stops the instance when the container ends)
#   PADDOCK_REBALANCE_DEADLINE  give a trial back this many seconds after a rebalance
#                            recommendation (default: only on the interruption notice)
#   PADDOCK_BIN              the paddock binary (default: paddock on PATH)
set -euo pipefail
if [ -z "${PADDOCK_EXPERIMENT:-}" ]; then
    echo "error: PADDOCK_EXPERIMENT is not set (the experiment to work on: s3://bucket/prefix/<id>)" >&2
    exit 2
fi
args=(worker "$PADDOCK_EXPERIMENT"
    --idle-timeout "${PADDOCK_IDLE_TIMEOUT:-300}"
    --store-lost-after "${PADDOCK_STORE_LOST_AFTER:-300}")
case "${PADDOCK_SPOT_NOTICES:-1}" in
    0) ;;
    1) args+=(--spot-notices) ;;
    *) args+=(--spot-notices "$PADDOCK_SPOT_NOTICES") ;;
esac
case "${PADDOCK_QUEUE:-0}" in
    0) ;;
    1) args+=(--queue) ;;
    *) args+=(--queue "$PADDOCK_QUEUE") ;;
esac
if [ -n "${PADDOCK_REBALANCE_DEADLINE:-}" ]; then
    args+=(--rebalance-deadline "$PADDOCK_REBALANCE_DEADLINE")
fi
if [ -n "${PADDOCK_SHUTDOWN_CMD:-}" ]; then
    args+=(--shutdown-cmd "$PADDOCK_SHUTDOWN_CMD")
fi
# exec: SIGTERM from `docker stop` (a spot reclaim's shutdown) reaches the worker itself.
exec "${PADDOCK_BIN:-paddock}" "${args[@]}"
