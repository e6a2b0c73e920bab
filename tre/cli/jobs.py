"""`tre submit|status|logs|cancel|run|outputs`: a job's life from the researcher's side,
and the dispatcher."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click
from rich.table import Table

from tre.cli.common import console, remote, session, styled

if TYPE_CHECKING:
    from jobs.spec import JobSpec
    from tre.client import Client
    from tre.models import Job
    from tre.service.review import RequestView


def register(cli: click.Group) -> None:
    for command in (submit, status, logs, cancel, run, outputs):
        cli.add_command(command)


def load_pickles(spec: JobSpec, base: Path) -> dict[str, bytes]:
    """Load each python step's function from the researcher's file and pickle it."""
    from jobs.python_step import load_function, pickle_function
    from jobs.spec import PythonStep

    return {
        step.name: pickle_function(load_function(base, step.function))
        for step in spec.steps
        if isinstance(step, PythonStep)
    }


@click.command()
@click.argument("spec_file", type=click.Path(path_type=Path))
@click.pass_context
def submit(ctx: click.Context, spec_file: Path) -> None:
    """Check a job spec against your project's approval and queue it."""
    from jobs.spec import load_spec
    from tre.service import jobs

    spec = load_spec(spec_file)
    pickles = load_pickles(spec, spec_file.parent)
    if (client := remote(ctx)) is not None:
        with client:
            job = client.submit_job(spec, pickles)
    else:
        with session(ctx) as s:
            job = jobs.submit_job(s, spec, pickles)
    console.print(f"Job [bold]{job.id}[/] {styled(job.state.value)}: {job.title}")
    console.print(f"Follow it with: tre status {job.id}")


@click.command()
@click.argument("job_id", type=int, required=False)
@click.option("--all", "everything", is_flag=True, help="Every job you may see, not only yours.")
@click.pass_context
def status(ctx: click.Context, job_id: int | None, everything: bool) -> None:
    """Your jobs, or one job in detail."""
    if (client := remote(ctx)) is not None:
        with client:
            if job_id is None:
                _job_table(client.list_jobs(everything=everything))
                return
            job, progress, backend = client.job_detail(job_id)
            view = client.show(job_id) if job.state.value in _WITH_OUTPUTS else None
    else:
        # Read-only modules: `tre status` answers at once (issue 27). Only a running job's
        # backend is asked about it, through tre.service.jobs, which loads the engines.
        from tre.service import job_progress, job_queries, request_view

        with session(ctx) as s:
            if job_id is None:
                _job_table(job_queries.list_jobs(s, everything=everything))
                return
            job = job_queries.get_job(s, job_id)
            progress = job_progress.progress_of(s, job)
            backend = ""
            if job.state.value == "running":
                from tre.service import jobs

                backend = jobs.backend_detail(s, job)
            view = request_view.show(s, job_id) if job.state.value in _WITH_OUTPUTS else None
    console.print(f"Job [bold]{job.id}[/]: {job.title}")
    console.print(
        f"  state:     {styled(job.state.value)}  (since {job.updated_at:%Y-%m-%d %H:%M})"
    )
    console.print(f"  project:   {job.project}; submitted by {job.submitter}")
    if backend:
        console.print(f"  backend:   {backend}", markup=False)
    if job.reason:
        console.print("  reason:    ", end="")
        console.print(job.reason, markup=False)
    for step, p in progress.items():
        console.print(f"  step {step}: {p['done']}/{p['total']} tasks")
    if view is not None:
        from tre.service.researcher_view import ADVISORY_NOTE

        for o in view.request.outputs:
            console.print(f"  output {o.name} ({o.kind}): {styled(o.sdc_status.value)} — ", end="")
            console.print(o.summary + (f" ({ADVISORY_NOTE})" if o.advisory else ""), markup=False)
            _print_votes(view, o.name, "    ")
        if view.undeclared:
            console.print(
                f"  {view.undeclared} undeclared output(s): made under names the job spec "
                "does not declare, held for the output checkers"
            )
        console.print(f"  next:      {_next_step(job)}", markup=False)


_WITH_OUTPUTS = {"awaiting_review", "released", "partially_released", "returned", "rejected"}
_FETCHABLE = {"released", "partially_released"}
_VOTED = {"approve": "approved", "reject": "rejected", "return": "returned it for changes"}


def _print_votes(view: RequestView, output: str, indent: str) -> None:
    """The checkers' decisions on `output`, with their comments, once the request is
    decided (before that, a second checker's review stays independent of the first's,
    and the author sees none: review.visible_reviews)."""
    if view.job.state.value == "awaiting_review":
        return
    for vote in view.reviews:
        if vote.output == output:
            said = _VOTED.get(vote.decision.value, vote.decision.value)
            console.print(f"{indent}{vote.checker} {said}: ", end="")
            console.print(vote.comment, markup=False, highlight=False)


def _next_step(job: Job) -> str:
    """What the researcher can do next with a job that has outputs."""
    state = job.state.value
    if state in _FETCHABLE:
        return f"fetch the released files: tre outputs {job.id} --to DIR"
    if state == "returned":
        return "the checkers returned it: change the job as their comments say, and submit it again"
    if state == "rejected":
        return "nothing was released; the checkers' comments say why"
    return "two output checkers review it; nothing can be fetched until they release it"


def _job_table(found: list[Job]) -> None:
    table = Table("id", "state", "project", "submitter", "title", "updated")
    for j in found:
        table.add_row(
            str(j.id),
            styled(j.state.value),
            j.project,
            j.submitter,
            j.title,
            f"{j.updated_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@click.command()
@click.argument("job_id", type=int)
@click.option("--tail", type=int, default=200, show_default=True)
@click.option(
    "--held",
    is_flag=True,
    help="the job's own log, held for output checkers (checkers and admins; audited)",
)
@click.pass_context
def logs(ctx: click.Context, job_id: int, tail: int, held: bool) -> None:
    """A job's logs: tre's status lines (never data); --held: the job's own log."""
    from tre.service import jobs

    if (client := remote(ctx)) is not None:
        with client:
            click.echo(client.job_logs(job_id, tail, held=held))
        return
    with session(ctx) as s:
        click.echo(jobs.job_logs(s, job_id, tail, held=held))


@click.command()
@click.argument("job_id", type=int)
@click.pass_context
def cancel(ctx: click.Context, job_id: int) -> None:
    """Cancel a queued or running job."""
    from tre.service import jobs

    if (client := remote(ctx)) is not None:
        with client:
            job = client.cancel_job(job_id)
    else:
        with session(ctx) as s:
            job = jobs.cancel_job(s, job_id)
    console.print(f"Job [bold]{job.id}[/] is {styled(job.state.value)}")


@click.command()
@click.option("--once", is_flag=True, help="Run every queued job to its end, then exit.")
@click.option(
    "--interval", type=float, default=2.0, show_default=True, help="Seconds between passes."
)
@click.option(
    "--max-running",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Jobs running at the same time.",
)
@click.pass_context
def run(ctx: click.Context, once: bool, interval: float, max_running: int) -> None:
    """The dispatcher: start queued jobs, watch them, check their outputs."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    from tre.service import jobs
    from tre.service.dispatcher import Dispatcher
    from tre.service.preflight import check_can_start

    stop = {"now": False}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)

    def on_event(job: Job, what: str) -> None:
        console.print(f"job {job.id} ({job.title}): {styled(what)}")
        if job.reason and what in ("failed", "cancelled"):
            console.print(f"  {job.reason}", markup=False)

    with (
        session(ctx) as s,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bars,
    ):
        # A host where a job cannot start would fail every job it is given: refuse now.
        check_can_start(s)
        dispatcher = Dispatcher(s, max_running=max_running, on_event=on_event)
        if not once:
            console.print("dispatcher running; Ctrl-C to stop")
        shown: dict[tuple[int, str], TaskID] = {}

        def show_progress() -> None:
            """One bar per step of each running job, from the job's progress file."""
            running = {j.id: j for j in jobs.list_running(s)}
            for (job_id, step), task in list(shown.items()):
                if job_id not in running:
                    bars.remove_task(task)
                    del shown[(job_id, step)]
            for job in running.values():
                for step, p in jobs.progress_of(s, job).items():
                    key = (job.id, step)
                    if key not in shown:
                        shown[key] = bars.add_task(f"job {job.id} {step}", total=p["total"])
                    bars.update(shown[key], completed=p["done"], total=p["total"])

        dispatcher.run(
            once=once,
            interval=interval,
            should_stop=lambda: stop["now"],
            after_tick=show_progress,
        )


@click.command()
@click.argument("job_id", type=int, required=False)
@click.option(
    "--to",
    "destination",
    type=click.Path(file_okay=False, path_type=Path),
    help="Fetch the released files of JOB_ID into this folder.",
)
@click.pass_context
def outputs(ctx: click.Context, job_id: int | None, destination: Path | None) -> None:
    """Your released outputs; with JOB_ID --to DIR, fetch them."""
    if (client := remote(ctx)) is not None:
        with client:
            _remote_outputs(client, job_id, destination)
        return
    from tre.service import job_queries, request_view  # read-only: no engine loaded

    with session(ctx) as s:
        if job_id is None:
            released = [
                j
                for j in job_queries.list_jobs(s, everything=True)
                if j.state.value in ("released", "partially_released")
            ]
            _job_table(released)
            return
        if destination is None:
            _print_request(request_view.show(s, job_id))
            return
        from tre.service import review

        written = review.fetch(s, job_id, destination)
    for path in written:
        console.print(f"  {path}")
    console.print(f"Fetched {len(written)} file(s) and the manifest into {destination}")


def _print_request(view: RequestView) -> None:
    """A job's outputs, the checkers' votes once decided, and what to do next."""
    for o in view.request.outputs:
        console.print(f"{o.name} ({o.kind}): {styled(o.sdc_status.value)}")
        _print_votes(view, o.name, "  ")
    step = _next_step(view.job)
    console.print(step[0].upper() + step[1:], markup=False)


def _remote_outputs(client: Client, job_id: int | None, destination: Path | None) -> None:
    """`tre outputs` through a server."""
    if job_id is None:
        released = [
            j
            for j in client.list_jobs(everything=True)
            if j.state.value in ("released", "partially_released")
        ]
        _job_table(released)
        return
    if destination is None:
        _print_request(client.show(job_id))
        return
    written = client.fetch(job_id, destination)
    for path in written:
        console.print(f"  {path}")
    console.print(f"Fetched {len(written)} file(s) and the manifest into {destination}")
