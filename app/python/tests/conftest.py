"""Shared fixtures: the CLI built beside the module, the sources' samples and models."""
import os
import subprocess
from pathlib import Path

import pytest

SOURCE = Path(os.environ.get("QMPP_SOURCE_DIR", Path(__file__).resolve().parents[3]))
SAMPLES = SOURCE / "resources" / "samples"
MODELS = SOURCE / "resources" / "models"
FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="session")
def cli():
    """Runs the qmpp CLI; returns (exit code, stdout, stderr)."""
    exe = os.environ.get("QMPP_CLI")
    if not exe or not Path(exe).exists():
        pytest.skip("QMPP_CLI is not set to the built qmpp (ctest sets it)")

    def run(*args):
        p = subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=600)
        return p.returncode, p.stdout, p.stderr

    return run


def cli_error(stderr: str) -> str:
    """The message of 'qmpp: bad input: MSG' or 'qmpp: usage error: MSG'."""
    first = stderr.strip().splitlines()[0]
    for prefix in ("qmpp: bad input: ", "qmpp: usage error: "):
        if first.startswith(prefix):
            return first[len(prefix):]
    raise AssertionError(f"not a CLI error: {stderr!r}")
