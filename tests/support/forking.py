"""Run work in a fresh interpreter, fork it, and look at what the forked child does.

This plays a prefork worker: the parent warms up (building whatever shared state the work uses),
then forks, and the child must work on its own. A fresh interpreter is used so that no thread of the
test process is forked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = """
import json, os, sys, traceback
{setup}

def compute():
    return {expression}

in_parent = {in_parent}
read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read_end)
    try:
        value = compute()
        report = json.dumps({{"value": value, "agrees": value == in_parent}})
    except BaseException:
        report = json.dumps({{"error": traceback.format_exc()}})
    with os.fdopen(write_end, "w") as pipe:
        pipe.write(report)
    os._exit(0)
os.close(write_end)
with os.fdopen(read_end) as pipe:
    report = pipe.read()
_, status = os.waitpid(pid, 0)
if not report:
    sys.exit(f"the forked child died without a report (wait status {{status}})")
print(report)
"""


def _run_forked(
    setup: str,
    expression: str,
    args: tuple[str, ...],
    *,
    compare_with_parent: bool,
    env: Mapping[str, str] | None,
    timeout_s: float,
) -> dict[str, Any]:
    script = _SCRIPT.format(
        setup=textwrap.dedent(setup),
        expression=expression,
        in_parent="compute()" if compare_with_parent else "None",
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    # The child's report is the last line printed (the set-up may print before it).
    report: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    assert "error" not in report, report["error"]
    return report


def assert_forked_child_agrees(setup: str, expression: str, *args: str, timeout_s: float = 180) -> None:
    """``setup`` (statements) runs once; ``expression`` is evaluated in the parent, then in a forked child.

    A child that hangs (e.g. on threads it did not inherit) fails the test by the timeout.
    """
    report = _run_forked(setup, expression, args, compare_with_parent=True, env=None, timeout_s=timeout_s)
    assert report["agrees"] is True, report


def forked_child_value(
    setup: str,
    expression: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 300,
) -> Any:
    """``setup`` (statements) runs once; ``expression`` is evaluated in a forked child only, and its
    (JSON) value returned. ``env`` is added to the interpreter's environment."""
    return _run_forked(setup, expression, args, compare_with_parent=False, env=env, timeout_s=timeout_s)[
        "value"
    ]
