import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ghostswap.mm import swapfile


@pytest.fixture(autouse=True)
def _debug_vm():
    swapfile.set_debug_vm(True)
    yield
    swapfile.set_debug_vm(False)
