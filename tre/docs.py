"""Generated documentation: `python -m tre.docs` writes docs/states.md from the state
tables; `--check` fails if the file is out of date (make test runs the check)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from policies.refusals import table as refusal_table
from tre.outcomes import table as outcome_table
from tre.states import mermaid

ROOT = Path(__file__).resolve().parent.parent
STATES = ROOT / "docs" / "states.md"


def states_markdown() -> str:
    return (
        "# Job and project states\n\n"
        "Generated from `tre/states.py` by `python -m tre.docs`; do not edit by hand.\n\n"
        "## Jobs\n\n```mermaid\n" + mermaid("job") + "```\n\n"
        "## Projects\n\n```mermaid\n" + mermaid("project") + "```\n\n"
        "## Why a job moved: outcome codes\n\n"
        "Generated from `tre/outcomes.py`. Each state change the dispatcher makes carries "
        "one (`Job.outcome`, and the `outcome` of its audit event); the words for people "
        "are in the job's reason.\n\n" + outcome_table() + "\n"
        "## Why a job was refused: refusal codes\n\n"
        "Generated from `policies/refusals.py`. A job refused at submission (`refused`) "
        "lists every reason, each with one of these codes (the `codes` of its audit event); "
        "the fix it is shown is the hints of its codes, in this order, with the job's "
        "submitter and project for NAME and PROJECT. A queued job whose approval no longer "
        "allows it fails with the approval's reasons (outcome `no_longer_allowed`).\n\n"
        + refusal_table()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tre.docs")
    parser.add_argument("--check", action="store_true", help="fail if docs are out of date")
    args = parser.parse_args(argv)
    wanted = states_markdown()
    if args.check:
        if not STATES.exists() or STATES.read_text() != wanted:
            print(f"{STATES} is out of date: run 'make docs'", file=sys.stderr)
            return 1
        return 0
    STATES.write_text(wanted)
    print(f"wrote {STATES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
