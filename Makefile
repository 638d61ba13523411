# pycndp: every target installs what it needs (Debian packages as root, PyPI into .venv/).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEBS   := iproute2 iputils-ping ethtool tshark tcpdump socat procps util-linux \
          containernetworking-plugins golang-go golang-github-appc-cni-dev xz-utils prometheus
BENCH_DEBS := dpdk-dev librte-net-af-xdp23
# the one-node Kubernetes cluster tier (tests/cluster, docs/k8s-cluster-tests.md); kubectl is
# built from the same Debian source as the kubelet (Debian's kubernetes-client package would
# clash with an installed kubectl)
K8S_DEBS := golang-go rsync golang-github-modern-go-reflect2-dev make etcd-server containerd \
            runc containernetworking-plugins busybox-static gcc libc6-dev iproute2 util-linux \
            openssl

.PHONY: all deps demo test test-cluster bench lint clean

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

# Real cluster tier: builds kubelet & co. from Debian's kubernetes source package once (~10 min
# on 2 cores, cached in /var/cache/pycndp-k8s), then runs tests/cluster on a one-node cluster.
test-cluster: deps
	@scripts/ensure-debs $(K8S_DEBS)
	scripts/k8s/build-k8s >/dev/null
	PYCNDP_CLUSTER=1 $(BIN)/pytest -q tests/cluster

bench: deps
	@scripts/ensure-debs $(BENCH_DEBS)
	$(BIN)/python bench/run.py

lint: deps
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
