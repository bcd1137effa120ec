"""The registry: the only module that reads and writes policy files.

Two ways in, over the same files:
- `Registry` (policyctl, the Python API, the applier, the watcher): one way to change
  what is stored, `transact(fn)`: the lock taken, what `fn` asks for read (a Snapshot),
  `fn(snapshot)` -> Writes (pure: no libvirt, systemd or host call can happen inside,
  since whatever it needs from them is asked before), the writes checked
  against the JSON Schemas (schema.conforms; jsonschema judges a refusal) and saved
  atomically, the lock released. `read(fn)` holds the lock only
  while reading. The lock itself is private to this module: no caller holds it around
  code of its own. Besides the policy files, the transaction covers the other records
  written under the registry lock: a domain's originals (originals.py), the host
  isolation record (isolation.py) and the runtime state (state.py).
- `read_domain` / `read_host` (the hook): the strict standard-library loader.
"""

import os

from . import jsondoc, safeio
from .errors import REGISTRY, PolicyError, registry_error
from .locking import FlockLock
from .model import HostPolicy, domain_from_doc, host_from_doc
from .names import name_problem
from .results import Writes  # noqa: F401 - transact()'s record, importable from here too

# ---- reading, shared by the hook and the registry --------------------------


def _load(path, loader):
    data = safeio.read_file(path, jsondoc.MAX_BYTES)
    if data is None:
        return None
    try:
        return loader(jsondoc.parse(data))
    except PolicyError as e:
        raise registry_error(path, "%s; fix it or run 'policyctl check'" % e) from None


def read_domain(paths, name):
    """The stored DomainPolicy of `name`, or None (also for a name no policy file can
    carry: it has none). Strict loader; no jsonschema."""
    if name_problem(name) is not None:
        return None
    safeio.check_dir(paths.etc)
    safeio.check_dir(paths.domains)
    return _read_domain_file(paths, name)


def _read_domain_file(paths, name):
    """read_domain() once its directories are checked."""
    path = paths.domain_file(name)
    policy = _load(path, domain_from_doc)
    if policy is not None and policy.domain != name:
        raise registry_error(path, "holds the policy of %r, not %r" % (policy.domain, name))
    return policy


def read_host(paths):
    """The HostPolicy (empty when host.json does not exist). Strict loader."""
    safeio.check_dir(paths.etc)
    return _load(paths.host_file, host_from_doc) or HostPolicy()


# ---- the registry proper ----------------------------------------------------


class Snapshot:
    """What a transaction reads under the lock, each read on first use and kept: the
    host policy, domain policies (the strict loader: tests/test_schema_agreement.py
    holds it to the schema), originals, the isolation record, runtime state."""

    def __init__(self, paths):
        self.paths = paths
        self._host = None
        self._domains = {}
        self._all = None
        self._originals = {}
        self._isolation = None
        self._state = {}

    def host(self):
        """The HostPolicy (empty when host.json does not exist)."""
        if self._host is None:
            self._host = read_host(self.paths)
        return self._host

    def domain(self, name):
        """The stored DomainPolicy of `name`, or None."""
        if name not in self._domains:
            self._domains[name] = read_domain(self.paths, name)
        return self._domains[name]

    def policies(self):
        """Every stored policy, sorted by name (Registry.policies)."""
        if self._all is None:
            self._all = Registry(self.paths).policies()
            self._domains.update((p.domain, p) for p in self._all)
        return self._all

    def originals(self, name, uuid=None):
        """The originals of `name` (originals.load), or None."""
        if (name, uuid) not in self._originals:
            from . import originals

            self._originals[(name, uuid)] = originals.load(self.paths, name, uuid)
        return self._originals[(name, uuid)]

    def isolation(self):
        """The host isolation record (isolation.load): {"saved": ..., "applied": ...}."""
        if self._isolation is None:
            from . import isolation

            self._isolation = isolation.load(self.paths)
        return self._isolation

    def state_names(self):
        """The domains with runtime state (state.names): those running, once occupancy
        exists."""
        from . import state

        return state.names(self.paths)

    def state(self, name):
        """The runtime state of `name` (state.read), or None."""
        if name not in self._state:
            from . import state

            self._state[name] = state.read(self.paths, name)
        return self._state[name]


class Registry:
    """Policy files under `paths`, checked against the schemas, changed only by transact().

    `lock(path, timeout)` makes the registry lock (a context manager): locking.FlockLock
    by default (the hook's own, an flock on the same file), or one a test instruments."""

    def __init__(self, paths, lock_timeout=10.0, lock=None):
        self.paths = paths
        self.lock_timeout = lock_timeout
        self._make_lock = lock or FlockLock

    def _lock(self):
        safeio.ensure_dir(self.paths.run)
        return self._make_lock(self.paths.lock, self.lock_timeout)

    def transact(self, fn):
        """The one way to change what is stored. Under the lock: `fn(Snapshot)` returns
        Writes (or raises PolicyError: nothing is saved); every policy it writes is
        validated before the first is saved. Returns Writes.result.

        `fn` must not call libvirt, systemd or the host: what it needs from them is
        asked before. Writers (policyctl, the applier, the watcher) wait on this lock
        and the hook gives up on it after [hook] lock_timeout."""
        with self._lock():
            writes = fn(Snapshot(self.paths))
            if writes is None:
                return None
            self._write(writes)
        return writes.result

    def read(self, fn):
        """`fn(Snapshot)` under the lock, for reads that must not see a half-done
        transaction; nothing is saved. Returns what fn returns."""
        with self._lock():
            return fn(Snapshot(self.paths))

    def _write(self, writes):
        # Every policy validated before the first is saved: a refusal leaves the files
        # as they were.
        for policy in writes.domains:
            if not policy.is_empty():
                self._validate(self.paths.domain_file(policy.domain), policy.to_doc(), _schemas()[0])
        if writes.host is not None:
            self._validate(self.paths.host_file, writes.host.to_doc(), _schemas()[1])
        for policy in writes.domains:
            self._save(policy)
        if writes.host is not None:
            self._save_host(writes.host)
        for name in writes.remove:
            safeio.remove(self.paths.domain_file(name))
        if writes.originals:
            from . import originals

            for record in writes.originals:
                originals.save(self.paths, record)
        if writes.isolation is not None:
            from . import isolation

            isolation.save(self.paths, writes.isolation)
        if writes.housekeeping is not None:
            from . import quietcpus

            quietcpus.save(self.paths, writes.housekeeping)
        if writes.state:
            from . import state

            for name, fields in sorted(writes.state.items()):
                state.update(self.paths, name, **fields)

    def _validate(self, path, doc, schema):
        from .schema import conforms, problems

        if conforms(doc, schema):
            return
        found = problems(doc, schema)   # jsonschema: the judge, and the words
        if found:
            raise registry_error(path, found[0])

    def load(self, name):
        """The stored policy of `name`, or None."""
        policy = read_domain(self.paths, name)
        if policy is not None:
            self._validate(self.paths.domain_file(name), policy.to_doc(), _schemas()[0])
        return policy

    def load_host(self):
        return read_host(self.paths)

    def _save(self, policy):
        """Write (or, when empty, remove) a domain's policy; under the lock."""
        path = self.paths.domain_file(policy.domain)
        if policy.is_empty():
            return safeio.remove(path)
        safeio.ensure_dir(self.paths.domains)
        safeio.write_atomic(path, jsondoc.dumps(policy.to_doc()))
        return True

    def _save_host(self, host):
        safeio.ensure_dir(self.paths.etc)
        if host.is_empty():
            return safeio.remove(self.paths.host_file)
        safeio.write_atomic(self.paths.host_file, jsondoc.dumps(host.to_doc()))
        return True

    def policies(self):
        """Every stored policy, sorted by name, each file read once.

        The strict loader, not jsonschema: it accepts exactly what the schema accepts
        (tests/test_schema_agreement.py), and at 10,000 domains jsonschema alone takes
        seconds. The directories are checked once, not per file."""
        safeio.check_dir(self.paths.etc)
        found = (_read_domain_file(self.paths, name) for name in self.names())
        return [policy for policy in found if policy is not None]  # None: removed meanwhile

    def readable(self):
        """(every policy that can be read, sorted by name; one line per file that cannot):
        a broken file hides no other."""
        safeio.check_dir(self.paths.etc)
        found, problems = [], []
        for name in self.names():
            try:
                policy = _read_domain_file(self.paths, name)
            except PolicyError as e:
                problems.append(str(e))
                continue
            if policy is not None:
                found.append(policy)
        return found, problems

    def listing(self):
        """([(policy, CPUs it occupies)] of every readable policy, [problem] of each file
        that cannot be read): one broken file hides nothing else (`policyctl list`)."""
        try:
            host = self.load_host()
        except PolicyError as e:
            if e.code != REGISTRY:
                raise
            host, problems = None, [str(e)]
        else:
            problems = []
        policies, broken = self.readable()
        return [(p, host.occupies(p.domain) if host else []) for p in policies], problems + broken

    def names(self):
        """Names of the domains with a policy file, sorted."""
        if not safeio.check_dir(self.paths.domains):
            return []
        found = []
        for entry in os.listdir(self.paths.domains):
            if entry.endswith(".json") and not entry.startswith("."):
                name = entry[:-len(".json")]
                if name_problem(name) is None:
                    found.append(name)
        return sorted(found)

    def check(self):
        """Every problem in the registry, one line each: 'FILE: problem'.

        Each file is read once and given to the strict loader first: a document it
        accepts, jsonschema accepts too (tests/test_schema_agreement.py holds the two
        to that). jsonschema, imported only then, lists every problem of a document the
        loader refuses; should the two ever disagree, the loader's refusal is reported,
        since the hook would refuse the file."""
        domain_schema, host_schema = _schemas()
        found = []
        for directory in (self.paths.etc, self.paths.domains):
            try:
                safeio.check_dir(directory)
            except PolicyError as e:
                found.append(str(e))
        if found:
            return found
        files = [(self.paths.host_file, host_schema, host_from_doc, None)]
        if os.path.isdir(self.paths.domains):
            for entry in sorted(os.listdir(self.paths.domains)):
                path = os.path.join(self.paths.domains, entry)
                # A name with a newline or other control character is shown escaped,
                # so that every problem stays on one line.
                shown = path if entry.isprintable() else os.path.join(self.paths.domains, repr(entry))
                if entry.startswith("."):
                    continue
                if not entry.endswith(".json"):
                    found.append("%s: not a policy file (names end in .json)" % shown)
                    continue
                name = entry[:-len(".json")]
                problem = name_problem(name)
                if problem:
                    found.append("%s: file name is not a valid domain name: %s" % (shown, problem))
                    continue
                files.append((path, domain_schema, domain_from_doc, name))
        for path, schema, loader, name in files:
            try:
                data = safeio.read_file(path, jsondoc.MAX_BYTES)
                if data is None:
                    continue
                doc = jsondoc.parse(data)
            except PolicyError as e:
                found.append(str(e) if e.code == REGISTRY else "%s: %s" % (path, e))
                continue
            try:
                loader(doc)
                errors = []
            except PolicyError as e:
                from .schema import problems

                errors = problems(doc, schema) or [str(e)]
            found.extend("%s: %s" % (path, p) for p in errors)
            if not errors and name is not None and doc["domain"] != name:
                found.append("%s: $.domain: holds the policy of %r, not %r"
                             % (path, doc["domain"], name))
        return found


def _schemas():
    from .schema import DOMAIN_SCHEMA, HOST_SCHEMA
    return DOMAIN_SCHEMA, HOST_SCHEMA
