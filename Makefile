# pycndp: every target installs what it needs (Debian packages as root, PyPI into .venv/).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEBS   := iproute2 iputils-ping ethtool tshark tcpdump socat procps util-linux \
          containernetworking-plugins golang-go golang-github-appc-cni-dev xz-utils prometheus
BENCH_DEBS := dpdk-dev librte-net-af-xdp23

.PHONY: all deps demo test bench lint clean

all: test

deps: $(STAMP)
	@scripts/ensure-debs $(DEBS)

$(STAMP): pyproject.toml
	@scripts/ensure-debs $(DEBS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

demo: deps
	$(BIN)/cndp-demo

test: deps
	$(BIN)/pytest -q

bench: deps
	@scripts/ensure-debs $(BENCH_DEBS)
	$(BIN)/python bench/run.py

lint: deps
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
