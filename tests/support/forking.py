"""Run work in a fresh interpreter, fork it, and check the forked child gets the same answer.

This plays a prefork worker: the parent warms up (building whatever shared state the work uses),
then forks, and the child must work on its own. A fresh interpreter is used so that no thread of the
test process is forked.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = """
import json, os, sys
{setup}

def compute():
    return {expression}

in_parent = compute()
read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(write_end, json.dumps(compute() == in_parent).encode())
    os._exit(0)
os.close(write_end)
print(os.read(read_end, 64).decode())
os.waitpid(pid, 0)
"""


def assert_forked_child_agrees(setup: str, expression: str, *args: str, timeout_s: float = 180) -> None:
    """``setup`` (statements) runs once; ``expression`` is evaluated in the parent, then in a forked child.

    A child that hangs (e.g. on threads it did not inherit) fails the test by the timeout.
    """
    script = _SCRIPT.format(setup=textwrap.dedent(setup), expression=expression)
    completed = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "true", completed.stdout
