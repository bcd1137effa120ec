/* policyhook's Cockpit page. Plain JavaScript on Cockpit's own cockpit.js: no build step.
 *
 * Every value shown comes from `policyctl ... --json` and every change is a policyctl
 * command, run through cockpit.spawn (as the superuser where it changes something), so
 * the page checks nothing policyctl does not: a refused change shows policyctl's own
 * message. After each change the whole picture is read again.
 *
 * Reads: occupancy --json (the grid), list --json and cpupolicy --json per domain (the
 * table), verify --json (its result). Text from policyctl goes into the page as text
 * (textContent), never as markup.
 */
(function () {
    "use strict";

    const POLICYCTL = "policyctl";

    // Colours of the occupancy sets, in the order the sets first appear on the grid.
    const PALETTE = ["#2b6cb0", "#c05621", "#2f855a", "#805ad5", "#b83280", "#2c7a7b", "#975a16", "#4a5568"];

    let generation = 0;         // how many times the picture was drawn (the tests wait on it)
    let selected = new Set();   // CPUs clicked on the grid

    // ---- policyctl ------------------------------------------------------------------

    /* Run policyctl with `args`; resolves {ok, out, err, code}: its standard output, its
     * standard error (policyctl's one-line messages: on failure the error, on success any
     * warnings, where cockpit.js hands them over) and its exit status. */
    function policyctl(args, change) {
        return new Promise(function (resolve) {
            cockpit.spawn([POLICYCTL].concat(args), { superuser: change ? "require" : "try", err: "message" })
                .then(function (out, message) {
                    resolve({ ok: true, out: out, err: (message || "").trim(), code: 0 });
                }, function (ex, out) {
                    let err = (ex && (ex.message || ex.problem)) || String(ex);
                    if (ex && ex.problem === "not-found")
                        err = "policyctl is not installed on this host (the policyhook package)";
                    resolve({ ok: false, out: out || "", err: err.trim(), code: ex ? ex.exit_status : null });
                });
        });
    }

    function parse(result) {
        if (!result.out)
            return null;
        try {
            return JSON.parse(result.out);
        } catch (e) {
            return null;
        }
    }

    // ---- small helpers --------------------------------------------------------------

    function el(tag, attrs, children) {
        const node = document.createElement(tag);
        for (const [key, value] of Object.entries(attrs || {})) {
            if (key === "text")
                node.textContent = value;
            else if (key === "class")
                node.className = value;
            else if (key.startsWith("data-"))
                node.setAttribute(key, value);
            else
                node[key] = value;
        }
        for (const child of children || [])
            if (child)
                node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
        return node;
    }

    function $(id) {
        return document.getElementById(id);
    }

    /* {0, 1, 4, ...} from a cpulist such as "0-1,4"; a list of numbers is taken as is. */
    function cpuSet(value) {
        const found = new Set();
        if (Array.isArray(value)) {
            value.forEach(function (c) { found.add(Number(c)) });
            return found;
        }
        for (const part of String(value || "").split(",")) {
            if (!part.trim())
                continue;
            const [lo, hi] = part.split("-").map(Number);
            for (let c = lo; c <= (hi === undefined ? lo : hi); c++)
                found.add(c);
        }
        return found;
    }

    /* "0-3,6" from a set of numbers. */
    function cpuList(set) {
        const sorted = Array.from(set).sort(function (a, b) { return a - b });
        const parts = [];
        for (let i = 0; i < sorted.length; i++) {
            let j = i;
            while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1)
                j++;
            parts.push(j > i ? sorted[i] + "-" + sorted[j] : String(sorted[i]));
            i = j;
        }
        return parts.join(",");
    }

    function say(kind, text) {
        const box = $("message");
        box.className = kind;
        box.textContent = text;
        box.hidden = !text;
    }

    // ---- the grid ---------------------------------------------------------------------

    function setKey(cpu) {
        return cpu.occupied_by.slice().sort().join(",");
    }

    /* The reserved CPUs ([occupancy] reserved), where occupancy --json reports them: a
     * top-level "reserved" (a cpulist or a list) or "reserved": true on a CPU. */
    function reservedCpus(doc) {
        const found = cpuSet(doc.reserved || "");
        for (const cpu of allCpus(doc))
            if (cpu.reserved === true)
                found.add(cpu.cpu);
        return found;
    }

    function allCpus(doc) {
        const cpus = [];
        for (const node of doc.nodes)
            for (const socket of node.sockets)
                for (const core of socket.cores)
                    for (const cpu of core.cpus)
                        cpus.push(cpu);
        return cpus;
    }

    function drawGrid(doc) {
        const grid = $("grid");
        const legend = $("legend");
        grid.textContent = "";
        legend.textContent = "";
        if (!doc) {
            grid.appendChild(el("p", { class: "empty", text: "No picture of the host: see the message above." }));
            return;
        }
        const colours = new Map();
        for (const cpu of allCpus(doc)) {
            const key = setKey(cpu);
            if (key && !colours.has(key))
                colours.set(key, PALETTE[colours.size % PALETTE.length]);
        }
        const reserved = reservedCpus(doc);
        const housekeeping = doc.housekeeping === true;

        for (const node of doc.nodes) {
            const nodeBox = el("div", { class: "node", "data-node": node.node }, [
                el("h3", { text: "NUMA node " + node.node }, [el("span", { class: "cpus", text: " CPUs " + node.cpus })])
            ]);
            for (const socket of node.sockets) {
                const socketBox = el("div", { class: "socket", "data-socket": socket.socket }, [
                    el("div", { class: "label", text: "Socket " + socket.socket })
                ]);
                const cores = el("div", { class: "cores" });
                for (const core of socket.cores) {
                    const coreBox = el("div", { class: "core", "data-core": core.core }, [
                        el("div", { class: "label", text: "Core " + core.core })
                    ]);
                    const threads = el("div", { class: "threads" });
                    for (const cpu of core.cpus)
                        threads.appendChild(drawCpu(cpu, colours, reserved.has(cpu.cpu), housekeeping, doc.asked_libvirt));
                    coreBox.appendChild(threads);
                    cores.appendChild(coreBox);
                }
                socketBox.appendChild(cores);
                nodeBox.appendChild(socketBox);
            }
            grid.appendChild(nodeBox);
        }

        for (const [key, colour] of colours) {
            const swatch = el("span", { class: "swatch" });
            swatch.style.setProperty("background-color", colour);
            legend.appendChild(el("span", { class: "legend-item", "data-set": key }, [swatch, "occupied by " + key]));
        }
        const open = el("span", { class: "swatch open" });
        legend.appendChild(el("span", { class: "legend-item" }, [open, "open to every domain"]));
        if (reserved.size)
            legend.appendChild(el("span", { class: "legend-item" }, [el("span", { class: "badge reserved", text: "reserved" }),
                "kept for the host ([occupancy] reserved)"]));
        if (housekeeping)
            legend.appendChild(el("span", { class: "legend-item" }, [el("span", { class: "badge housekeeping", text: "host" }),
                "the host's interrupts and kernel work ([occupancy] housekeeping)"]));
        if (!doc.asked_libvirt)
            legend.appendChild(el("span", { class: "legend-item warning", text: "libvirt did not answer: pins of running domains unknown" }));
    }

    function drawCpu(cpu, colours, reserved, housekeeping, asked) {
        const key = setKey(cpu);
        const box = el("div", {
            class: "cpu" + (key ? " occupied" : " open") + (selected.has(cpu.cpu) ? " selected" : ""),
            "data-cpu": cpu.cpu,
            "data-occupied": key,
            "data-pinned": cpu.pinned.join(","),
            tabIndex: 0,
            title: "CPU " + cpu.cpu + ": click to select it for the forms"
        });
        if (key)
            box.style.setProperty("--set-colour", colours.get(key));
        box.appendChild(el("div", { class: "cpu-id", text: "CPU " + cpu.cpu }));
        box.appendChild(el("div", { class: "cpu-set", text: key ? key.split(",").join(", ") : "open" }));
        if (asked)
            box.appendChild(el("div", { class: "cpu-pinned", text: cpu.pinned.length ? "pinned: " + cpu.pinned.join(", ") : "no pins" }));
        const badges = el("div", { class: "badges" });
        if (reserved || cpu.reserved === true)
            badges.appendChild(el("span", { class: "badge reserved", text: "reserved" }));
        if (housekeeping && !key)
            badges.appendChild(el("span", { class: "badge housekeeping", text: "host" }));
        const irqs = cpu.managed_irqs || [];
        if (irqs.length)
            badges.appendChild(el("span", {
                class: "badge irqs",
                text: irqs.length + " IRQ" + (irqs.length > 1 ? "s" : ""),
                title: "kernel-managed IRQs that stay: " + irqs.map(function (i) { return i.irq + (i.name ? " " + i.name : "") }).join(", ")
            }));
        box.appendChild(badges);
        box.addEventListener("click", function () { toggle(cpu.cpu) });
        box.addEventListener("keydown", function (event) {
            if (event.key === "Enter" || event.key === " ") {
                event.preventDefault();
                toggle(cpu.cpu);
            }
        });
        return box;
    }

    function toggle(cpu) {
        if (selected.has(cpu))
            selected.delete(cpu);
        else
            selected.add(cpu);
        for (const box of document.querySelectorAll(".cpu"))
            box.classList.toggle("selected", selected.has(Number(box.getAttribute("data-cpu"))));
        const list = cpuList(selected);
        $("pin-cpus").value = list;
        $("occupy-cpus").value = list;
    }

    // ---- the domains ------------------------------------------------------------------

    function pinLines(doc) {
        const lines = [];
        for (const [vcpu, cpus] of Object.entries(doc.vcpupin || {}))
            lines.push("vCPU " + vcpu + " → " + cpus);
        if (doc.emulatorpin)
            lines.push("emulator → " + doc.emulatorpin);
        for (const [id, cpus] of Object.entries(doc.iothreadpin || {}))
            lines.push("IOThread " + id + " → " + cpus);
        // Real-time vCPUs (vcpusched): "fifo:10" is policy and priority.
        // Live values list every vCPU; "other" is the kernel's default, not worth a line.
        for (const [vcpu, policy] of Object.entries(doc.vcpusched || {}))
            if (policy !== "other")
                lines.push("vCPU " + vcpu + " " + String(policy).replace(":", " "));
        return lines;
    }

    function storedLines(r) {
        if (!r.stored)
            return r.occupies.length ? [] : ["no policy"];
        const lines = pinLines(r);
        if (r.weight !== null && r.weight !== undefined)
            lines.push("weight " + r.weight);
        if (r.cap !== null && r.cap !== undefined)
            lines.push("cap " + r.cap + "%");
        return lines.length ? lines : ["empty policy"];
    }

    function occupiesLine(r) {
        return r.occupies.length ? ["occupies " + cpuList(new Set(r.occupies))] : [];
    }

    function effectiveLines(r) {
        if (r.conflict)
            return [{ text: "conflict: " + r.conflict, class: "bad" }];
        const plan = r.effective;
        if (!plan)
            return [];
        const lines = pinLines(plan);
        for (const [param, value] of Object.entries(plan.sched || {}))
            lines.push(param + " " + value);
        for (const lost of plan.unsupported || [])
            lines.push({ text: lost.setting + " not in force: " + lost.reason, class: "warn" });
        return lines.length ? lines : ["nothing to change"];
    }

    function liveLines(r) {
        if (!r.running)
            return ["—"];
        if (!r.live)
            return ["unknown"];
        const lines = pinLines(r.live);
        if (r.live.weight !== null && r.live.weight !== undefined)
            lines.push("weight " + r.live.weight);
        if (r.live.cap !== null && r.live.cap !== undefined)
            lines.push(r.live.cap ? "cap " + r.live.cap + "%" : "no cap");
        return lines.length ? lines : ["no pins"];
    }

    function driftLines(r) {
        if (!r.running)
            return ["not running"];
        if (!r.drift.length)
            return [{ text: "in force", class: "good" }];
        return r.drift.map(function (d) {
            const what = d.setting + (d.index !== null && d.index !== undefined ? " " + d.index : "");
            return { text: what + ": policy " + d.policy + ", live " + d.live, class: "bad" };
        });
    }

    function cell(lines) {
        const td = el("td");
        for (const line of lines) {
            const item = typeof line === "string" ? { text: line } : line;
            td.appendChild(el("div", { class: item.class || "", text: item.text }));
        }
        return td;
    }

    function drawDomains(reports, failures) {
        const body = $("domains-table").querySelector("tbody");
        body.textContent = "";
        const names = $("domain-names");
        names.textContent = "";
        if (!reports.length && !failures.length) {
            body.appendChild(el("tr", {}, [el("td", { colSpan: 6, class: "empty", text: "No domain has a policy or occupies CPUs." })]));
        }
        for (const r of reports) {
            names.appendChild(el("option", { value: r.domain }));
            const state = r.running ? "running" : (r.defined === false ? "not defined" : (r.asked_libvirt ? "shut off" : "unknown"));
            const row = el("tr", { "data-domain": r.domain }, [
                cell([{ text: r.domain, class: "name" }]),
                cell([state, r.driver || ""]),
                cell(storedLines(r).concat(occupiesLine(r))),
                cell(effectiveLines(r)),
                cell(liveLines(r)),
                cell(driftLines(r))
            ]);
            row.addEventListener("click", function () {
                for (const id of ["pin-domain", "weight-domain", "cap-domain"])
                    $(id).value = r.domain;
            });
            body.appendChild(row);
        }
        for (const f of failures)
            body.appendChild(el("tr", { "data-domain": f.domain }, [
                cell([{ text: f.domain, class: "name" }]),
                el("td", { colSpan: 5, class: "bad", text: f.err })
            ]));
    }

    // ---- verify -----------------------------------------------------------------------

    function drawVerify(result) {
        const box = $("verify-result");
        box.textContent = "";
        const docs = parse(result);
        const list = el("ul");
        for (const v of docs || []) {
            let text;
            if (v.host === "quiet-cpus")
                text = "host: " + v.drift.map(function (d) { return (d.name || d.what) + " is " + d.now + ", wanted " + d.wanted }).join("; ");
            else if (v.status === "drift")
                text = v.domain + ": drift in " + v.drift.map(function (d) { return d.setting + (d.index !== null ? " " + d.index : "") }).join(", ");
            else
                text = v.domain + ": " + v.status.replace(/-/g, " ") + (v.error ? " (" + v.error + ")" : "");
            list.appendChild(el("li", { class: v.in_force ? "good" : (v.status === "not-running" ? "" : "bad"), "data-status": v.status, text: text }));
        }
        let summary;
        if (result.ok)
            summary = el("p", { class: "good", text: (docs && docs.length) ? "Every policy is in force." : "No running domain has a policy." });
        else
            summary = el("p", { class: "bad", text: result.err });
        box.setAttribute("data-exit", result.code === null ? "" : String(result.code));
        box.appendChild(summary);
        if (docs && docs.length)
            box.appendChild(list);
    }

    // ---- reading everything -----------------------------------------------------------

    let reading = null;

    /* Read and draw everything, after any reading still under way (which may have
     * started before a change). */
    function refresh() {
        const mine = (reading || Promise.resolve([])).catch(function () { return [] }).then(function () {
            $("status").textContent = "Reading…";
            return read();
        });
        reading = mine;
        mine.finally(function () {
            if (reading === mine)
                reading = null;
        });
        return mine;
    }

    async function read() {
        const [occupancy, listing, verified] = await Promise.all([
            policyctl(["occupancy", "--json"]),
            policyctl(["list", "--json"]),
            policyctl(["verify", "--json"])
        ]);
        const problems = [];
        const map = parse(occupancy);
        if (!map)
            problems.push(occupancy.err || "policyctl occupancy --json printed nothing");
        // list exits 4 when some policy file cannot be read, and lists the others.
        if (!listing.ok)
            problems.push(listing.err);

        const names = new Set();
        for (const row of parse(listing) || [])
            names.add(row.domain);
        for (const cpu of map ? allCpus(map) : []) {
            cpu.occupied_by.forEach(function (n) { names.add(n) });
            cpu.pinned.forEach(function (n) { names.add(n) });
        }
        for (const v of parse(verified) || [])
            if (v.domain)
                names.add(v.domain);
        const sorted = Array.from(names).sort();
        const results = await Promise.all(sorted.map(function (name) {
            return policyctl(["cpupolicy", "--json", "--", name]);
        }));
        const reports = [];
        const failures = [];
        results.forEach(function (result, i) {
            const doc = parse(result);
            if (doc)
                reports.push(doc);
            else
                failures.push({ domain: sorted[i], err: result.err });
        });

        drawGrid(map);
        drawDomains(reports, failures);
        drawVerify(verified);
        generation += 1;
        document.body.setAttribute("data-generation", String(generation));
        document.body.setAttribute("data-state", "ready");
        $("status").textContent = "Read at " + new Date().toLocaleTimeString();
        return problems;
    }

    // ---- changes ----------------------------------------------------------------------

    const STATUS = {
        applied: "saved and applied to the running domain",
        "saved-not-running": "saved; it applies when the domain starts",
        "not-defined": "saved; libvirt does not know the domain yet",
        offline: "saved; libvirt did not answer, it applies when the domain starts",
        "dry-run": "not saved (dry run)",
        failed: "saved, but libvirt refused it"
    };

    /* Run a changing policyctl command; say what it did, or policyctl's message; then
     * draw everything again. */
    async function change(args, what) {
        for (const button of document.querySelectorAll("form.change button"))
            button.disabled = true;
        say("busy", what + "…");
        document.body.setAttribute("data-state", "changing");
        try {
            const result = await policyctl(args.concat(), true);
            if (result.ok) {
                const doc = parse(result) || {};
                say("ok", what + ": " + (STATUS[doc.status] || "done") + (result.err ? "\n" + result.err : ""));
            } else {
                say("error", result.err || ("policyctl exited with status " + result.code));
            }
            await refresh();
        } finally {
            for (const button of document.querySelectorAll("form.change button"))
                button.disabled = false;
        }
    }

    function value(id) {
        return $(id).value.trim();
    }

    function setup() {
        $("refresh").addEventListener("click", function () {
            refresh().then(function (problems) {
                say(problems.length ? "error" : "", problems.join("\n"));
            });
        });
        $("form-pin").addEventListener("submit", function (event) {
            event.preventDefault();
            const dom = value("pin-domain");
            const vcpu = value("pin-vcpu");
            change(["vcpupin", "--json", "--", dom, vcpu, value("pin-cpus")], "Pin vCPU " + vcpu + " of " + dom);
        });
        $("form-weight").addEventListener("submit", function (event) {
            event.preventDefault();
            const dom = value("weight-domain");
            change(["schedweight", "--json", "--", dom, value("weight-value")], "Weight of " + dom);
        });
        $("form-cap").addEventListener("submit", function (event) {
            event.preventDefault();
            const dom = value("cap-domain");
            change(["schedcap", "--json", "--", dom, value("cap-value")], "Cap of " + dom);
        });
        $("form-occupy").addEventListener("submit", function (event) {
            event.preventDefault();
            const cpus = value("occupy-cpus");
            const domains = value("occupy-domains");
            if (!domains) {
                say("error", "Name the domains that occupy CPUs " + cpus + ", or free them with Free");
                return;
            }
            change(["cpuoccupy", "--json", "--", cpus, domains], "CPUs " + cpus + " occupied by " + domains);
        });
        $("occupy-free").addEventListener("click", function () {
            const form = $("form-occupy");
            if (!$("occupy-cpus").reportValidity())
                return;
            const cpus = value("occupy-cpus");
            form.querySelector("#occupy-domains").value = "";
            change(["cpuoccupy", "--json", "--clear", "--", cpus], "CPUs " + cpus + " freed");
        });
        refresh().then(function (problems) {
            if (problems.length)
                say("error", problems.join("\n"));
        });
    }

    if (document.readyState === "loading")
        document.addEventListener("DOMContentLoaded", setup);
    else
        setup();
}());
