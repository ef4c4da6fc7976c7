# meshgate — every target installs what it needs on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SCG_JAR := bench/peers/scg/target/scg-peer.jar
SCG_TEST_JAR := tests/peers/scg/target/scg-test-peer.jar
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: help install lint consul redis chromium scg-test-peer test-peers test test-fast demo demo-mesh clean bench bench-quick \
  bench-profile bench-deps mypyc docker test-docker

help:
	@echo "make demo   - install and run the gateway with demo upstreams"
	@echo "make demo-mesh - the east-west demo: Consul, orders, billing, a sidecar, the gateway"
	@echo "make test   - install, then ruff + mypy --strict + pytest"
	@echo "make lint   - ruff check + format check, mypy --strict, import-linter contracts"
	@echo "make docker - the wheelhouse (build/wheels), then the meshgate and meshgate-demo images"
	@echo "make test-docker - a Docker engine and base image if absent, the images, tests/docker"
	@echo "make bench  - meshgate vs nginx, Spring Cloud Gateway, naive aiohttp (~25 min)"
	@echo "make bench-quick - the same, one short round (~3 min)"
	@echo "make mypyc  - the hot modules compiled with mypyc into build/mypyc (~2 min; PYTHONPATH=build/mypyc)"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "meshgate needs Python >= 3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check gateway discovery resilience bench tests examples
	$(VENV)/bin/ruff format --check gateway discovery resilience bench tests examples
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

# The pinned Consul agent the discovery tests run against (built from source with Go, cached
# under ~/.cache/meshgate): built here, not inside a test, where the build would hit the timeout.
consul: $(STAMP)
	@command -v go >/dev/null || test -x /usr/local/go/bin/go || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq golang-go; }
	PATH="$$PATH:/usr/local/go/bin" $(PY) -m tests.support.consul --ensure

# The real Spring Cloud Gateway 5.0.4 that tests/integration/test_scg_differential.py compares
# meshgate with. Needs a JDK 17+ and Maven (on this project's machines; `make bench-deps` installs
# them elsewhere): ~4 s with a warm ~/.m2, ~10 s with an empty one. touch: the jar is the stamp.
$(SCG_TEST_JAR): tests/peers/scg/pom.xml $(shell find tests/peers/scg/src -type f)
	cd tests/peers/scg && mvn -q -B package -DskipTests
	touch $@

scg-test-peer: $(SCG_TEST_JAR)

# For make test: the peer where java and mvn are (as on CI), so the differential test runs there.
# Without them, or when the build fails (offline with an empty ~/.m2), that test skips with the
# reason and the rest of the suite still runs.
test-peers:
	@if command -v java >/dev/null && command -v mvn >/dev/null; then \
	  $(MAKE) --no-print-directory scg-test-peer || \
	  echo "WARNING: SCG test peer not built: the SCG differential test will skip"; \
	else echo "note: no java/mvn: the SCG differential test will skip"; fi

# Debian's redis-server: the rate-limiter tests start their own on a free port (never skipped).
redis:
	@command -v redis-server >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-server; }

# Debian's Chromium: the dashboard's browser tests drive it headless through Playwright's Python
# package with executable_path (Playwright downloads no browser).
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

test: lint consul redis chromium test-peers
	$(VENV)/bin/pytest -q

# Skips the multi-hundred-MiB transfer tests; for the edit-test loop only.
test-fast: $(STAMP) consul redis chromium
	$(VENV)/bin/pytest -q -m "not slow"

# The images install from a wheelhouse built here (meshgate, its dependencies and
# docker/wheelhouse.txt), so the Docker build itself needs no package index.
DOCKER ?= docker
DOCKER_BASE ?= python:3.11-slim
DOCKER_IMAGE ?= meshgate:latest
DOCKER_DEMO_IMAGE ?= meshgate-demo:latest
DOCKER_BUILD_FLAGS ?=
docker: $(STAMP)
	rm -rf build/wheels
	$(PY) -m pip wheel --quiet . -r docker/wheelhouse.txt -w build/wheels
	$(DOCKER) build $(DOCKER_BUILD_FLAGS) --build-arg BASE=$(DOCKER_BASE) -f docker/Dockerfile -t $(DOCKER_IMAGE) .
	$(DOCKER) build $(DOCKER_BUILD_FLAGS) --build-arg BASE=$(DOCKER_BASE) -f docker/demo.Dockerfile -t $(DOCKER_DEMO_IMAGE) .

# With no registry: Debian's engine (started with no bridge when none runs, stopped again at the
# end), a base image made by debootstrap, containers on the host network only.
test-docker: $(STAMP)
	$(PY) -m tests.support.docker_env up
	status=0; \
	$(MAKE) --no-print-directory docker DOCKER_BASE=meshgate-base:bookworm \
	  DOCKER_BUILD_FLAGS="--network host" DOCKER_IMAGE=meshgate:test DOCKER_DEMO_IMAGE=meshgate-demo:test && \
	MESHGATE_DOCKER_TESTS=1 MESHGATE_IMAGE=meshgate:test MESHGATE_BASE_IMAGE=meshgate-base:bookworm \
	  $(VENV)/bin/pytest -q tests/docker || status=$$?; \
	cat build/docker-image-size.txt 2>/dev/null; \
	$(PY) -m tests.support.docker_env down; exit $$status

demo: $(STAMP)
	$(PY) -m gateway.demo

# examples/mesh: a Consul agent (the pinned binary `make consul` builds), the services, a
# sidecar and the gateway, all local processes; Ctrl-C stops them.
demo-mesh: consul
	$(PY) -m examples.mesh

# Benchmark peers and load tools: Debian's nginx, wrk, Maven and a JDK, redis-server (the
# Redis rate-limiter variant); matplotlib/py-spy.
$(BENCH_STAMP): $(STAMP)
	@command -v nginx >/dev/null && command -v wrk >/dev/null && command -v mvn >/dev/null \
	  && command -v java >/dev/null && command -v redis-server >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nginx wrk maven \
	  openjdk-17-jdk-headless redis-server; }
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	touch $(BENCH_STAMP)

bench-deps: $(BENCH_STAMP)

$(SCG_JAR): bench/peers/scg/pom.xml $(shell find bench/peers/scg/src -type f)
	cd bench/peers/scg && mvn -q -B package -DskipTests

# The full run measures the mypyc build beside the pure one, so it builds it first.
bench: $(BENCH_STAMP) $(SCG_JAR) mypyc
	$(PY) -m bench.run

bench-quick: $(BENCH_STAMP) $(SCG_JAR)
	$(PY) -m bench.run --quick

bench-profile: $(BENCH_STAMP)
	$(PY) -m bench.profile

# Optional: the request path compiled with mypyc, in a copy of the packages under build/mypyc
# (the repository's tree stays pure Python: the tests and the cost guard run on it). Needs a C
# compiler and the interpreter's headers: Debian's python3-dev (python3.11-dev) for its Python.
# `$(PY) -m bench.mypyc_build --wheel` also packs a wheel; `$(PY) -m bench.engine_loop compare`
# measures both trees' CPU per request.
mypyc: $(STAMP)
	@$(PY) -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
	  && command -v cc >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq gcc python3-dev; }
	$(PY) -m bench.mypyc_build

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
