"""The watcher's node_exporter textfile: every figure with its HELP and TYPE lines."""

from policyhook.watch import Counters


def test_metrics_text():
    c = Counters()
    c.domains, c.in_force, c.drifted, c.repairs, c.applied, c.errors = 3, 2, 1, 4, 1, 0
    c.last_reconcile = 1764600000.5
    lines = c.text().splitlines()
    assert lines[:3] == ["# HELP policyhook_domains Running domains with a policy",
                         "# TYPE policyhook_domains gauge", "policyhook_domains 3"]
    values = dict(line.split() for line in lines if not line.startswith("#"))
    assert values == {"policyhook_domains": "3", "policyhook_domains_in_force": "2",
                      "policyhook_domains_drifted": "1", "policyhook_repairs_total": "4",
                      "policyhook_applied_total": "1", "policyhook_errors_total": "0",
                      "policyhook_last_reconcile_timestamp_seconds": "1764600000.5"}
    types = {line.split()[2]: line.split()[3] for line in lines if line.startswith("# TYPE")}
    assert all(t == ("counter" if n.endswith("_total") else "gauge") for n, t in types.items())
