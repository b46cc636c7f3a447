"""The long run of the randomized sync test (issue #12): ``make fuzz``.

Runs ``tests/calendarsync/sync/test_state_machine.py::test_sync_state_machine_fuzz`` (the same
``RuleBasedStateMachine`` CI runs, with a bigger budget) against each provider's emulator:
``FUZZ_EXAMPLES`` random sequences per provider (default 1,000), up to ``FUZZ_STEPS`` steps each.
Nothing stops at the first broken rule: every sequence is judged, and the report counts per
provider how many ran, how many converged (every rule held at every quiescent point) and which
rules broke how often, with the first message of each (its steps are the counterexample).

``FUZZ_SEED`` unset: the sequences are derandomized (the same every run); set (any value) for
fresh random ones. ``DATABASE_URL`` picks the database as for the tests (SQLite by default).
``FUZZ_PROVIDERS`` (comma-separated) narrows the run, e.g. ``FUZZ_PROVIDERS=google``.

The last line printed is a JSON object:
``{"examples_per_provider": 1000, "database": "sqlite", "providers": {"google": {"ran": 1000,
"converged": 998, "violations": {...}, "seconds": 812.4, "examples_per_second": 1.23, ...}, ...}}``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/calendarsync/sync/test_state_machine.py::test_sync_state_machine_fuzz"
PROVIDERS = ("exchange", "google", "microsoft")


def main() -> int:
    examples = int(os.environ.get("FUZZ_EXAMPLES", "1000"))
    wanted = [p for p in os.environ.get("FUZZ_PROVIDERS", ",".join(PROVIDERS)).split(",") if p]
    unknown = sorted(set(wanted) - set(PROVIDERS))
    if unknown:
        print(f"unknown providers {unknown}; choose from {PROVIDERS}")
        return 2
    database = "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"
    with tempfile.TemporaryDirectory(prefix="calsync-fuzz-") as scratch:
        report = Path(scratch) / "report.json"
        env = {
            **os.environ,
            "FUZZ_EXAMPLES": str(examples),
            "FUZZ_REPORT": str(report),
            "CALSYNC_VAR_DIR": os.environ.get("CALSYNC_VAR_DIR", scratch),
        }
        selection = [f"{TEST}[{provider}]" for provider in wanted]
        command = [sys.executable, "-m", "pytest", *selection, "-q", "-p", "no:cacheprovider", "--timeout=0"]
        print(f"{examples} sequences per provider ({', '.join(wanted)}) on {database}")
        finished = subprocess.run(command, cwd=ROOT, env=env, check=False)  # noqa: S603 - our own interpreter
        outcomes = json.loads(report.read_text()) if report.exists() else {}
    for provider in wanted:
        outcome = outcomes.get(provider)
        if outcome is None:
            print(f"{provider:10} no report (pytest exited {finished.returncode})")
            continue
        print(
            f"{provider:10} ran {outcome['ran']:5}  converged {outcome['converged']:5}  "
            f"{outcome['examples_per_second']} sequences/s  broken: {outcome['violations'] or 'none'}"
        )
        for rule, message in outcome["first_messages"].items():
            print(f"  {rule}: {message}")
    print(json.dumps({"examples_per_provider": examples, "database": database, "providers": outcomes}))
    everything_ran = finished.returncode == 0 and all(p in outcomes for p in wanted)
    return 0 if everything_ran else 1


if __name__ == "__main__":
    sys.exit(main())
