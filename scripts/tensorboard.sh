#!/usr/bin/env bash
# TensorBoard over Paddock runs: `./scripts/tensorboard.sh [LOGDIR] [TENSORBOARD ARGS...]`.
# LOGDIR is a store (default: runs, the embedded default store) or one run directory; each
# run writes `events.out.tfevents.*` beside its metrics.jsonl. Installs TensorBoard into
# .venv/ on first use (scripts/setup.sh, the test command's set-up, installs it too), then
# serves on 127.0.0.1:6006 (`--port N` to change, `--bind_all` to serve other machines).
# Ctrl-C stops it. `--install` only installs it (what scripts/setup.sh calls).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
TENSORBOARD_VERSION=2.21.0
[ -x "$root/.venv/bin/python" ] || { echo "error: $root/.venv is missing; run scripts/setup.sh (or scripts/run.sh) first" >&2; exit 1; }
if [ ! -f "$root/.venv/.tensorboard-$TENSORBOARD_VERSION" ]; then
    printf '\033[1m==> %s\033[0m\n' "installing TensorBoard $TENSORBOARD_VERSION into .venv/ (once)" >&2
    "$root/.venv/bin/python" -m pip install -q --disable-pip-version-check "tensorboard==$TENSORBOARD_VERSION"
    touch "$root/.venv/.tensorboard-$TENSORBOARD_VERSION"
fi
[ "${1:-}" = --install ] && exit 0
logdir=${1:-runs}
[ $# -gt 0 ] && shift
[ -d "$logdir" ] || { echo "error: $logdir is not a directory (give a store, like runs, or a run directory)" >&2; exit 1; }
# No --host given: loopback only. (TensorBoard refuses --host together with --bind_all.)
case " $* " in *" --host"*|*" --bind_all "*) host=() ;; *) host=(--host 127.0.0.1) ;; esac
exec "$root/.venv/bin/tensorboard" --logdir "$logdir" "${host[@]}" "$@"
