"""`make demo`: a throwaway TRE, end to end, through the real CLI.

Every step is printed as the `tre` command a person would type, then run in-process:
an admin pair registers people, ingests synthetic Liverpool City Region data and
approves a project; a researcher submits the example jobs in jobs/examples/; the
dispatcher runs them on a local Dask cluster; disclosure control writes its reports;
two output checkers review and release; the researcher fetches the released files.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel

from tre.cli.main import main as tre_main
from tre.demo.synth import descriptor_path, generate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "jobs" / "examples"
#: What the researcher submits in step 4, in order, with the exit status expected (4: a
#: job the approvals refuse). The README's tours number their jobs after these
#: (tests/e2e/test_readme.py submits the same, so its jobs get the same ids).
SUBMISSIONS = (
    ("health_by_area.yaml", 0),
    ("gp_visits_model.yaml", 0),
    ("fire_linked.yaml", 0),
    ("early_help/summary.yaml", 0),
    ("not_approved.yaml", 4),
    ("hostile/steal.yaml", 0),
)
console = Console(highlight=False)

PEOPLE = [
    ("bob", "Bob Okafor", ["admin"], None),
    ("rita", "Rita Sharma", ["researcher"], "2027-09-30"),
    ("sam", "Sam Doyle", ["researcher"], "2027-03-31"),
    ("carl", "Carl Jones", ["checker"], None),
    ("chen", "Chen Wei", ["checker"], None),
]


class Walkthrough:
    def __init__(self, home: Path) -> None:
        self.home = home

    def tre(self, *args: str, who: str | None = None, expect: int = 0) -> None:
        """Print the command as a person would type it, run it, check its exit code."""
        shown = ["tre"] + (["--as", who] if who else []) + list(args)
        console.print(f"[bold cyan]$ {shlex.join(shown)}[/]")
        argv = ["--home", str(self.home)] + (["--as", who] if who else []) + list(args)
        code = tre_main(argv)
        if code != expect:
            console.print(f"[bold red]demo stopped: exit code {code}, expected {expect}[/]")
            raise SystemExit(1)

    def section(self, title: str, text: str = "") -> None:
        console.print()
        console.print(Panel(f"[bold]{title}[/]" + (f"\n{text}" if text else ""), expand=False))


def run(root: Path, rows: int, backend: str = "local") -> Path:
    started = time.monotonic()
    if root.exists():
        shutil.rmtree(root)
    home, sources, fetched = root / "home", root / "sources", root / "released"
    w = Walkthrough(home)

    w.section(
        "1. An admin creates the TRE",
        "A demo home lets one terminal act as everyone "
        "with --as NAME. Real deployments authenticate each person through the service.",
    )
    where = []
    if backend == "slurm":
        # The test cluster's three compute nodes (slurm/devcluster; make demo BACKEND=slurm).
        where = ["--backend", "slurm-runner", "--slurm-profile", "local-nodes"]
    w.tre("init", "--demo", "--admin", "ada", "--full-name", "Ada Admin", *where)
    if backend == "local":
        # Can a job start on this machine at all? A few seconds now, not a failed demo later.
        w.tre("cluster", "check")
    for name, full, roles, until in PEOPLE:
        args = ["admin", "register", name, "--full-name", full]
        for role in roles:
            args += ["--role", role]
        if until:
            args += ["--accredited-until", until]
        w.tre(*args, who="ada")
    # A new admin approves nothing until confirmed; ada, the only admin, confirms bob.
    w.tre("admin", "confirm", "bob", who="ada")

    w.section(
        "2. The admin ingests synthetic Liverpool City Region data",
        f"{rows:,} residents of the six authorities, with fire incidents and early-help "
        "referrals, encrypted into secured Parquet (one master key per column).",
    )
    console.print(f"[dim]generating synthetic sources in {sources}[/]")
    generate(sources, rows=rows)
    for name in ("residents", "fire_incidents", "early_help"):
        w.tre(
            "dataset",
            "ingest",
            name,
            str(sources / f"{name}.parquet"),
            "--describe",
            str(descriptor_path(name)),
            who="ada",
        )
    w.tre("dataset", "show", "residents", who="rita")

    w.section("3. A researcher requests a project; a different admin approves it")
    w.tre("project", "request", str(EXAMPLES / "project.yaml"), who="rita")
    w.tre("project", "approve", "lcr-health-fire", who="bob")

    w.section(
        "4. The researcher submits jobs",
        "Each spec is checked against the project's approval before it is queued.",
    )
    for spec, expect in SUBMISSIONS:
        if spec == "not_approved.yaml":
            console.print(
                "[dim]A job asking for a column the project is not approved for is refused:[/]"
            )
        elif spec.startswith("hostile/"):
            console.print(
                "[dim]And a job whose code is hostile (jobs/examples/hostile/steal.py) is "
                "accepted: its spec is within the approval. Its code is not:[/]"
            )
        w.tre("submit", str(EXAMPLES / spec), who="rita", expect=expect)

    w.section(
        "5. The dispatcher runs each job on its own Dask cluster",
        (
            "Each job is one Slurm allocation with its own scheduler and workers. "
            if backend == "slurm"
            else ""
        )
        + "Data is decrypted only on the workers; aggregates and their disclosure evidence "
        "come back, then disclosure control checks every output.",
    )
    w.tre("run", "--once", who="ada")
    w.tre("status", who="rita")
    w.tre("status", "1", who="rita")

    w.section(
        "5b. Hostile code gets nothing",
        (
            "Job 6 ran on the compute nodes, submitted as a job user of its own (sudo -u "
            "tre-job-<k> sbatch), in bubblewrap's sandbox: no TRE home, keys only through "
            "the key gateway with its job's certificate, and the key service refused its "
            "request for a column its grant does not name (the audit log names the node). "
            if backend == "slurm"
            else "Job 6 ran as an unprivileged job user of its own (tre-job-<k>) in a "
            "bubblewrap sandbox: no network, no TRE home, keys only through the key "
            "service, which refused its request for a column its grant does not name. "
        )
        + "The researcher sees tre's status lines, never what the code printed; the "
        "refusal is in the audit log.",
    )
    w.tre("logs", "6", who="rita")
    w.tre("audit", "log", "--object", "job:6", who="ada")

    w.section(
        "6. Output checkers review",
        "Two checkers, neither the author, vote on each output. Failing cells were "
        "suppressed (with the cells that would give them away); the checkers see the "
        "evidence, and reject a table that suppression has left with too little to use. "
        "An output that still fails after protection cannot be approved.",
    )
    w.tre("review", "list", who="carl")
    w.tre("review", "show", "1", who="carl")
    console.print(
        "[dim]Job 4's table was made by the researcher's own Python (plan mode): tre's "
        "engine ran the code's LazyFrame plan again, in a sandbox the code never ran in, "
        "and computed the evidence itself. A table the code computes any other way is "
        "labelled advisory and must be approved by name.[/]"
    )
    w.tre("review", "show", "4", who="carl")
    for checker in ("carl", "chen"):
        w.tre(
            "review",
            "approve",
            "1",
            "--output",
            "residents_by_area",
            "-m",
            "All cells have at least 10 residents; no dominance issue.",
            who=checker,
        )
        w.tre(
            "review",
            "reject",
            "1",
            "--output",
            "copd_by_deprivation",
            "-m",
            "Too many cells suppressed; combine deciles into quintiles and resubmit.",
            who=checker,
        )
        for job in ("2", "3", "4"):
            w.tre(
                "review",
                "approve",
                job,
                "-m",
                "Checked the report and the files: safe.",
                who=checker,
            )
    console.print("[dim]One checker alone cannot release anything; here both have voted:[/]")
    for job in ("1", "2", "3", "4"):
        w.tre("review", "release", job, who="carl")

    w.section("7. The researcher fetches the released outputs")
    w.tre("outputs", who="rita")
    w.tre("outputs", "2", "--to", str(fetched), who="rita")

    w.section("8. The audit log is intact")
    w.tre("audit", "verify", who="ada")

    report = home / "jobs" / "000001" / "report"
    w.section(
        "What a checker saw for job 1",
        f"HTML: {report / 'report.html'}\nMarkdown: {report / 'report.md'}\n"
        f"JSON: {report / 'report.json'}",
    )
    console.print(Markdown(_excerpt((report / "report.md").read_text())))
    console.print(
        f"\n[bold green]Demo finished in {time.monotonic() - started:.0f}s.[/] "
        f"Home: {home}. Try: .venv/bin/tre --home {home} --as carl review show 1"
    )
    return home


def _excerpt(markdown: str, lines: int = 60) -> str:
    kept = markdown.splitlines()[:lines]
    return "\n".join(kept) + ("\n\n…" if len(markdown.splitlines()) > lines else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tre.demo.walkthrough")
    parser.add_argument(
        "--home",
        type=Path,
        default=Path(".demo"),
        help="folder for the throwaway TRE (deleted first)",
    )
    parser.add_argument("--rows", type=int, default=20_000, help="synthetic residents")
    parser.add_argument(
        "--backend",
        choices=["local", "slurm"],
        default="local",
        help="run the jobs on a local Dask cluster, or on Slurm across the test cluster's "
        "three compute nodes (profile local-nodes)",
    )
    args = parser.parse_args(argv)
    run(args.home.absolute(), args.rows, args.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
