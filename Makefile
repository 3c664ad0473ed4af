# Everything a fresh Debian machine needs, then the daemon, the demo and the tests.
VENV      := .venv
PY        := $(VENV)/bin/python
DEB_PKGS  := busybox-static iptables iproute2 zstd runc mount e2fsprogs git docker-registry skopeo
DEMO_ROOT ?= /var/lib/dockyard
DEMO_SOCK ?= /run/dockyard/dockyard.sock

.PHONY: install demo test unit integration bench stop clean registry-image

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@# Every container start runs Python (shim, runtime): compiled bytecode must be
	@# there even where PYTHONDONTWRITEBYTECODE keeps Python from writing it.
	$(PY) -m compileall -q src
	touch $@

# Start dockyardd in the background, make busybox:latest from the host's static
# busybox (no network), and run it.
demo: install
	scripts/demo.sh

# The registry as a container image, dockyard/registry:latest, from this host's
# Python (no network), loaded into the running daemon.
registry-image: install
	$(PY) -m dockyard.registry.image | $(VENV)/bin/dockyard load

test: install
	$(PY) -m pytest -q

unit: install
	$(PY) -m pytest -q tests/unit

integration: install
	$(PY) -m pytest -q tests/integration

bench: install
	for b in bench/*.py; do $(PY) $$b || exit 1; done

stop:
	@test -f /run/dockyard/dockyardd.pid && kill $$(cat /run/dockyard/dockyardd.pid) || true
