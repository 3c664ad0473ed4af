#!/usr/bin/env bash
# The main job on a fresh machine: start dockyardd in the background, make
# busybox:latest from the host's static busybox (no network), and use it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
SOCK=${DOCKYARD_SOCK:-/run/dockyard/dockyard.sock}
ROOT=${DOCKYARD_ROOT:-/var/lib/dockyard}
export DOCKYARD_HOST="unix://$SOCK" DOCKER_HOST="unix://$SOCK"

if ! $BIN/dockyard version >/dev/null 2>&1; then
  mkdir -p /var/log
  echo "starting dockyardd (data root $ROOT, socket $SOCK, log /var/log/dockyardd.log)"
  nohup $BIN/dockyardd --data-root "$ROOT" -H "unix://$SOCK" >>/var/log/dockyardd.log 2>&1 &
  for _ in $(seq 100); do $BIN/dockyard version >/dev/null 2>&1 && break; sleep 0.1; done
fi

if ! $BIN/dockyard image inspect busybox:latest >/dev/null 2>&1; then
  echo "making busybox:latest from $(readlink -f /bin/busybox)"
  $BIN/python -m dockyard.image.busybox \
    | $BIN/dockyard import -c 'CMD ["sh"]' \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        - busybox:latest
fi

$BIN/dockyard images
$BIN/dockyard history busybox:latest
echo "running a container:"
if $BIN/dockyard run --help >/dev/null 2>&1; then
  $BIN/dockyard run --rm busybox sh -c 'echo "hello from $(hostname), pid $$"'
else
  docker run --rm busybox sh -c 'echo "hello from $(hostname), pid $$"'
fi
echo "dockyardd is running (pid $(cat /run/dockyard/dockyardd.pid)); 'make stop' stops it."
echo "Use it with: export DOCKER_HOST=unix://$SOCK; docker images"
