# policyhook: build, install, test, package. Every directory is overridable, as
# packagers expect (policyhook.spec passes the RPM macros):
#   make install DESTDIR=%{buildroot} PREFIX=/usr SYSCONFDIR=/etc PYTHON=/usr/bin/python3
NAME          := policyhook
PYTHON        ?= python3
# A source install (no DESTDIR) goes under /usr/local, beside the package manager's tree
# and never into it; a staged one (DESTDIR: a package build) under /usr, as packagers
# expect even when they pass no PREFIX (debian/rules and the spec pass PREFIX=/usr).
PREFIX        ?= $(if $(DESTDIR),/usr,/usr/local)
SYSCONFDIR    ?= /etc
LOCALSTATEDIR ?= /var
RUNDIR        ?= /run
# Into a virtualenv without DESTDIR, pip puts policyctl in the virtualenv's bin, which
# the watcher's unit must name.
BINDIR        ?= $(if $(DESTDIR),$(PREFIX)/bin,$(if $(filter 1,$(PYTHON_IN_VENV)),$(PYTHON_SCRIPTS),$(PREFIX)/bin))
SBINDIR       ?= $(PREFIX)/sbin
DATADIR       ?= $(PREFIX)/share
MANDIR        ?= $(DATADIR)/man
DOCDIR        ?= $(DATADIR)/doc/$(NAME)
HOOKDIR       ?= $(SYSCONFDIR)/libvirt/hooks
TMPFILESDIR   ?= $(PREFIX)/lib/tmpfiles.d
UNITDIR       ?= $(PREFIX)/lib/systemd/system
COMPLETIONDIR ?= $(DATADIR)/bash-completion/completions
LOGROTATEDIR  ?= $(SYSCONFDIR)/logrotate.d
COCKPITDIR    ?= $(DATADIR)/cockpit/$(NAME)
DESTDIR       ?=
INSTALL       ?= install
# The program the hook's links lead to (doc/packaging.md, "The hook's layout"). libvirtd's
# AppArmor profile (Debian, Ubuntu) lets it execute /usr/sbin/* and /etc/libvirt/hooks/**
# but nothing under /usr/local: a package (PREFIX /usr) installs it in SBINDIR, an install
# under any other PREFIX beside its links, in HOOKDIR.
HOOKPROG      ?= $(if $(filter /usr,$(PREFIX)),$(SBINDIR),$(HOOKDIR))/$(NAME)

VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' policyhook/__init__.py)

# The hook's shebang names the interpreter by absolute path: libvirtd cuts PATH.
PYTHON_ABS := $(shell $(PYTHON) -c 'import sys; print(sys.executable)')

# Where the Python package goes outside a virtualenv. For PREFIX /usr (a package): the
# interpreter's own layout, as a package build has it. Debian's python3 picks /usr/local
# for any prefix unless told that this is a package build (DEB_PYTHON_INSTALL_LAYOUT;
# other interpreters ignore the variable), giving /usr/lib/python3/dist-packages.
# For any other PREFIX (/usr/local): the site directory under PREFIX/lib that the
# interpreter searches, as site.getsitepackages() lists it whether or not it exists yet:
# /usr/local/lib/python3.X/dist-packages on Debian and Ubuntu,
# /usr/local/lib/python3.X/site-packages on Fedora and RHEL. No sysconfig scheme gives
# both: Debian's posix_local adds /local to the prefix, posix_prefix ends in site-packages.
# Failing that, the interpreter's layout again (a DESTDIR install checks nothing).
PYTHON_LAYOUT := DEB_PYTHON_INSTALL_LAYOUT=deb_system
PYTHON_SITELIB = $(shell $(PYTHON_LAYOUT) $(PYTHON) -c 'import site, sysconfig; \
	searched = [d for d in site.getsitepackages() if d.startswith("$(PREFIX)/lib/")]; \
	print(searched[0] if searched and "$(PREFIX)" != "/usr" else \
	sysconfig.get_path("purelib", vars={"base": "$(PREFIX)", "platbase": "$(PREFIX)"}))')
PYTHON_SCRIPTS = $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("scripts"))')

# Generated files, all under build/ (never sed on an installed file).
MANPAGES   := build/policyctl.8 build/policyhook.conf.5 build/policyhook.8 build/policyhook-policy.5
COMPLETION := build/policyctl.bash
UNIT       := build/policyhook-watch.service
# The hook is installed once, as HOOKPROG (SBINDIR/policyhook in a package), and each
# libvirt driver with hooks runs it through a symlink HOOKDIR/DRIVER.d/policyhook: a
# program, not a setting, which a package replaces on upgrade (a file under /etc would be
# a conffile) and which libvirtd's AppArmor profile lets it execute (doc/packaging.md,
# "The hook's layout").
DRIVERS    := qemu lxc libxl
HOOK       := build/policyhook

# make rpm / srpm: everything under build/rpm. On a host whose rpm database does not
# hold its own packages (Debian's rpm), BuildRequires cannot be checked: --nodeps.
# RPMBUILD_ARGS adds to the command line, e.g. RPMBUILD_ARGS="--without tests".
RPMBUILD       ?= rpmbuild
RPMTOPDIR      ?= $(CURDIR)/build/rpm
RPMBUILD_FLAGS ?= $(shell rpm -q --quiet rpm 2>/dev/null || echo --nodeps)
RPMBUILD_ARGS  ?=
DIST_REF       ?= HEAD
TARBALL        := dist/$(NAME)-$(VERSION).tar.gz

.PHONY: all build install install-python install-data install-cockpit uninstall uninstall-extras reload-libvirtd \
	test unit e2e e2e-foreign stress e2e-vm e2e-vm-debian e2e-vm-cockpit e2e-vm-xen e2e-vm-xen-credit2 demo lint dist rpm srpm deb check-version check-spec check-debian check-tree clean FORCE \
	check-prereqs check-prereqs-install check-prereqs-rpm check-prereqs-srpm check-prereqs-test

all: build

# What install, rpm, srpm and test need, named with the Debian and Fedora/RHEL package
# that provides each when missing; `make check-prereqs` checks them all (or PREREQS).
# install-python runs pip into PYTHON's own environment, where pip refuses an
# externally managed (PEP 668) interpreter, only for a virtualenv without DESTDIR
# (PYTHON_IN_VENV, below); a system interpreter gets a distribution package's layout.
PIP_INTO_ENV ?= $(if $(DESTDIR),no,$(if $(filter 1,$(PYTHON_IN_VENV)),yes,no))
RPM_PYTHON   ?= /usr/bin/python3
PREREQS      ?= install rpm test
CHECK_PREREQS = tools/check-prereqs --python "$(PYTHON)" --destdir "$(DESTDIR)" \
	--pip-into-env $(PIP_INTO_ENV) --rpmbuild "$(RPMBUILD)" --rpm-python "$(RPM_PYTHON)" \
	--rpm-tests $(if $(findstring --without tests,$(RPMBUILD_ARGS)),no,yes) --venv "$(or $(VENV),.venv)"
check-prereqs:
	@$(CHECK_PREREQS) $(PREREQS)
check-prereqs-install check-prereqs-rpm check-prereqs-srpm check-prereqs-test:
	@$(CHECK_PREREQS) $(@:check-prereqs-%=%)
# Under make -j as well, pip and git archive run only once the check has passed.
ifneq ($(filter install,$(MAKECMDGOALS)),)
install-python: | check-prereqs-install
endif
ifneq ($(filter rpm srpm,$(MAKECMDGOALS)),)
dist: | $(addprefix check-prereqs-,$(filter rpm srpm,$(MAKECMDGOALS)))
endif

build: $(HOOK) $(MANPAGES) $(COMPLETION) $(UNIT)

# The watcher's unit names policyctl where BINDIR puts it.
$(UNIT): contrib/systemd/policyhook-watch.service.in FORCE
	@mkdir -p build
	sed 's|@BINDIR@|$(BINDIR)|g' $< > $@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi

# Rebuild the hook when PYTHON changes, not only when hooks/policyhook does.
build/python-path: FORCE
	@mkdir -p build
	@echo '$(PYTHON_ABS)' | cmp -s - $@ || echo '$(PYTHON_ABS)' > $@

$(HOOK): hooks/policyhook build/python-path
	@mkdir -p build
	{ echo '#!$(PYTHON_ABS) -I'; tail -n +2 $<; } > $@.tmp
	chmod 0755 $@.tmp
	mv $@.tmp $@

# The pages are read off the code (the parser, settings, hook events, schemas, mapping)
# and doc/man/*.md, so any change to the package may change them.
MAN_SOURCES := tools/mkman.py tools/mdroff.py tools/argspec.py etc/policyhook.conf \
	$(wildcard doc/man/*.md policyhook/*.py policyhook/cli/*.py)

$(MANPAGES): $(MAN_SOURCES)
	@mkdir -p build
	$(PYTHON) tools/mkman.py $(DRIVERS:%=--hook $(HOOKDIR)/%.d/$(NAME)) -o $@ $(notdir $@)

$(COMPLETION): tools/mkcompletion.py tools/argspec.py contrib/bash-completion/policyctl.in \
		policyhook/cli/parser.py
	@mkdir -p build
	$(PYTHON) tools/mkcompletion.py contrib/bash-completion/policyctl.in $@

install: check-prereqs-install install-python install-data install-cockpit
	@if [ -z "$(DESTDIR)" ]; then $(MAKE) --no-print-directory reload-libvirtd; fi

# Into a virtualenv (PYTHON's prefix is not its base prefix) without DESTDIR: pip
# installs into it, as usual. Otherwise the package is laid out in PYTHON_SITELIB, as a
# distribution package has it: with DESTDIR for a package build, without it into the
# system, under /usr/local (a distribution's python3 refuses a plain pip install,
# PEP 668; pip makes no such check with --root and --prefix or --target). It leaves out
# bytecode (the packager's business) and pip's own records (RECORD, REQUESTED,
# direct_url.json naming the build directory): pip does not manage it, and an older
# copy is replaced whole, as dpkg or rpm would (--ignore-installed: pip would try to
# uninstall it first and fail without a RECORD). PREFIX /usr (packages) gets pip's
# --root and --prefix, as packagers have always had it; any other PREFIX a --target
# build/site whose files are installed in PYTHON_SITELIB and BINDIR: pip's --prefix
# would follow Debian's posix_local scheme there (/usr/local/local/...).
PYTHON_IN_VENV = $(shell $(PYTHON) -c 'import sys; print(int(sys.prefix != sys.base_prefix))')
SITE_STAGE     := build/site

install-python:
	rm -rf build/lib build/bdist.*
ifeq ($(DESTDIR)$(PYTHON_IN_VENV),1)
	PIP_ROOT_USER_ACTION=ignore $(PYTHON) -m pip install --no-deps --no-build-isolation \
		--disable-pip-version-check -q .
else
	rm -rf "$(DESTDIR)$(PYTHON_SITELIB)/$(NAME)" "$(DESTDIR)$(PYTHON_SITELIB)/$(NAME)-"*.dist-info
ifeq ($(PREFIX),/usr)
	PIP_ROOT_USER_ACTION=ignore $(PYTHON_LAYOUT) $(PYTHON) -m pip install --no-deps \
		--no-build-isolation --disable-pip-version-check -q --no-compile --ignore-installed \
		--root "$(or $(DESTDIR),/)" --prefix "$(PREFIX)" .
	cd "$(DESTDIR)$(PYTHON_SITELIB)/$(NAME)-$(VERSION).dist-info" && rm -f direct_url.json RECORD REQUESTED
	@test -f "$(DESTDIR)$(BINDIR)/policyctl" || { echo "install-python: pip did not put \
	policyctl in $(BINDIR) (BINDIR must be PREFIX/bin)" >&2; exit 1; }
else
	rm -rf $(SITE_STAGE)
	PIP_ROOT_USER_ACTION=ignore $(PYTHON) -m pip install --no-deps --no-build-isolation \
		--disable-pip-version-check -q --no-compile --target $(SITE_STAGE) .
	cd $(SITE_STAGE)/$(NAME)-$(VERSION).dist-info && rm -f direct_url.json RECORD REQUESTED
	cd $(SITE_STAGE) && find $(NAME) $(NAME)-$(VERSION).dist-info -type d | while read -r dir; do \
		$(INSTALL) -dm 0755 "$(DESTDIR)$(PYTHON_SITELIB)/$$dir" || exit 1; done
	cd $(SITE_STAGE) && find $(NAME) $(NAME)-$(VERSION).dist-info -type f | while read -r file; do \
		$(INSTALL) -pm 0644 "$$file" "$(DESTDIR)$(PYTHON_SITELIB)/$$file" || exit 1; done
	$(INSTALL) -Dpm 0755 $(SITE_STAGE)/bin/policyctl "$(DESTDIR)$(BINDIR)/policyctl"
endif
	@test -n "$(DESTDIR)" || $(PYTHON) -c 'import sys; sys.exit("$(PYTHON_SITELIB)" not in sys.path)' \
		|| { echo "install-python: $(PYTHON) does not import from $(PYTHON_SITELIB); \
	pass PREFIX=/usr/local or PREFIX=$$($(PYTHON) -c 'import sys; print(sys.prefix)'), or use a virtualenv" >&2; exit 1; }
endif

# Everything but the Python package: the spec installs that with %pyproject_install
# where the Fedora macros exist, and calls this target for the rest.
install-data: build
	$(INSTALL) -Dpm 0755 $(HOOK) "$(DESTDIR)$(HOOKPROG)"
	for driver in $(DRIVERS); do \
		$(INSTALL) -dm 0755 "$(DESTDIR)$(HOOKDIR)/$$driver.d" && \
		ln -sfn "$(HOOKPROG)" "$(DESTDIR)$(HOOKDIR)/$$driver.d/$(NAME)" || exit 1; \
	done
	$(INSTALL) -dm 0755 "$(DESTDIR)$(SYSCONFDIR)/$(NAME)" "$(DESTDIR)$(SYSCONFDIR)/$(NAME)/domains"
	@if [ -e "$(DESTDIR)$(SYSCONFDIR)/$(NAME)/$(NAME).conf" ]; then \
		echo "kept $(DESTDIR)$(SYSCONFDIR)/$(NAME)/$(NAME).conf"; \
	else \
		echo "$(INSTALL) -pm 0644 etc/$(NAME).conf $(DESTDIR)$(SYSCONFDIR)/$(NAME)/$(NAME).conf"; \
		$(INSTALL) -pm 0644 etc/$(NAME).conf "$(DESTDIR)$(SYSCONFDIR)/$(NAME)/$(NAME).conf"; \
	fi
	@if [ -e "$(DESTDIR)$(LOGROTATEDIR)/$(NAME)" ]; then \
		echo "kept $(DESTDIR)$(LOGROTATEDIR)/$(NAME)"; \
	else \
		echo "$(INSTALL) -Dpm 0644 contrib/logrotate.d/$(NAME) $(DESTDIR)$(LOGROTATEDIR)/$(NAME)"; \
		$(INSTALL) -Dpm 0644 contrib/logrotate.d/$(NAME) "$(DESTDIR)$(LOGROTATEDIR)/$(NAME)"; \
	fi
	$(INSTALL) -Dpm 0644 contrib/tmpfiles.d/$(NAME).conf "$(DESTDIR)$(TMPFILESDIR)/$(NAME).conf"
	$(INSTALL) -dm 0755 "$(DESTDIR)$(RUNDIR)/$(NAME)" "$(DESTDIR)$(LOCALSTATEDIR)/log/$(NAME)" \
		"$(DESTDIR)$(LOCALSTATEDIR)/lib/$(NAME)"
	$(INSTALL) -Dpm 0644 $(UNIT) "$(DESTDIR)$(UNITDIR)/policyhook-watch.service"
	$(INSTALL) -Dpm 0644 build/policyctl.8 "$(DESTDIR)$(MANDIR)/man8/policyctl.8"
	$(INSTALL) -Dpm 0644 build/policyhook.conf.5 "$(DESTDIR)$(MANDIR)/man5/policyhook.conf.5"
	$(INSTALL) -Dpm 0644 build/policyhook.8 "$(DESTDIR)$(MANDIR)/man8/policyhook.8"
	$(INSTALL) -Dpm 0644 build/policyhook-policy.5 "$(DESTDIR)$(MANDIR)/man5/policyhook-policy.5"
	$(INSTALL) -Dpm 0644 $(COMPLETION) "$(DESTDIR)$(COMPLETIONDIR)/policyctl"
	$(INSTALL) -Dpm 0644 README.md "$(DESTDIR)$(DOCDIR)/README.md"

# The Cockpit page (contrib/cockpit), in Cockpit's package directory: plain files, no
# build. The packages ship it as cockpit-policyhook (doc/packaging.md).
COCKPIT_FILES := manifest.json index.html policyhook.js policyhook.css
install-cockpit:
	$(INSTALL) -dm 0755 "$(DESTDIR)$(COCKPITDIR)"
	$(INSTALL) -pm 0644 $(COCKPIT_FILES:%=contrib/cockpit/%) "$(DESTDIR)$(COCKPITDIR)/"

# Keeps /etc/policyhook (the admin's policy and settings) and the log.
uninstall:
	rm -f $(DRIVERS:%="$(DESTDIR)$(HOOKDIR)/%.d/$(NAME)") "$(DESTDIR)$(HOOKPROG)" \
		"$(DESTDIR)$(TMPFILESDIR)/$(NAME).conf" "$(DESTDIR)$(UNITDIR)/policyhook-watch.service" \
		"$(DESTDIR)$(MANDIR)/man8/policyctl.8" "$(DESTDIR)$(MANDIR)/man8/policyctl.8.gz" \
		"$(DESTDIR)$(MANDIR)/man5/policyhook.conf.5" "$(DESTDIR)$(MANDIR)/man5/policyhook.conf.5.gz" \
		"$(DESTDIR)$(COMPLETIONDIR)/policyctl" "$(DESTDIR)$(DOCDIR)/README.md"
	-rmdir "$(DESTDIR)$(DOCDIR)" 2>/dev/null
ifeq ($(DESTDIR)$(PYTHON_IN_VENV),1)
	-PIP_ROOT_USER_ACTION=ignore $(PYTHON) -m pip uninstall -y -q --disable-pip-version-check $(NAME)
else
	rm -rf "$(DESTDIR)$(PYTHON_SITELIB)/$(NAME)" "$(DESTDIR)$(PYTHON_SITELIB)/$(NAME)-"*.dist-info \
		"$(DESTDIR)$(BINDIR)/policyctl"
endif
	@if [ -z "$(DESTDIR)" ]; then $(MAKE) --no-print-directory reload-libvirtd; fi

# What install-data gained after uninstall's list was written (log rotation, the hook's
# and the policy files' pages); uninstall removes it first. An edited log rotation file
# goes too.
uninstall: uninstall-extras
uninstall-extras:
	rm -rf "$(DESTDIR)$(COCKPITDIR)"
	rm -f "$(DESTDIR)$(LOGROTATEDIR)/$(NAME)" \
		"$(DESTDIR)$(MANDIR)/man8/policyhook.8" "$(DESTDIR)$(MANDIR)/man8/policyhook.8.gz" \
		"$(DESTDIR)$(MANDIR)/man5/policyhook-policy.5" "$(DESTDIR)$(MANDIR)/man5/policyhook-policy.5.gz"

# libvirtd notices a new or removed hook only after a reload (doc/design.md "libvirt facts").
reload-libvirtd:
	@if [ -d /run/systemd/system ]; then \
		systemctl try-reload-or-restart libvirtd.service virtqemud.service \
			virtlxcd.service virtxend.service 2>/dev/null || true; \
	elif [ -s /run/libvirtd.pid ] && kill -0 "$$(cat /run/libvirtd.pid)" 2>/dev/null; then \
		kill -HUP "$$(cat /run/libvirtd.pid)"; echo "reloaded libvirtd (SIGHUP)"; \
	fi

test: check-prereqs-test
	./tests/run

unit:
	$(PYTHON) -m pytest -q -m "not e2e and not stress" tests

e2e:
	$(PYTHON) -m pytest -q -m "e2e and not stress" tests

# The check of the checks, after e2e (as root, where POLICYHOOK_TEST_DISPOSABLE_HOST=yes):
# the end-to-end tier run as on an admin's host leaves its domains and policy as they were.
e2e-foreign:
	$(PYTHON) -m pytest -q -rs -p no:cacheprovider tests/foreign

# Slow fault, fuzz and scale tests, some on the real daemon (root). CI runs them.
stress:
	$(PYTHON) -m pytest -q -m stress tests

# The unit tests against an installed tree (the spec's %check runs them there): a copy
# of what the tests read, whose policyhook package and hooks are the installed ones.
#   make check-tree DESTDIR=... && cd build/check-tree && python3 -m pytest -m "not e2e" tests
CHECK_TREE       := build/check-tree
CHECK_TREE_FILES := tests tools etc contrib doc debian Makefile pyproject.toml setup.cfg $(NAME).spec README.md LICENSE
check-tree:
	rm -rf $(CHECK_TREE)
	mkdir -p $(CHECK_TREE)/hooks
	cp -a $(wildcard $(CHECK_TREE_FILES)) $(CHECK_TREE)/
	ln -s "$(DESTDIR)$(PYTHON_SITELIB)/$(NAME)" $(CHECK_TREE)/$(NAME)
	for hook in $(NAME) $(DRIVERS); do \
		ln -s "$(DESTDIR)$(HOOKPROG)" $(CHECK_TREE)/hooks/$$hook || exit 1; done
	@found=$$(cd $(CHECK_TREE) && $(PYTHON) -c 'import os, policyhook; print(os.path.realpath(policyhook.__file__))') \
		&& case "$$found" in "$(DESTDIR)$(PYTHON_SITELIB)/"*) echo "$(CHECK_TREE): policyhook is $$found";; \
		*) echo "$(CHECK_TREE): policyhook is $$found, not under $(DESTDIR)$(PYTHON_SITELIB)" >&2; exit 1;; esac

# The end-to-end story on a host like the users' (systemd, cgroup v2, libvirt 11, the
# distribution's python3): a Debian 13 guest under QEMU, built and booted by
# scripts/vm-lab.sh, which installs this checkout there with make install. As root.
# Then the same guest as Xen's dom0 (--xen), with Xen booted with sched=credit (credit2,
# Xen's default, in a cpupool of that boot); e2e-vm-xen-credit2 boots it again with
# sched=credit2 for the tests that need the whole of Xen on credit2 (not in `make test`).
VM_PYTEST := /usr/bin/python3 -m pytest -p no:cacheprovider -rfE --durations=15
e2e-vm: e2e-vm-debian e2e-vm-xen

e2e-vm-debian:
	scripts/vm-lab.sh up
	scripts/vm-lab.sh run $(VM_PYTEST) tests/vm

# The Cockpit page (contrib/cockpit) in a headless Chromium on this machine, against
# Cockpit in the Debian guest that e2e-vm-debian left running (scripts/vm-lab.sh
# cockpit), as root; it keeps a screenshot in build/cockpit/. tests/run runs it before
# scripts/vm-lab.sh down: the guest's one boot.
e2e-vm-cockpit:
	$(PYTHON) -m pytest -p no:cacheprovider -rfE tests/cockpit

# Its failed tests run once more (tests/vm-xen/run.sh says why).
e2e-vm-xen:
	scripts/vm-lab.sh --xen up
	tests/vm-xen/run.sh $(VM_PYTEST) -- -m "not credit2" tests/vm-xen

e2e-vm-xen-credit2:
	scripts/vm-lab.sh --xen --sched credit2 up
	tests/vm-xen/run.sh $(VM_PYTEST) -- -m credit2 tests/vm-xen

# As root on Debian: set up a libvirtd, start a throwaway domain with a policy, show it.
demo:
	./scripts/demo.sh

# ruff everywhere; mypy on the typed pure core (the modules pyproject.toml's [tool.mypy] names).
lint:
	$(PYTHON) -m ruff check policyhook tests benchmarks scripts tools
	$(PYTHON) -m mypy

# The spec's Version must be the package's; a release tarball is built from git.
check-version:
	@spec=$$(sed -n 's/^Version:[[:space:]]*//p' $(NAME).spec); \
	if [ "$$spec" != "$(VERSION)" ]; then \
		echo "$(NAME).spec has Version $$spec, policyhook/__init__.py has $(VERSION): make them agree" >&2; \
		exit 1; fi

# Source0 is %{url}releases/NAME-VERSION.tar.gz: the tarball make dist writes.
SPEC_URL     = $(shell sed -n 's/^URL:[[:space:]]*//p' $(NAME).spec)
SPEC_SOURCE0 = $(shell sed -n 's/^Source0:[[:space:]]*//p' $(NAME).spec \
	| sed -e 's|%{url}|$(SPEC_URL)|; s|%{name}|$(NAME)|g; s|%{version}|$(VERSION)|g')
check-spec: check-version
	@if [ "$(notdir $(SPEC_SOURCE0))" != "$(notdir $(TARBALL))" ]; then \
		echo "$(NAME).spec: Source0 $(SPEC_SOURCE0) does not name $(notdir $(TARBALL)), the tarball make dist writes" >&2; \
		exit 1; fi

dist: check-spec
	@mkdir -p dist
	git archive --format=tar.gz --prefix=$(NAME)-$(VERSION)/ -o $(TARBALL) $(DIST_REF)
	@if [ "$(DIST_REF)" = HEAD ] && [ -n "$$(git status --porcelain --untracked-files=no)" ]; then \
		echo "note: $(TARBALL) is HEAD ($$(git rev-parse --short HEAD)); uncommitted changes are not in it"; fi
	@echo "wrote $(TARBALL) (the spec's Source0: $(SPEC_SOURCE0))"

rpm: check-prereqs-rpm dist
	$(RPMBUILD) -ta $(RPMBUILD_FLAGS) $(RPMBUILD_ARGS) --define "_topdir $(RPMTOPDIR)" $(TARBALL)

srpm: check-prereqs-srpm dist
	$(RPMBUILD) -ts $(RPMBUILD_FLAGS) $(RPMBUILD_ARGS) --define "_topdir $(RPMTOPDIR)" $(TARBALL)

# make deb: dpkg-buildpackage -b on a copy of the release tree (git archive of DIST_REF)
# in build/deb, which gets the .deb; the work tree stays clean. DEB_BUILD_OPTIONS=nocheck
# skips the unit tests; DPKG_BUILDPACKAGE_ARGS adds to the command line.
DEBDIR                 ?= build/deb
DPKG_BUILDPACKAGE_ARGS ?=
# The distribution's tools only: pybuild runs `python3.X` from PATH, which a pyenv or a
# virtualenv on PATH would otherwise provide.
DEB_PATH               ?= /usr/sbin:/usr/bin:/sbin:/bin
DEB_VERSION = $(shell sed -n '1s/^$(NAME) (\(.*\)) .*/\1/p' debian/changelog)

# debian/changelog's upstream version must be the package's, as the spec's Version is.
check-debian:
	@if [ "$(DEB_VERSION:%-$(lastword $(subst -, ,$(DEB_VERSION)))=%)" != "$(VERSION)" ]; then \
		echo "debian/changelog has version $(DEB_VERSION), policyhook/__init__.py has $(VERSION): \
	add a changelog entry $(VERSION)-1 (dch -v $(VERSION)-1)" >&2; exit 1; fi

deb: check-debian
	rm -rf $(DEBDIR)
	mkdir -p $(DEBDIR)
	git archive --format=tar --prefix=$(NAME)-$(VERSION)/ $(DIST_REF) | tar -x -C $(DEBDIR)
	@if [ "$(DIST_REF)" = HEAD ] && [ -n "$$(git status --porcelain --untracked-files=no)" ]; then \
		echo "note: $(DEBDIR) is built from HEAD ($$(git rev-parse --short HEAD)); uncommitted changes are not in it"; fi
	cd $(DEBDIR)/$(NAME)-$(VERSION) && env PATH=$(DEB_PATH) dpkg-buildpackage -us -uc -b $(DPKG_BUILDPACKAGE_ARGS)
	@echo "wrote $$(ls $(DEBDIR)/*.deb)"

clean:
	rm -rf build dist *.egg-info
