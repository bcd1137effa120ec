"""The lab helpers' run() (tests/e2e/lab.py): a program the dynamic loader aborted
before its main runs once more and is listed; any other failure is the program's."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "e2e"))
import lab  # noqa: E402

LOADER = ("Inconsistency detected by ld.so: dl-version.c: 204: _dl_check_map_versions: "
          "Assertion `needed != NULL' failed!")


def program(tmp_path, first_status, first_err):
    """A program that fails as told at its first run and prints "ran" at the next."""
    mark = tmp_path / "ran-once"
    path = tmp_path / "prog"
    path.write_text('#!/bin/sh\nif [ ! -e %s ]; then touch %s; echo "%s" >&2; exit %d; fi\necho ran\n'
                    % (mark, mark, first_err.replace("`", "\\`"), first_status))
    path.chmod(0o755)
    return str(path)


@pytest.fixture(autouse=True)
def no_faults(monkeypatch):
    monkeypatch.setattr(lab, "LOADER_FAULTS", [])


def test_a_loader_fault_runs_the_program_again_and_is_listed(tmp_path):
    prog = program(tmp_path, 127, LOADER)
    assert lab.run([prog, "x"]).stdout == "ran\n"
    assert lab.LOADER_FAULTS == [(prog + " x", LOADER)]


@pytest.mark.parametrize("status,err", [(127, "sh: 1: nosuch: not found"), (1, LOADER)])
def test_other_failures_are_the_programs(tmp_path, status, err):
    prog = program(tmp_path, status, err)
    with pytest.raises(lab.LabError, match=r"failed \(%d\)" % status):
        lab.run([prog])
    assert lab.LOADER_FAULTS == []
