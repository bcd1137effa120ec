"""The Ansible collection (contrib/ansible) run for real on the guest: ansible-core from
the distribution, the play on the guest itself (a local connection), its modules run by
the distribution's python3 against the installed policyhook. Check mode, a real run read
back with virsh, then in one play the same task again, --diff, a bad value, and state:
absent."""

import json
import os
import re
import subprocess

import guest
import lab
import pytest

COLLECTIONS = os.path.join(lab.REPO, "contrib", "ansible")


def play(tmp_path, tasks, *flags):
    """Run a play of `tasks` on localhost; (recap line, the play's output)."""
    book = tmp_path / "play.yml"
    book.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR="1",
               ANSIBLE_HOST_KEY_CHECKING="0", ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
               ANSIBLE_STDOUT_CALLBACK="default")
    r = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local",
                        "-e", "ansible_python_interpreter=/usr/bin/python3", str(book)] + list(flags),
                       capture_output=True, text=True, timeout=300, env=env)
    recap = [line for line in r.stdout.splitlines() if line.startswith("localhost")]
    assert recap, r.stdout + r.stderr
    return r.returncode, re.sub(r"\s+", " ", recap[-1]).strip(), r.stdout


def task_results(out):
    """{task name: ok, changed or fatal} from the default callback's output."""
    return {m.group(1): m.group(2) for m in re.finditer(
        r"^TASK \[(.+?)\] \**$.*?^(ok|changed|fatal|failed|skipping): \[localhost\]", out, re.M | re.S)}


def changed(recap):
    return int(re.search(r"changed=(\d+)", recap).group(1))


@pytest.fixture
def running(domains):
    name = domains("ansible")
    lab.virsh("start", name, timeout=180)
    return name


def test_playbook_check_real_again_diff_absent(running, tmp_path):
    task = {"policyhook.libvirt.cpu_policy": {"domain": running, "vcpupin": {"0": "2", "1": "3"},
                                              "weight": 512}}
    policy_file = "/etc/policyhook/domains/%s.json" % running

    rc, recap, out = play(tmp_path, [task], "--check")
    guest.record("ansible-playbook --check (recap)", recap)
    assert rc == 0 and changed(recap) == 1, out
    assert not os.path.exists(policy_file)

    rc, recap, out = play(tmp_path, [task])
    guest.record("ansible-playbook (recap)", recap)
    assert rc == 0 and changed(recap) == 1, out
    pins = lab.vcpupin(running)
    guest.record("virsh vcpupin after the play", pins)
    assert pins == {0: "2", 1: "3"}

    # The rest in one play, each task named (ansible-playbook starts in about 40 s here):
    # the same task again, weight 1024 with --diff, a bad weight (failed, ignored), absent.
    again = {"name": "again"}
    again.update(task)
    heavier = {"name": "weight 1024", "policyhook.libvirt.cpu_policy": dict(
        task["policyhook.libvirt.cpu_policy"], weight=1024)}
    bad = {"name": "bad weight", "ignore_errors": True,
           "policyhook.libvirt.cpu_policy": {"domain": running, "weight": 70000}}
    gone = {"name": "absent", "policyhook.libvirt.cpu_policy": {"domain": running, "state": "absent"}}
    rc, recap, out = play(tmp_path, [again, heavier, bad, gone], "--diff")
    guest.record("ansible-playbook --diff: again, weight 1024, a bad weight, state: absent (recap)", recap)
    assert rc == 0, out
    assert task_results(out) == {"again": "ok", "weight 1024": "changed", "bad weight": "fatal",
                                 "absent": "changed"}, out
    assert re.search(r'^-\s+"weight": 512', out, re.M) and re.search(r'^\+\s+"weight": 1024', out, re.M), out
    assert "invalid weight 70000: must be 1..65535" in out, out
    assert not os.path.exists(policy_file)
    pins = lab.vcpupin(running)
    guest.record("virsh vcpupin after state: absent", pins)
    assert pins[0] == pins[1] and pins != {0: "2", 1: "3"}     # libvirt's default back, live
