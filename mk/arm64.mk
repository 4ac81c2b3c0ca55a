# The arm64 (Raspberry Pi) cross-build, and its unit tests under qemu-user.
#
#   make check-arm64    every unit test in $(TESTS) and every program in
#                       $(PROGRAMS), built for aarch64 into build/arm64/ with
#                       Debian multiarch (scripts/deps.sh installs the :arm64
#                       -dev packages), each test run under qemu-aarch64
#   make arm64          build only
#
# No binfmt_misc is needed: every arm64 binary is started as
# `qemu-aarch64 BINARY`. Without -L, the binary's interpreter
# /lib/ld-linux-aarch64.so.1 and the libraries are libc6:arm64 and the other
# :arm64 packages of the host's multiarch tree, the same versions the .deb is
# linked against.
#
# test-bluez and test-ble spawn the fake bluetoothd themselves; an arm64 child
# cannot be exec'd without binfmt, so they get REHABLINK_FAKE_BLUETOOTHD (which
# they honour instead of ../bin/fake-bluetoothd): a two-line wrapper that
# execs the arm64 build/arm64/bin/fake-bluetoothd under qemu-aarch64 too. Its
# pid is qemu's, which forwards signals to the guest and dies by the guest's
# fatal signal, so the tests' kill/restart/exit checks see the same thing.
# test-uplink starts the host's (amd64) mosquitto: the broker is not under test;
# it re-executes itself for its will test, through REHABLINK_TEST_WRAPPER
# (the emulator, prepended to the child's argv) when that is set.

ARM64_TRIPLET ?= aarch64-linux-gnu
ARM64_CC ?= $(ARM64_TRIPLET)-gcc
ARM64_PKG_CONFIG ?= $(ARM64_TRIPLET)-pkg-config
QEMU_AARCH64 ?= qemu-aarch64

arm64_CFLAGS := $(BASE_CFLAGS) $(OPT)
arm64_LDFLAGS :=

# the compiler and the pkg-config of every target under build/arm64/ (also
# when CC is given on the command line: that one is the native compiler)
build/arm64/%: override CC := $(ARM64_CC)
build/arm64/%: override PKG_CONFIG := $(ARM64_PKG_CONFIG)

$(eval $(call variant_rules,arm64))

ARM64_TESTS := $(foreach t,$(TESTS),build/arm64/tests/$(t))
ARM64_PROGRAMS := $(foreach p,$(PROGRAMS),build/arm64/bin/$(p))
ARM64_FAKE := build/arm64/qemu/fake-bluetoothd

$(ARM64_FAKE): build/arm64/bin/fake-bluetoothd mk/arm64.mk
	@mkdir -p $(@D)
	printf '#!/bin/sh\nexec %s "$$(dirname "$$0")/../bin/fake-bluetoothd" "$$@"\n' \
		'$(QEMU_AARCH64)' > $@.tmp
	chmod 0755 $@.tmp && mv $@.tmp $@

.PHONY: arm64 check-arm64
arm64: $(ARM64_TESTS) $(ARM64_PROGRAMS)

# the same environment as check-unit; a failing test does not stop the others,
# the summary line names the failures and the target fails
check-arm64: $(ARM64_TESTS) $(ARM64_PROGRAMS) $(ARM64_FAKE)
	@command -v $(QEMU_AARCH64) >/dev/null || \
		{ echo "check-arm64: no $(QEMU_AARCH64) (make deps)"; exit 1; }
	@G_DEBUG=fatal-warnings; REHABLINK_FAKE_BLUETOOTHD=$(CURDIR)/$(ARM64_FAKE); \
	REHABLINK_TEST_WRAPPER=$(QEMU_AARCH64); \
	export G_DEBUG REHABLINK_FAKE_BLUETOOTHD REHABLINK_TEST_WRAPPER; \
	pass=0; failed=""; start=$$(date +%s); \
	for t in $(TESTS); do \
		echo "== arm64 $$t"; \
		if $(QEMU_AARCH64) build/arm64/tests/$$t; then pass=$$((pass + 1)); \
		else failed="$$failed $$t"; fi; \
	done; \
	echo "check-arm64: $$pass of $(words $(TESTS)) tests passed under $(QEMU_AARCH64)" \
		"in $$(( $$(date +%s) - start )) s$${failed:+; FAILED:$$failed}"; \
	[ -z "$$failed" ]
