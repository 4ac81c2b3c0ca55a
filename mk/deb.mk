# The Debian package (debian/), built with dpkg-buildpackage in a copy of the
# tree under build/deb/, so nothing is written next to /work/main.
#
#   make deb          the host's .deb (amd64 here) into build/deb/
#   make deb-arm64    the arm64 .deb, cross-built (Debian multiarch)
#   make check-deb    the arm64 .deb installed with dpkg -i in an arm64
#                     debootstrap chroot under qemu-user (postinst, binaries,
#                     purge), then lintian; mk/check-deb.sh explains how

DEB_DIR := build/deb
# "0.5.0-1" from the first line of debian/changelog (lazy: only when used)
DEB_VERSION = $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)
DEB_UPSTREAM = $(firstword $(subst -, ,$(DEB_VERSION)))
DEB_HOST_ARCH_NATIVE = $(shell dpkg --print-architecture)

# $(1) architecture, $(2) environment, $(3) dpkg-buildpackage options:
# a fresh copy of the tree (no build/, no .git) in build/deb/$(1)/, built
# there; the .debs are moved up to build/deb/, the log is build/deb/$(1).log
define deb_build
	@rm -rf $(DEB_DIR)/$(1) && mkdir -p $(DEB_DIR)/$(1)/rehablink-$(DEB_UPSTREAM)
	@tar -c --exclude=./build --exclude=./.git --exclude=./debian/rehablink \
		--exclude=./debian/.debhelper . | tar -x -C $(DEB_DIR)/$(1)/rehablink-$(DEB_UPSTREAM)
	@echo "deb $(1): dpkg-buildpackage (log: $(DEB_DIR)/$(1).log)"
	@cd $(DEB_DIR)/$(1)/rehablink-$(DEB_UPSTREAM) && \
		$(2) dpkg-buildpackage -b -us -uc -Jauto $(3) > ../../$(1).log 2>&1 \
		|| { tail -n 40 ../../$(1).log; echo "deb $(1): FAILED"; exit 1; }
	@rm -f $(DEB_DIR)/rehablink*_$(1).deb $(DEB_DIR)/rehablink*_$(1).ddeb
	@mv $(DEB_DIR)/$(1)/*.deb $(DEB_DIR)/$(1)/*.ddeb $(DEB_DIR)/ 2>/dev/null || true
	@rm -rf $(DEB_DIR)/$(1)/rehablink-$(DEB_UPSTREAM)
	@ls -l $(DEB_DIR)/rehablink_$(DEB_VERSION)_$(1).deb
endef

.PHONY: deb deb-arm64 check-deb

comma := ,

deb: deps
	$(call deb_build,$(DEB_HOST_ARCH_NATIVE),,)

deb-arm64: deps
	$(call deb_build,arm64,DEB_BUILD_OPTIONS=nocheck,-aarm64 -Pcross$(comma)nocheck)

# the arm64 package installed for real in an arm64 chroot under qemu-user
# (mk/check-deb.sh), then lintian on it (errors fail, warnings are shown).
# The debootstrapped arm64 base is kept in CHECK_DEB_CACHE (made once, ~3 min).
CHECK_DEB_CACHE ?= /var/tmp/rehablink-check-deb
check-deb: deb-arm64
	@sh mk/check-deb.sh $(DEB_DIR)/rehablink_$(DEB_VERSION)_arm64.deb $(DEB_DIR) $(CHECK_DEB_CACHE)
	@if [ "$$(id -u)" -eq 0 ]; then lint="runuser -u nobody --"; else lint=; fi; \
		$$lint lintian --fail-on error --suppress-tags initial-upload-closes-no-bugs \
		$(DEB_DIR)/rehablink_$(DEB_VERSION)_arm64.deb \
		|| { echo "check-deb: lintian FAILED"; exit 1; }
	@echo "check-deb: lintian: no errors"
