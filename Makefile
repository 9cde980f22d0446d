# bpftune build. `make run` builds everything and runs the daemon in the
# foreground (stderr); `make test` runs lint and the whole test suite (root).
# On a fresh Debian 12 machine the first build installs what it needs.

SHELL := /bin/bash
.DEFAULT_GOAL := all

DEB_PACKAGES := clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config \
	iproute2 iperf3 iptables iputils-ping make g++ python3 procps acl
# Needed by tests only: the metrics test runs its own Prometheus and node_exporter on loopback.
# Debian's packages start and enable servers listening on every address: they are
# installed without recommends, with service starts refused, and their services left disabled.
SERVICE_PACKAGES := prometheus prometheus-node-exporter
CLANG ?= clang
BPFTOOL ?= bpftool
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

VMLINUX_H := dist/include/vmlinux.h
BPF_HEADERS := $(wildcard bpf/*.h)
BPF_SOURCES := $(wildcard src/tuners/*/*.bpf.c samples/*/*.bpf.c bpf/*.bpf.c test/fixtures/*/*.bpf.c)
BPF_OBJECTS := $(patsubst %.bpf.c,dist/%.bpf.o,$(BPF_SOURCES))
NATIVE_SOURCES := $(wildcard native/*.c native/*.h) binding.gyp
NATIVE_ADDON := build/Release/bpftune_native.node
TS_SOURCES := $(shell find src test bench samples -name '*.ts' 2>/dev/null) tsconfig.json

.PHONY: all deps run test lint bench bench-quick bench-tcp-buffer bench-query-load clean distclean

all: deps node_modules/.installed $(NATIVE_ADDON) $(BPF_OBJECTS) dist/.tsc

# Installs only what is missing, so a machine that has everything is untouched.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "error: run as root to install:$$missing" >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=900 $$missing >/dev/null; \
	fi
	@missing=""; for p in $(SERVICE_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages (services neither started nor enabled):$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "error: run as root to install:$$missing" >&2; exit 1; fi; \
		bash test/support/install-without-service.sh $$missing; \
	fi

node_modules/.installed: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

$(NATIVE_ADDON): $(NATIVE_SOURCES) node_modules/.installed
	npx node-gyp rebuild --nodedir=/usr --loglevel=error >/dev/null

$(VMLINUX_H):
	@mkdir -p $(dir $@)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

dist/%.bpf.o: %.bpf.c $(BPF_HEADERS) $(VMLINUX_H)
	@mkdir -p $(dir $@)
	$(CLANG) -g -O2 -Wall -target bpf -D__TARGET_ARCH_$(ARCH) \
		-I$(dir $(VMLINUX_H)) -Ibpf -I$(dir $<) -c $< -o $@

dist/.tsc: $(TS_SOURCES) node_modules/.installed
	npx tsc -p tsconfig.json
	@touch $@

run: all
	bin/bpftune -s

lint: all
	npx eslint .

# Tests share the root cgroup's BPF attachments, so they run one file at a time.
test: all lint
	node --test --test-concurrency=1 $$(find dist -name '*.test.js' | sort)

# The whole benchmark suite (root, under 15 minutes): writes bench/results/report.md
# and bench/results/tcp_buffer.svg. bench-quick: shorter runs, results in bench/results/quick/.
bench: all
	node dist/bench/suite.js

bench-quick: all
	node dist/bench/suite.js --quick

# tcp_buffer's effect: throughput on a 40 ms path with and without bpftune (about 2 minutes).
bench-tcp-buffer: all
	node dist/bench/tcp_buffer.js

# RSS under 10 scrapes + 10 queries a second for 10 minutes, then 40,000 queries (about 11 minutes).
bench-query-load: all
	node dist/bench/query-load.js

clean:
	rm -rf dist build

distclean: clean
	rm -rf node_modules
