import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)                    # tests/ helpers (hookrun, unit_helpers)
sys.path.insert(0, os.path.dirname(HERE))   # the working tree's policyhook, not an installed one


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
