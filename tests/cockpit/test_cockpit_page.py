"""The Cockpit page in Chromium against Cockpit and policyctl in the lab guest: the grid
is the guest's topology, a running domain's occupancy and pins are where policyctl
says, an edit made in the page is what policyctl then reads back, and a refused one
shows policyctl's own message."""

import json

from conftest import DOMAIN, SCREENSHOT, SHOTS, policyctl_json

# What the page drew: every CPU cell with its place in the grid, as the DOM has it.
GRID = """JSON.stringify(Array.from(document.querySelectorAll('.cpu')).map(c => ({
    cpu: Number(c.dataset.cpu),
    node: Number(c.closest('.node').dataset.node),
    socket: Number(c.closest('.socket').dataset.socket),
    core: Number(c.closest('.core').dataset.core),
    occupied: c.dataset.occupied,
    pinned: c.dataset.pinned,
    colour: getComputedStyle(c).borderTopColor
})))"""


def drawn(page):
    return {c["cpu"]: c for c in json.loads(page.js(GRID))}


def submit(page, form, values):
    """Fill the form's fields and submit it as a click on its button would; the page's
    generation before."""
    before = int(page.js("document.body.dataset.generation"))
    script = "".join("document.getElementById(%s).value = %s;" % (json.dumps(k), json.dumps(v))
                     for k, v in values.items())
    page.js(script + "document.getElementById(%s).querySelector('button[type=submit]').click(); true"
            % json.dumps(form))
    return before


def redrawn(page, before):
    """Wait until the page has read everything again after a change."""
    page.wait("Number(document.body.dataset.generation) > %d && document.body.dataset.state === 'ready'"
              % before, "the page to read the host again after the change")


def message(page):
    """[its kind (ok, error), its text] of the page's message."""
    return page.js("(m => [m.className, m.textContent])(document.getElementById('message'))")


def row(page, name):
    """The text of the domain's row in the table."""
    return page.js("document.querySelector('#domains-table tr[data-domain=%s]').textContent"
                   % json.dumps(name))


def test_the_grid_is_the_guests_cpus_on_two_nodes_with_sibling_pairs(page):
    cells = drawn(page)
    assert sorted(cells) == list(range(8))
    nodes = {}
    for c in cells.values():
        nodes.setdefault(c["node"], set()).add(c["cpu"])
    assert sorted(nodes) == [0, 1] and all(len(cpus) == 4 for cpus in nodes.values())
    cores = {}
    for c in cells.values():
        cores.setdefault((c["node"], c["socket"], c["core"]), []).append(c["cpu"])
    assert len(cores) == 4 and all(len(threads) == 2 for threads in cores.values()), cores
    # Each pair is what policyctl occupancy --json (the kernel's topology) calls a core.
    doc = policyctl_json("occupancy")
    expected = {(n["node"], s["socket"], k["core"]): [c["cpu"] for c in k["cpus"]]
                for n in doc["nodes"] for s in n["sockets"] for k in s["cores"]}
    assert cores == expected


def test_a_running_domains_occupancy_and_pins_are_where_policyctl_says(page):
    doc = policyctl_json("occupancy")
    cells = drawn(page)
    said = {c["cpu"]: c for n in doc["nodes"] for s in n["sockets"] for k in s["cores"] for c in k["cpus"]}
    for cpu, c in said.items():
        assert cells[cpu]["occupied"] == ",".join(sorted(c["occupied_by"])), cpu
        assert cells[cpu]["pinned"] == ",".join(c["pinned"]), cpu
    # The domain made for the test: CPUs 6-7 are its own, its vCPUs run there.
    assert [cpu for cpu, c in said.items() if DOMAIN in c["occupied_by"]] == [6, 7]
    assert {6, 7} <= {cpu for cpu, c in said.items() if DOMAIN in c["pinned"]}
    # One colour for its set, none for the open CPUs.
    assert cells[6]["colour"] == cells[7]["colour"] != cells[0]["colour"]
    text = row(page, DOMAIN)
    assert "running" in text and "occupies 6-7" in text and "vCPU 0 → 6" in text and "in force" in text, text


def test_a_weight_set_in_the_page_is_what_cpupolicy_reads_back(page):
    before = submit(page, "form-weight", {"weight-domain": DOMAIN, "weight-value": "512"})
    redrawn(page, before)
    assert message(page) == ["ok", "Weight of %s: saved and applied to the running domain" % DOMAIN]
    doc = policyctl_json("cpupolicy", DOMAIN)
    assert doc["weight"] == 512 and doc["live"]["weight"] == 512 and doc["drift"] == []
    assert "weight 512" in row(page, DOMAIN)
    SHOTS.append(page.screenshot(SCREENSHOT))


def test_an_invalid_weight_shows_policyctls_message_and_changes_nothing(page):
    before = submit(page, "form-weight", {"weight-domain": DOMAIN, "weight-value": "0"})
    redrawn(page, before)
    assert message(page) == ["error", "Error: invalid weight 0: must be 1..65535"]
    assert policyctl_json("cpupolicy", DOMAIN)["weight"] == 512
