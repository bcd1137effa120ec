# policyhook: build, install, test. Directories are overridable, as packagers expect:
#   make install DESTDIR=%{buildroot} PREFIX=/usr SYSCONFDIR=/etc PYTHON=/usr/bin/python3
PYTHON      ?= python3
PREFIX      ?= /usr
SYSCONFDIR  ?= /etc
BINDIR      ?= $(PREFIX)/bin
DATADIR     ?= $(PREFIX)/share
MANDIR      ?= $(DATADIR)/man
HOOKDIR     ?= $(SYSCONFDIR)/libvirt/hooks
DESTDIR     ?=

# The hook's shebang names the interpreter by absolute path: libvirtd cuts PATH.
PYTHON_ABS  := $(shell $(PYTHON) -c 'import sys; print(sys.executable)')

.PHONY: all build install install-python install-data uninstall reload-libvirtd test unit e2e lint clean

all: build

build: build/policyhook-qemu

build/policyhook-%: hooks/%
	@mkdir -p build
	{ echo '#!$(PYTHON_ABS) -I'; tail -n +2 $<; } > $@
	chmod 0755 $@

install: install-python install-data
	@if [ -z "$(DESTDIR)" ]; then $(MAKE) --no-print-directory reload-libvirtd; fi

install-python:
	$(PYTHON) -m pip install --no-deps --no-build-isolation --disable-pip-version-check -q \
		$(if $(DESTDIR),--root "$(DESTDIR)") .

install-data: build
	install -Dpm 0755 build/policyhook-qemu "$(DESTDIR)$(HOOKDIR)/qemu.d/policyhook"
	install -dm 0755 "$(DESTDIR)$(SYSCONFDIR)/policyhook/domains"
	@if [ ! -e "$(DESTDIR)$(SYSCONFDIR)/policyhook/policyhook.conf" ]; then \
		install -Dpm 0644 etc/policyhook.conf "$(DESTDIR)$(SYSCONFDIR)/policyhook/policyhook.conf"; fi

uninstall:
	rm -f "$(DESTDIR)$(HOOKDIR)/qemu.d/policyhook"
	-$(PYTHON) -m pip uninstall -y -q policyhook
	@if [ -z "$(DESTDIR)" ]; then $(MAKE) --no-print-directory reload-libvirtd; fi

# libvirtd notices a new or removed hook only after a reload (libvirt-lab.md 5).
reload-libvirtd:
	@if [ -d /run/systemd/system ]; then \
		systemctl try-reload-or-restart libvirtd.service virtqemud.service 2>/dev/null || true; \
	elif [ -s /run/libvirtd.pid ] && kill -0 "$$(cat /run/libvirtd.pid)" 2>/dev/null; then \
		kill -HUP "$$(cat /run/libvirtd.pid)"; echo "reloaded libvirtd (SIGHUP)"; \
	fi

test:
	./tests/run

unit:
	$(PYTHON) -m pytest -q -m "not e2e and not stress" tests

e2e:
	$(PYTHON) -m pytest -q -m e2e tests

lint:
	$(PYTHON) -m ruff check policyhook tests benchmarks

clean:
	rm -rf build dist *.egg-info
