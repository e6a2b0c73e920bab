"""`tre review ...`: the output checkers' commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from tre.cli.common import console, remote, session, styled

if TYPE_CHECKING:
    from tre.service.review import RequestView


def register(cli: click.Group) -> None:
    cli.add_command(review_group)


@click.group("review")
def review_group() -> None:
    """Review and release outputs (output checkers)."""


@review_group.command("list")
@click.pass_context
def list_cmd(ctx: click.Context) -> None:
    """Output requests awaiting review, oldest first."""
    from tre.service import review

    if (client := remote(ctx)) is not None:
        with client:
            views, me = client.queue(), client.actor
    else:
        with session(ctx) as s:
            views = review.queue(s)
            me = s.actor
    table = Table("job", "project", "author", "title", "outputs", "disclosure", "reviews")
    for v in views:
        statuses = [o.sdc_status.value for o in v.request.outputs]
        worst = max(statuses, key=["pass", "review", "fail"].index)
        done = sum(min(c, review.REVIEWS_NEEDED) for c in v.counts.values())
        needed = review.REVIEWS_NEEDED * len(v.request.outputs)
        own = " (yours: you cannot review it)" if v.job.submitter == me else ""
        table.add_row(
            str(v.job.id),
            v.job.project,
            v.job.submitter,
            v.job.title + own,
            str(len(statuses)),
            styled(worst),
            f"{done}/{needed}",
        )
    console.print(table)


@review_group.command("show")
@click.argument("job_id", type=int)
@click.pass_context
def show_cmd(ctx: click.Context, job_id: int) -> None:
    """One output request: outputs, disclosure results, reviews and the report's path."""
    from tre.service import review
    from tre.service.checking import read_report

    if (client := remote(ctx)) is not None:
        with client:
            view = client.show(job_id)
        _show_view(view, None)
        console.print(f"\nReview it in a browser: {client.server}/review/{job_id}", markup=False)
        return
    with session(ctx) as s:
        view = review.show(s, job_id)
        folder = s.home.job_dir(job_id)
        report = read_report(s, view.request)
    _show_view(view, folder)
    _show_report(report)
    console.print(f"\nThe full report: {folder / view.request.report_html}")
    console.print(f"                 {folder / view.request.report_markdown}")


def _show_report(report: dict[str, object]) -> None:
    """The disclosure report's verdict, rules and differencing findings, as the report
    says them (each table's cells are in the full report)."""
    from disclosure.render import finding_lines, overall, rule_lines, status_label, text_of

    console.print(
        f"\n[bold]Disclosure report[/]: {status_label(text_of(report, 'status'))} "
        f"({overall(report)})",
        highlight=False,
    )
    console.print("Rules:", highlight=False)
    for line in rule_lines(report):
        console.print(f"  - {line}", markup=False, highlight=False)
    findings = finding_lines(report)
    if findings:
        console.print("Differencing, outputs that disclose together:", highlight=False)
        for number, text, named in findings:
            where = " and ".join(name for name, _position in named)
            console.print(f"  {number}. {where}: {text}", markup=False, highlight=False)


def _show_view(view: RequestView, folder: Path | None) -> None:
    job, request = view.job, view.request
    console.print(f"Job [bold]{job.id}[/]: {job.title}  ({styled(job.state.value)})")
    console.print(f"Project {job.project}; author {job.submitter}")
    for o in request.outputs:
        console.print(
            f"\n[bold]{o.name}[/] ({o.kind}, step {o.step}): "
            f"{styled(o.sdc_status.value)}; {view.counts[o.name]} review(s)"
        )
        console.print(f"  {o.summary}", markup=False)
        for f in o.files:
            console.print(f"  file: {folder / f if folder else f}", markup=False)
        for r in view.reviews:
            if r.output == o.name:
                console.print(f"  {r.checker}: {styled(r.decision.value)} — ", end="")
                console.print(r.comment, markup=False)


def _vote_command(name: str, decision: str, help_text: str) -> click.Command:
    """A command casting the vote `decision` (a tre.models.Decision's value: the enum is
    made when the command runs, so that listing the commands loads no pydantic models)."""

    @click.command(name, help=help_text)
    @click.argument("job_id", type=int)
    @click.option(
        "--output",
        "outputs",
        multiple=True,
        help="Output(s) to vote on (default: all). Repeat for several.",
    )
    @click.option("--comment", "-m", required=True, help="Why (required).")
    @click.pass_context
    def cmd(ctx: click.Context, job_id: int, outputs: tuple[str], comment: str) -> None:
        from tre.models import Decision
        from tre.service import review

        vote = Decision(decision)
        if (client := remote(ctx)) is not None:
            with client:
                reviews = client.vote(job_id, list(outputs) or None, vote, comment)
        else:
            with session(ctx) as s:
                reviews = review.vote(s, job_id, list(outputs) or None, vote, comment)
        names = ", ".join(r.output for r in reviews)
        console.print(f"Recorded {styled(vote.value)} on job {job_id}: {names}")

    return cmd


review_group.add_command(
    _vote_command("approve", "approve", "Approve outputs of JOB_ID for release.")
)
review_group.add_command(
    _vote_command("reject", "reject", "Reject outputs of JOB_ID: they will not be released.")
)
review_group.add_command(
    _vote_command("return", "return", "Return JOB_ID to the researcher asking for changes.")
)


@review_group.command("release")
@click.argument("job_id", type=int)
@click.pass_context
def release_cmd(ctx: click.Context, job_id: int) -> None:
    """Settle JOB_ID once two checkers reviewed every output: release what both approved."""
    from tre.service import review

    folder: Path | str
    if (client := remote(ctx)) is not None:
        with client:
            job = client.release(job_id)
        folder = f"on the server; researchers fetch it with 'tre outputs {job_id} --to DIR'"
    else:
        with session(ctx) as s:
            job = review.release(s, job_id)
            folder = s.home.release_dir(job_id)
    console.print(f"Job [bold]{job.id}[/] is {styled(job.state.value)}: ", end="")
    console.print(job.reason, markup=False)
    if job.state.value in ("released", "partially_released"):
        console.print(f"Release folder: {folder}")
