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
LLVM_STRIP ?= llvm-strip
BPFTOOL ?= bpftool
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

VMLINUX_H := dist/include/vmlinux.h
BPF_HEADERS := $(wildcard bpf/*.h src/tuners/*/*.h samples/*/*.h)
BPF_SOURCES := $(wildcard src/tuners/*/*.bpf.c samples/*/*.bpf.c bpf/*.bpf.c test/fixtures/*/*.bpf.c)
BPF_OBJECTS := $(patsubst %.bpf.c,dist/%.bpf.o,$(BPF_SOURCES))
NATIVE_SOURCES := $(wildcard native/*.c native/*.h) binding.gyp
NATIVE_ADDON := build/Release/bpftune_native.node
TS_SOURCES := $(shell find src test bench samples -name '*.ts' ! -name '*.contract.ts' 2>/dev/null) tsconfig.json
# The kernel/user contract: each tuner's <name>.contract.ts, generated next to
# its sources from its object's BTF and its header (sdk/README.md), and the
# core's decoder of struct bpftune_event. Not in git: derived, like the objects.
CONTRACT_GEN := sdk/bin/bpftune-contract sdk/lib/contract.js
TUNER_BPF_SOURCES := $(wildcard src/tuners/*/*.bpf.c samples/*/*.bpf.c)
CONTRACTS := $(patsubst %.bpf.c,%.contract.ts,$(TUNER_BPF_SOURCES)) src/core/bpftune_event.contract.ts

.PHONY: all deps pkg-deps test-deps bench-deps man sdk install uninstall deb pkg run test lint bench bench-quick bench-tcp-buffer bench-query-load bench-vs-upstream test-vm test-vm-matrix clean distclean

VERSION = $(shell node -p "require('./package.json').version")

# make install: the command, the runtime (compiled JS without tests, BPF
# objects, native addon, and package.json's "dependencies" only: prom-client
# for --metrics, never the build-only packages),
# man pages and the systemd unit. The unit's RuntimeDirectory= and
# StateDirectory= make systemd create /run/bpftune and /var/lib/bpftune.
PREFIX ?= /usr
SBINDIR ?= $(PREFIX)/sbin
RUNTIME_DIR ?= $(PREFIX)/lib/bpftune
MANDIR ?= $(PREFIX)/share/man
SYSTEMD_UNIT_DIR ?= $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /lib/systemd/system)
# The interpreter the installed command names (the package: Debian's /usr/bin/node). Not through
# env -S like bin/bpftune (lintian: unusual-interpreter): the unit sets the MALLOC_* variables instead.
NODE_BIN ?= $(shell command -v node)

MAN_SOURCES := $(wildcard man/*.8.md)
MAN_PAGES := $(patsubst man/%.md,dist/man/%,$(MAN_SOURCES))
# Only for man pages and the package, so `make run` needs none of them.
PKG_DEB_PACKAGES := pandoc debhelper lintian dpkg-dev fakeroot man-db systemd
DEB_ARCH = $(shell dpkg --print-architecture)
DEB_FILE = dist/deb/bpftune_$(VERSION)_$(DEB_ARCH).deb
DEB_BUILD_LEFTOVERS = debian/bpftune debian/.debhelper debian/files debian/*.substvars debian/*.debhelper debian/*.debhelper.log debian/debhelper-build-stamp

all: deps node_modules/.installed $(NATIVE_ADDON) $(BPF_OBJECTS) dist/.tsc

# Debian's own Node.js (18.20 on Debian 12) and npm when there is no node or
# npm at all, and the Node-API headers (libnode-dev) for the addon when the
# node found came without them. A node from elsewhere (e.g. nodesource, which
# provides npm itself) is used as it is: installing Debian's npm beside it
# would make apt remove it.
NODE_PACKAGES := $(if $(shell command -v node),,nodejs) $(if $(shell command -v npm),,npm) \
	$(if $(wildcard /usr/include/node/node_api.h),,libnode-dev)
NODE_MIN_MAJOR := 18

# Installs only what is missing, so a machine that has everything is untouched.
define apt_install_missing
	@missing=""; for p in $(1); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "error: run as root to install:$$missing" >&2; exit 1; fi; \
		apt-get -o DPkg::Lock::Timeout=900 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq $$missing >/dev/null; \
	fi
endef

deps:
	$(call apt_install_missing,$(DEB_PACKAGES) $(NODE_PACKAGES))
	@v=$$(node -p process.versions.node) || exit 1; \
	if [ "$${v%%.*}" -lt $(NODE_MIN_MAJOR) ]; then \
		echo "error: node $$v ($$(command -v node)) is too old: bpftune needs Node.js >= $(NODE_MIN_MAJOR);" \
			"install Debian's (apt-get install nodejs npm) or put a newer node first on PATH" >&2; \
		exit 1; \
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

# A tuner's contract: its header (if any) and .bpf.c name the structs and enums, the object's BTF lays them out.
.SECONDEXPANSION:
TUNER_CONTRACTS := $(patsubst %.bpf.c,%.contract.ts,$(TUNER_BPF_SOURCES))
$(TUNER_CONTRACTS): %.contract.ts: dist/%.bpf.o %.bpf.c $$(wildcard $$*.h) $(CONTRACT_GEN)
	BPFTOOL=$(BPFTOOL) sdk/bin/bpftune-contract $< $@ $(filter %.h %.bpf.c,$(filter-out $<,$^))

src/core/bpftune_event.contract.ts: dist/bpf/event_layout.bpf.o bpf/bpftune_event.h $(CONTRACT_GEN)
	BPFTOOL=$(BPFTOOL) sdk/bin/bpftune-contract $< $@ bpf/bpftune_event.h

dist/.tsc: $(TS_SOURCES) $(CONTRACTS) node_modules/.installed
	npx tsc -p tsconfig.json
	@touch $@

# The plugin SDK (sdk/README.md), assembled in dist/sdk: its build helper and contract
# generator, the BPF headers a plugin includes (with this kernel's vmlinux.h) and the
# declarations of the tuner interface.
SDK_TYPES := tuner typed-map native log sysctl-values event netns strategy
sdk: all
	rm -rf dist/sdk && mkdir -p dist/sdk/include dist/sdk/types
	cp -r sdk/bin sdk/lib sdk/package.json sdk/README.md dist/sdk/
	cp bpf/bpftune.bpf.h bpf/bpftune_count.bpf.h bpf/bpftune_event.h $(VMLINUX_H) dist/sdk/include/
	for t in $(SDK_TYPES); do cp dist/src/core/$$t.d.ts dist/sdk/types/; done
	echo "export * from './tuner';" > dist/sdk/types/index.d.ts

pkg-deps:
	$(call apt_install_missing,$(PKG_DEB_PACKAGES))

# Man pages: one Markdown source each in man/, rendered with Debian's pandoc.
man: pkg-deps $(MAN_PAGES)

dist/man/%: man/%.md package.json
	@mkdir -p $(dir $@)
	pandoc -s -f markdown -t man -M footer="bpftune $(VERSION)" $< -o $@

# Test-only code under src/ (it imports test/support) is left out; BPF
# objects lose their DWARF (-g) but keep the BTF that CO-RE needs.
# The runtime npm packages, installed on their own so no build-only package reaches the install.
RUNTIME_MODULES := dist/runtime/.installed
$(RUNTIME_MODULES): package.json package-lock.json
	rm -rf dist/runtime && mkdir -p dist/runtime
	cp package.json package-lock.json dist/runtime/
	cd dist/runtime && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

install: all man $(RUNTIME_MODULES)
	@set -e; rt="$(DESTDIR)$(RUNTIME_DIR)"; \
	install -d "$$rt/bin" "$$rt/build/Release"; \
	rm -rf "$$rt/node_modules"; cp -r dist/runtime/node_modules "$$rt/node_modules"; \
	find "$$rt/node_modules" -name '.*' -prune -exec rm -rf {} +; chmod -R u=rwX,go=rX "$$rt/node_modules"; \
	sed '1s|^#!.*|#!$(NODE_BIN)|' bin/bpftune > "$$rt/bin/bpftune"; chmod 755 "$$rt/bin/bpftune"; \
	install -m 644 package.json "$$rt/"; \
	install -m 644 $(NATIVE_ADDON) "$$rt/build/Release/"; \
	for f in bpf/probe.bpf.o $$(cd dist && find src \( -name '*.js' ! -name '*.test.js' \) -o -name '*.bpf.o' | sort); do \
		install -d "$$(dirname "$$rt/dist/$$f")"; \
		case $$f in \
		*.js) if ! grep -q '/test/support/' "dist/$$f"; then install -m 644 "dist/$$f" "$$rt/dist/$$f"; fi;; \
		*.bpf.o) $(LLVM_STRIP) -g -o "$$rt/dist/$$f" "dist/$$f"; chmod 644 "$$rt/dist/$$f";; \
		esac; \
	done; \
	install -d "$(DESTDIR)$(SBINDIR)"; \
	ln -sfn "$$(realpath -m --relative-to=$(SBINDIR) $(RUNTIME_DIR)/bin/bpftune)" "$(DESTDIR)$(SBINDIR)/bpftune"; \
	install -d "$(DESTDIR)$(MANDIR)/man8"; \
	install -m 644 $(MAN_PAGES) "$(DESTDIR)$(MANDIR)/man8/"; \
	install -d "$(DESTDIR)$(SYSTEMD_UNIT_DIR)"; \
	sed 's|@SBINDIR@|$(SBINDIR)|' systemd/bpftune.service > "$(DESTDIR)$(SYSTEMD_UNIT_DIR)/bpftune.service"; \
	chmod 644 "$(DESTDIR)$(SYSTEMD_UNIT_DIR)/bpftune.service"

uninstall:
	rm -rf "$(DESTDIR)$(RUNTIME_DIR)"
	rm -f "$(DESTDIR)$(SBINDIR)/bpftune" "$(DESTDIR)$(SYSTEMD_UNIT_DIR)/bpftune.service"
	rm -f $(patsubst dist/man/%,"$(DESTDIR)$(MANDIR)/man8/%",$(MAN_PAGES))

# The Debian package, built with Debian's tooling (debian/): dist/deb/bpftune_<version>_<arch>.deb.
deb: pkg-deps all
	rm -rf dist/deb && mkdir -p dist/deb
	dpkg-buildpackage -b -us -uc \
		--buildinfo-option=-u$(CURDIR)/dist/deb --buildinfo-option=-O$(CURDIR)/dist/deb/bpftune_$(VERSION)_$(DEB_ARCH).buildinfo \
		--changes-option=-u$(CURDIR)/dist/deb --changes-option=-O$(CURDIR)/dist/deb/bpftune_$(VERSION)_$(DEB_ARCH).changes
	rm -rf $(DEB_BUILD_LEFTOVERS)
	# lintian leaves Berkeley DB files (mldbm-elf-*) in its TMPDIR: give it one of its own.
	lintian_tmp=$$(mktemp -d) && { TMPDIR=$$lintian_tmp lintian --tag-display-limit 0 $(DEB_FILE) || true; rm -rf $$lintian_tmp; }
	@echo "built $(DEB_FILE)"

# oracle/bpftune's name for "build this system's package".
pkg: deb

run: all
	bin/bpftune -s

lint: all
	npx eslint .

# Tests share the root cgroup's BPF attachments, so they run one file at a time
# (test/run-tests.ts: Node 18 has no --test-concurrency). test/package.test.ts
# runs `make deb` and the packaged daemon on Debian's Node.js 18.
# The metrics test runs its own Prometheus and node_exporter: Debian's packages,
# installed without their services started or enabled.
test-deps:
	@missing=""; for p in $(SERVICE_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages (services neither started nor enabled):$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "error: run as root to install:$$missing" >&2; exit 1; fi; \
		bash test/support/install-without-service.sh $$missing; \
	fi

test: all man sdk lint test-deps
	node dist/test/run-tests.js $$(find dist -name '*.test.js' | sort)

# The whole benchmark suite (root, about 34 minutes): writes bench/results/report.md
# and bench/results/tcp_buffer.svg. bench-quick: shorter runs, results in bench/results/quick/.
# Needed by the benchmarks only: stress-ng for the overhead section's socket workload.
BENCH_PACKAGES := stress-ng
bench-deps:
	$(call apt_install_missing,$(BENCH_PACKAGES))

bench: all bench-deps
	node dist/bench/suite.js

bench-quick: all bench-deps
	node dist/bench/suite.js --quick

# tcp_buffer's effect: throughput on a 40 ms path with and without bpftune (about 2 minutes).
bench-tcp-buffer: all
	node dist/bench/tcp_buffer.js

# The built tree on a Debian 12 VM (test/vm/README.md): KERNEL=6.1, 6.12, a linux-image-* package
# or a version. Builds and caches the image in /var/cache/bpftune-vm on first use (root).
KERNEL ?= 6.1
test-vm: all
	test/vm/vm.sh run $(KERNEL)

# 6.1 and 6.12, one VM after the other; results in test/vm/results/.
test-vm-matrix: all
	test/vm/vm.sh matrix

# Ours and oracle/bpftune side by side in the 6.1 VM (bench/vs-upstream.sh; about 45 minutes under
# TCG): builds the reference on this host, boots the bench image, writes bench/results/vs-upstream-6.1.md.
bench-vs-upstream: all
	bench/vs-upstream.sh

# RSS under 10 scrapes + 10 queries a second for 10 minutes, then 40,000 queries (about 11 minutes).
bench-query-load: all
	node dist/bench/query-load.js

clean:
	rm -rf dist build $(DEB_BUILD_LEFTOVERS) $(CONTRACTS)

distclean: clean
	rm -rf node_modules
