# rehablink: one non-recursive Makefile.
#
#   make            build everything (build/native)
#   make check      install missing Debian packages (as root), then every test:
#                   unit tests, ASan+UBSan builds, valgrind, JSON Schemas,
#                   a short run of every fuzzer
#   make demo       the protocol end to end through a real mosquitto
#   make bench      benchmarks; writes docs/performance.md
#   make fuzz       every fuzzer for FUZZ_SECONDS (default 60) each
#   make install    PREFIX=/usr/local DESTDIR= (config: SYSCONFDIR=/etc)
#   make clean
#
# Each test binary names its own sources and pkg-config modules, and links
# nothing else: a test that needs more than its module is a layering bug
# the linker reports.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
DESTDIR ?=

ifeq ($(origin CC),default)
CC := gcc
endif
CLANG ?= clang
PKG_CONFIG ?= pkg-config
PYTHON ?= /usr/bin/python3
VALGRIND ?= valgrind
FUZZ_SECONDS ?= 60
# the short fuzz budget `make check` gives each target
CHECK_FUZZ_SECONDS ?= 10

WARN := -Wall -Wextra -Werror -Wshadow -Wswitch-enum -Wstrict-prototypes \
	-Wmissing-prototypes -Wpointer-arith -Wcast-align -Wvla -Wformat=2 \
	-Wundef -Wwrite-strings -Wold-style-definition
VERSION := 0.5.0
BASE_CFLAGS := -std=c11 -DREHABLINK_VERSION='"$(VERSION)"' -D_GNU_SOURCE -D_FORTIFY_SOURCE=2 -fstack-protector-strong \
	-fno-common $(WARN) -Iproto -Igateway -Itests -Itests/fakes
OPT ?= -O2 -g
SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

pkg_cflags = $(if $(1),$(shell $(PKG_CONFIG) --cflags $(1)))
pkg_libs = $(if $(1),$(shell $(PKG_CONFIG) --libs $(1)))

# ---- what exists ----------------------------------------------------------

PROTO_WEARABLE := proto/wearable.c
PROTO_CLINIC := proto/payload.c proto/topic.c

# unit tests: name, sources, pkg-config modules
TESTS := test-wearable test-payload test-journal test-link test-central \
	test-bluez-parse test-sim test-bluez test-ble test-store test-aggregate test-uplink test-clock test-rules
test-wearable_SRCS := tests/test-wearable.c tests/helpers.c $(PROTO_WEARABLE)
test-wearable_PKGS := cmocka
test-payload_SRCS := tests/test-payload.c $(PROTO_CLINIC)
test-payload_PKGS := cmocka json-glib-1.0 glib-2.0
test-journal_SRCS := tests/test-journal.c gateway/journal.c $(PROTO_WEARABLE)
test-journal_PKGS := cmocka gio-2.0
BLE_CORE := gateway/link.c gateway/ble-types.c $(PROTO_WEARABLE)
test-link_SRCS := tests/test-link.c tests/fakes/fake-ble-ops.c $(BLE_CORE)
test-link_PKGS := cmocka glib-2.0
test-central_SRCS := tests/test-central.c tests/fakes/fake-ble-ops.c gateway/central.c $(BLE_CORE)
test-central_PKGS := cmocka glib-2.0
test-bluez-parse_SRCS := tests/test-bluez-parse.c tests/helpers.c gateway/bluez-parse.c gateway/ble-types.c
test-bluez-parse_PKGS := cmocka gio-2.0 glib-2.0
test-bluez_SRCS := tests/test-bluez.c tests/fakes/private-bus.c gateway/bluez.c gateway/bluez-parse.c gateway/ble-types.c $(PROTO_WEARABLE)
test-bluez_PKGS := cmocka gio-2.0 glib-2.0
test-sim_SRCS := tests/test-sim.c tests/helpers.c gateway/sim.c $(PROTO_WEARABLE)
test-sim_PKGS := cmocka glib-2.0
test-ble_SRCS := tests/test-ble.c tests/fakes/private-bus.c gateway/ble.c gateway/central.c gateway/journal.c \
	gateway/bluez.c gateway/bluez-parse.c $(BLE_CORE)
test-ble_PKGS := cmocka gio-2.0 glib-2.0
test-store_SRCS := tests/test-store.c gateway/store.c $(PROTO_WEARABLE)
test-store_PKGS := cmocka glib-2.0 sqlite3
test-aggregate_SRCS := tests/test-aggregate.c gateway/aggregate.c $(PROTO_WEARABLE)
test-aggregate_PKGS := cmocka glib-2.0
test-uplink_SRCS := tests/test-uplink.c tests/fakes/broker.c gateway/uplink.c
test-uplink_PKGS := cmocka gio-2.0 glib-2.0
test-uplink_LIBS := -lpaho-mqtt3as
test-rules_SRCS := tests/test-rules.c gateway/rules.c
test-rules_PKGS := cmocka glib-2.0
test-clock_SRCS := tests/test-clock.c gateway/clock.c
test-clock_PKGS := cmocka glib-2.0
# the config loader (key table, from a buffer); rules.c: the [rules] table
TESTS += $(if $(wildcard tests/test-config.c),test-config)
test-config_SRCS := tests/test-config.c gateway/config.c gateway/rules.c gateway/clock.c
test-config_PKGS := cmocka glib-2.0 json-glib-1.0
# these start the fake bluetoothd of their own variant (../bin/)
TEST_DEPS_test-bluez := fake-bluetoothd
TEST_DEPS_test-ble := fake-bluetoothd

# programs
PROGRAMS := rehablinkd rehablink-sim fake-bluetoothd vm-central vm-gateway
GATEWAY := gateway/gateway.c gateway/gateway-query.c gateway/store.c gateway/aggregate.c gateway/uplink.c gateway/rules.c \
	gateway/clock.c gateway/ble.c gateway/central.c gateway/journal.c gateway/bluez.c \
	gateway/bluez-parse.c $(BLE_CORE) $(PROTO_CLINIC)
# the daemon's shell: config loader, logging, the control API
DAEMON := $(wildcard gateway/config.c gateway/log.c gateway/control.c)
rehablinkd_SRCS := gateway/main.c $(DAEMON) $(GATEWAY)
rehablinkd_PKGS := gio-2.0 gio-unix-2.0 glib-2.0 json-glib-1.0 sqlite3 libsystemd
rehablinkd_LIBS := -lpaho-mqtt3as
SIM := gateway/sim-fakebus.c gateway/sim.c $(PROTO_WEARABLE)
rehablink-sim_SRCS := gateway/sim-main.c gateway/sim-gatt.c $(SIM)
rehablink-sim_PKGS := gio-2.0 gio-unix-2.0 glib-2.0
fake-bluetoothd_SRCS := tests/fakes/fake-bluetoothd.c $(SIM)
fake-bluetoothd_PKGS := gio-2.0 gio-unix-2.0 glib-2.0
# rehablinkctl: every gateway/ctl-*.c; the control API over GIO, libbluetooth
# for the doctor's HCI counters
PROGRAMS += $(if $(wildcard gateway/ctl-main.c),rehablinkctl)
rehablinkctl_SRCS := $(sort $(wildcard gateway/ctl-*.c))
rehablinkctl_PKGS := gio-2.0 gio-unix-2.0 glib-2.0 json-glib-1.0 bluez
vm-central_SRCS := tests/ble-vm/vm-central.c $(PROTO_WEARABLE)
vm-central_PKGS := gio-2.0
vm-gateway_SRCS := tests/ble-vm/vm-gateway.c gateway/ble.c gateway/central.c \
	gateway/journal.c gateway/bluez.c gateway/bluez-parse.c $(BLE_CORE)
vm-gateway_PKGS := gio-2.0 glib-2.0

# benchmarks
BENCHES := bench-proto bench-dbus-ceiling bench-paho-ceiling bench-bluez-ingest bench-ble
bench-ble_SRCS := tests/bench/bench-ble.c tests/fakes/private-bus.c gateway/ble.c gateway/central.c \
	gateway/journal.c gateway/bluez.c gateway/bluez-parse.c $(BLE_CORE)
bench-ble_PKGS := gio-2.0 glib-2.0
bench-bluez-ingest_SRCS := tests/bench/bench-bluez-ingest.c gateway/bluez.c \
	gateway/bluez-parse.c gateway/ble-types.c
bench-bluez-ingest_PKGS := gio-2.0 glib-2.0
bench-proto_SRCS := tests/bench/bench-proto.c $(PROTO_WEARABLE) $(PROTO_CLINIC)
bench-proto_PKGS := json-glib-1.0 glib-2.0
bench-dbus-ceiling_SRCS := tests/bench/bench-dbus-ceiling.c
bench-dbus-ceiling_PKGS := gio-2.0
bench-paho-ceiling_SRCS := tests/bench/bench-paho-ceiling.c
bench-paho-ceiling_PKGS := glib-2.0
bench-paho-ceiling_LIBS := -lpaho-mqtt3as

# libFuzzer targets: tests/fuzz/fuzz-NAME.c, corpus in tests/fuzz/corpus/NAME
FUZZERS := wearable-batch wearable-record wearable-hcp wearable-misc \
	clinic-ack clinic-config topic sim-scenario
fuzz-wearable-batch_SRCS := $(PROTO_WEARABLE)
fuzz-wearable-record_SRCS := $(PROTO_WEARABLE)
fuzz-wearable-hcp_SRCS := $(PROTO_WEARABLE)
fuzz-wearable-misc_SRCS := $(PROTO_WEARABLE)
fuzz-clinic-ack_SRCS := $(PROTO_CLINIC)
fuzz-clinic-ack_PKGS := json-glib-1.0 glib-2.0
fuzz-clinic-config_SRCS := $(PROTO_CLINIC)
fuzz-clinic-config_PKGS := json-glib-1.0 glib-2.0
fuzz-topic_SRCS := proto/topic.c
fuzz-sim-scenario_SRCS := gateway/sim.c $(PROTO_WEARABLE)
fuzz-sim-scenario_PKGS := glib-2.0
# the daemon's config from a buffer, what bluetoothd sends, rehablinkctl's
# arguments and its reading of the daemon's numbers (tests/fuzz/README.md)
FUZZERS += config bluez-parse ctl-parse
fuzz-config_SRCS := gateway/config.c gateway/rules.c gateway/clock.c
fuzz-config_PKGS := glib-2.0 json-glib-1.0
fuzz-bluez-parse_SRCS := gateway/bluez-parse.c gateway/ble-types.c
fuzz-bluez-parse_PKGS := gio-2.0 glib-2.0
fuzz-ctl-parse_SRCS := gateway/ctl-util.c gateway/bluez-parse.c gateway/ble-types.c
fuzz-ctl-parse_PKGS := gio-2.0 gio-unix-2.0 json-glib-1.0 glib-2.0
wearable-batch_DICT := tests/fuzz/wearable.dict
wearable-record_DICT := tests/fuzz/wearable.dict
wearable-hcp_DICT := tests/fuzz/wearable.dict
wearable-misc_DICT := tests/fuzz/wearable.dict
clinic-ack_DICT := tests/fuzz/json.dict
clinic-config_DICT := tests/fuzz/json.dict

# ---- build variants: native and asan ----------------------------------------

VARIANTS := native asan
native_CFLAGS := $(BASE_CFLAGS) $(OPT)
native_LDFLAGS :=
asan_CFLAGS := $(BASE_CFLAGS) -O1 -g $(SAN)
asan_LDFLAGS := $(SAN)

# $(1) variant, $(2) binary name, $(3) output dir
define link_rule
$(3)/$(2): $$(patsubst %.c,build/$(1)/obj/%.o,$$($(2)_SRCS))
	@mkdir -p $$(@D)
	$$(CC) $$($(1)_LDFLAGS) $$(LDFLAGS) -o $$@ $$^ $$(call pkg_libs,$$($(2)_PKGS)) $$($(2)_LIBS) $$(LDLIBS)
endef

define variant_rules
build/$(1)/obj/%.o: %.c
	@mkdir -p $$(@D)
	$$(CC) $$($(1)_CFLAGS) $$(call pkg_cflags,$$(OBJ_PKGS)) $$(CFLAGS) -MMD -MP -c $$< -o $$@
$(foreach t,$(TESTS),$(eval $(call link_rule,$(1),$(t),build/$(1)/tests)))
$(foreach t,$(TESTS),$(eval build/$(1)/tests/$(t): | $(foreach d,$(TEST_DEPS_$(t)),build/$(1)/bin/$(d))))
$(foreach p,$(PROGRAMS) $(BENCHES),$(eval $(call link_rule,$(1),$(p),build/$(1)/bin)))
endef

# every object compiles against the union of the modules the project uses;
# linking is where each binary is held to its own list
OBJ_PKGS := gio-2.0 gio-unix-2.0 json-glib-1.0 cmocka sqlite3 libsystemd

$(foreach v,$(VARIANTS),$(eval $(call variant_rules,$(v))))

# ---- fuzzers (clang, libFuzzer + ASan + UBSan) -----------------------------

FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -Iproto -Igateway \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

define fuzz_rule
build/fuzz/fuzz-$(1): tests/fuzz/fuzz-$(1).c $$(fuzz-$(1)_SRCS)
	@mkdir -p $$(@D)
	$$(CLANG) $$(FUZZ_CFLAGS) $$(call pkg_cflags,$$(fuzz-$(1)_PKGS)) -o $$@ $$^ \
		$$(call pkg_libs,$$(fuzz-$(1)_PKGS))
endef
$(foreach f,$(FUZZERS),$(eval $(call fuzz_rule,$(f))))

# $(1) seconds per target
define run_fuzzers
	@set -e; for f in $(FUZZERS); do \
		d=build/fuzz/work-$$f; rm -rf $$d; mkdir -p $$d; \
		dict=""; \
		case $$f in wearable-*) dict=-dict=tests/fuzz/wearable.dict;; \
			clinic-*) dict=-dict=tests/fuzz/json.dict;; \
			config) dict=-dict=tests/fuzz/config.dict;; \
			bluez-parse) dict=-dict=tests/fuzz/bluez.dict;; \
			ctl-parse) dict=-dict=tests/fuzz/ctl.dict;; esac; \
		echo "fuzz $$f: $(1) s"; \
		ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		build/fuzz/fuzz-$$f $$dict -max_total_time=$(1) -print_final_stats=1 \
			-artifact_prefix=build/fuzz/crash-$$f- $$d tests/fuzz/corpus/$$f \
			> build/fuzz/$$f.log 2>&1 \
			|| { tail -n 60 build/fuzz/$$f.log; echo "fuzz $$f: FAILED"; exit 1; }; \
		grep -E 'stat::number_of_executed_units|cov:' build/fuzz/$$f.log | tail -n 2; \
	done
endef

# ---- top-level targets ------------------------------------------------------

.PHONY: soak check-faults check-man check-demo check-it check-ble-vm all deps check check-unit check-asan check-valgrind check-schemas \
	check-fuzz demo bench fuzz install clean

all: $(foreach t,$(TESTS),build/native/tests/$(t)) \
	$(foreach p,$(PROGRAMS),build/native/bin/$(p))

deps:
	@sh scripts/deps.sh

# The packages are installed first, in a separate make, so that pkg-config
# answers for real when the build rules expand.
check: deps
	@$(MAKE) --no-print-directory check-unit check-asan check-valgrind \
		check-schemas check-man check-demo check-it check-faults check-fuzz check-ble-vm \
		check-arm64 check-deb
	@echo "check: all passed"

run_tests = set -e; for t in $(TESTS); do echo "== $(1) $$t"; \
	$(2) build/$(1)/tests/$$t; done

check-unit: $(foreach t,$(TESTS),build/native/tests/$(t))
	@G_DEBUG=fatal-warnings; export G_DEBUG; $(call run_tests,native,)

check-asan: $(foreach t,$(TESTS),build/asan/tests/$(t))
	@G_DEBUG=fatal-warnings ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1; \
		export G_DEBUG ASAN_OPTIONS UBSAN_OPTIONS; $(call run_tests,asan,)

VALGRIND_CMD := $(VALGRIND) -q --error-exitcode=9 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect

check-valgrind: $(foreach t,$(TESTS),build/native/tests/$(t))
	@G_SLICE=always-malloc G_DEBUG=gc-friendly,fatal-warnings; export G_SLICE G_DEBUG; \
		$(call run_tests,native,$(VALGRIND_CMD))

check-schemas: build/native/tests/test-payload
	@rm -rf build/payloads && mkdir -p build/payloads
	build/native/tests/test-payload --emit build/payloads
	$(PYTHON) tests/validate-schemas.py proto/schema build/payloads

check-fuzz: $(foreach f,$(FUZZERS),build/fuzz/fuzz-$(f))
	$(call run_fuzzers,$(CHECK_FUZZ_SECONDS))

# the durable path end to end: fake bluetoothd, rehablinkd, SQLite, a real
# mosquitto, a consumer that checks every message (tests/it/uplink-it.py)
check-it: build/native/bin/rehablinkd build/native/bin/fake-bluetoothd build/native/bin/rehablinkctl
	$(PYTHON) tests/it/daemon-it.py build/native/bin
	$(PYTHON) tests/it/policy-it.py config/org.rehablink.Gateway.conf
	$(PYTHON) tests/it/ctl-it.py build/native/bin
	$(PYTHON) tests/it/uplink-it.py build/native/bin
	$(PYTHON) tests/it/escalation-it.py build/native/bin
	$(PYTHON) tests/it/security-it.py build/native/bin

# the whole system under injected faults, every record accounted for
# (tests/faults/README.md): a short round in make check, make soak N=1000.
# Every kind; FAULT_KINDS=a,b narrows a run.
CHECK_FAULT_KINDS ?= gw-kill,broker-restart,broker-outage,broker-flap,bt-restart,adapter-off,link-loss-sync,disk-full,clock-fwd,clock-back,db-corrupt,malformed-ble,bad-clinic
check-faults: build/native/bin/rehablinkd build/native/bin/fake-bluetoothd build/native/bin/rehablinkctl
	$(PYTHON) tests/faults/faults.py build/native/bin --faults 20 --seed $(or $(SEED),1) \
		$(if $(filter all,$(FAULT_KINDS)),,--kinds $(or $(FAULT_KINDS),$(CHECK_FAULT_KINDS)))

soak: deps
	@$(MAKE) --no-print-directory build/native/bin/rehablinkd build/native/bin/fake-bluetoothd \
		build/native/bin/rehablinkctl
	$(PYTHON) tests/faults/faults.py build/native/bin --faults $(or $(N),1000) --seed $(or $(SEED),1) \
		--interval 0.5:2 --outage-scale 0.5 --ctl-every 5

# the man pages render without a groff warning
check-man:
	@for f in docs/man/*.[158]; do \
		out=$$(groff -man -Tutf8 -ww -z $$f 2>&1); \
		if [ -n "$$out" ]; then echo "$$f: $$out"; exit 1; fi; \
	done; echo "check-man: $$(ls docs/man/*.[158] | wc -l) pages clean"

# the real BlueZ stack (kernel Bluetooth, btvirt, bluetoothd 5.66) in a qemu
# VM: rehablink-sim as the peripheral, a GDBus central on hci0
check-ble-vm: build/native/bin/rehablink-sim build/native/bin/vm-central \
		build/native/bin/vm-gateway build/native/bin/rehablinkctl
	@rc=0; sh tests/ble-vm/check.sh build/native/bin || rc=$$?; \
	if [ $$rc -eq 77 ]; then echo "check-ble-vm: SKIPPED (no qemu, kernel image or ../shared)"; \
	elif [ $$rc -ne 0 ]; then echo "check-ble-vm: FAILED"; exit 1; fi

fuzz: deps
	@$(MAKE) --no-print-directory $(foreach f,$(FUZZERS),build/fuzz/fuzz-$(f))
	$(call run_fuzzers,$(FUZZ_SECONDS))

# the demo is part of the check, so it cannot rot unseen
DEMO_BINS := build/native/bin/rehablinkd build/native/bin/fake-bluetoothd build/native/bin/rehablinkctl
check-demo: $(DEMO_BINS)
	@$(PYTHON) tests/demo/demo.py build/native/bin 45 > build/demo.log 2>&1 \
		|| { cat build/demo.log; echo "check-demo: FAILED"; exit 1; }
	@echo "check-demo: $$(grep -m1 'the clinic received' build/demo.log)"

demo: deps
	@$(MAKE) --no-print-directory $(DEMO_BINS)
	@$(PYTHON) tests/demo/demo.py build/native/bin

bench: deps
	@$(MAKE) --no-print-directory $(foreach b,$(BENCHES),build/native/bin/$(b)) \
		build/native/bin/fake-bluetoothd build/native/bin/rehablinkd build/native/bin/rehablinkctl
	@sh tests/bench/run.sh build/native/bin

SBINDIR ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
MANDIR ?= $(DATADIR)/man
# Debian (bookworm) keeps units in /lib even with /usr merged
SYSTEMDUNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
# the parts written now: whichever exist (rehablinkctl: when it is built)
INSTALL_UNITS := $(wildcard config/rehablink.service)
INSTALL_DBUS := $(wildcard config/org.rehablink.Gateway.conf)
INSTALL_MAN := $(wildcard docs/man/rehablinkd.8 docs/man/rehablinkctl.1 docs/man/rehablink-sim.1 \
	docs/man/rehablink.conf.5)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(DATADIR)/rehablink/schema \
		$(DESTDIR)$(DATADIR)/doc/rehablink $(DESTDIR)$(SYSCONFDIR)/rehablink
	install -m 0755 build/native/bin/rehablinkd $(DESTDIR)$(SBINDIR)/
	install -m 0755 build/native/bin/rehablink-sim \
		$(if $(filter rehablinkctl,$(PROGRAMS)),build/native/bin/rehablinkctl) $(DESTDIR)$(BINDIR)/
	test -e $(DESTDIR)$(SYSCONFDIR)/rehablink/rehablink.conf || \
		install -m 0640 config/rehablink.conf $(DESTDIR)$(SYSCONFDIR)/rehablink/
	$(if $(INSTALL_UNITS),install -d $(DESTDIR)$(SYSTEMDUNITDIR) && \
		install -m 0644 $(INSTALL_UNITS) $(DESTDIR)$(SYSTEMDUNITDIR)/)
	$(if $(INSTALL_DBUS),install -d $(DESTDIR)$(DATADIR)/dbus-1/system.d && \
		install -m 0644 $(INSTALL_DBUS) $(DESTDIR)$(DATADIR)/dbus-1/system.d/)
	$(foreach m,$(INSTALL_MAN),install -D -m 0644 $(m) \
		$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m)) &&) true
	install -m 0644 proto/schema/*.schema.json $(DESTDIR)$(DATADIR)/rehablink/schema/
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DATADIR)/doc/rehablink/

clean:
	rm -rf build

# parts kept in their own files: the arm64 cross-build, the Debian package
-include $(sort $(wildcard mk/*.mk))

-include $(shell find build -name '*.d' -type f 2>/dev/null)
