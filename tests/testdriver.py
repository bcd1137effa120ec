"""libvirt's test driver with our own host XML (tests/data/testhost.xml), and a thin
wrapper whose domains record the pin and scheduler calls and carry them out the way the
test driver can (it refuses pinVcpuFlags with AFFECT_LIVE and every flagged scheduler
call: doc/design.md "libvirt facts")."""

import os

from unit_helpers import DATA

URI = "test://" + os.path.join(DATA, "testhost.xml")


class RecordingDomain:
    """A test-driver domain whose pin and scheduler calls are recorded."""

    def __init__(self, dom, calls, sched):
        self._dom = dom
        self._calls = calls
        self._sched = sched

    def __getattr__(self, attr):
        return getattr(self._dom, attr)

    def pinVcpuFlags(self, vcpu, cpumap, flags):
        self._calls.append((self._dom.name(), "pinVcpuFlags", vcpu, tuple(cpumap), flags))
        return self._dom.pinVcpu(vcpu, cpumap)

    def pinEmulator(self, cpumap, flags):
        self._calls.append((self._dom.name(), "pinEmulator", tuple(cpumap), flags))
        return self._dom.pinEmulator(cpumap, flags)

    def pinIOThread(self, iothread, cpumap, flags):
        self._calls.append((self._dom.name(), "pinIOThread", iothread, tuple(cpumap), flags))
        return self._dom.pinIOThread(iothread, cpumap, flags)

    def setSchedulerParametersFlags(self, params, flags):
        self._calls.append((self._dom.name(), "setSchedulerParametersFlags", dict(params), flags))
        self._sched.setdefault(self._dom.name(), {}).update(params)
        return 0

    def schedulerParametersFlags(self, flags):
        return dict(self._sched.get(self._dom.name(), {}))


class RecordingConn:
    """The real test-driver connection; domains come back as RecordingDomain."""

    def __init__(self, conn):
        self._conn = conn
        self.calls = []
        self.sched = {}

    def __getattr__(self, attr):
        return getattr(self._conn, attr)

    def lookupByName(self, name):
        return RecordingDomain(self._conn.lookupByName(name), self.calls, self.sched)

    def lookupByID(self, id):
        return RecordingDomain(self._conn.lookupByID(id), self.calls, self.sched)

    def lookupByUUIDString(self, uuid):
        return RecordingDomain(self._conn.lookupByUUIDString(uuid), self.calls, self.sched)

    def listAllDomains(self, flags=0):
        return [RecordingDomain(d, self.calls, self.sched) for d in self._conn.listAllDomains(flags)]
