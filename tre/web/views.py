"""What the API and the pages both show, gathered through the service layer.

Every function here first asks a service function (which applies the policies), and only
then reads files from the home (a disclosure report, a release manifest), exactly as
the CLI prints paths after `review.show`. Nothing here decides who may see what.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policies.access import raise_if, review_refusals
from tre.errors import NotFound, PermissionDenied
from tre.models import Job, JobState
from tre.service import jobs, review
from tre.service.review import RequestView
from tre.service.session import Session
from tre.web.report_view import OutputView, output_views
from tre.web.schemas import RiskOut

RELEASED = (JobState.RELEASED, JobState.PARTIALLY_RELEASED)
PREVIOUS_RELEASES_SHOWN = 5


def read_report(session: Session, view: RequestView) -> dict[str, Any]:
    """The request's disclosure report (report.json), or {} if it cannot be read."""
    path = session.home.job_dir(view.job.id) / view.request.report_json
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def risk_of(report: Mapping[str, Any], outputs: int) -> RiskOut:
    """The report in brief: its overall status and how many cells fail or need review."""
    failing = review_cells = 0
    for output in report.get("outputs") or []:
        if not isinstance(output, Mapping):
            continue
        for cell in output.get("cells") or []:
            if isinstance(cell, Mapping):
                failing += cell.get("status") == "fail"
                review_cells += cell.get("status") == "review"
    status = report.get("status")
    return RiskOut(
        status=status if isinstance(status, str) else "unknown",
        outputs=outputs,
        failing_cells=failing,
        review_cells=review_cells,
    )


def reviewable(session: Session, job_id: int) -> RequestView:
    """The request of `job_id` for a checker who may review it (never its author)."""
    view = review.show(session, job_id)
    raise_if(
        review_refusals(session.person(), view.job),
        f"you cannot review the outputs of job {job_id}",
        fix="another output checker, who did not submit the job, must review it",
    )
    return view


def ready_to_release(view: RequestView) -> bool:
    """Whether every output has the reviews it needs (the service decides at release)."""
    return all(count >= review.REVIEWS_NEEDED for count in view.counts.values())


@dataclass
class PreviousRelease:
    """An earlier release of the same project, for a checker to compare against."""

    job: Job
    manifest: dict[str, Any]
    report: dict[str, Any]

    @property
    def released_outputs(self) -> list[str]:
        """The outputs that were released."""
        return sorted({str(f.get("output")) for f in self.manifest.get("files", [])})

    @property
    def views(self) -> dict[str, OutputView]:
        """The released outputs as the report shows them."""
        return output_views(self.report)


def previous_releases(session: Session, job: Job) -> list[PreviousRelease]:
    """The newest releases of `job`'s project, other than `job` itself."""
    found = [
        j
        for j in jobs.list_jobs(session, everything=True)
        if j.project == job.project and j.state in RELEASED and j.id != job.id
    ]
    shown = []
    for earlier in sorted(found, key=lambda j: j.updated_at, reverse=True):
        try:
            view = reviewable(session, earlier.id)
        except (NotFound, PermissionDenied):
            continue  # e.g. an earlier job this checker submitted: not theirs to see here
        manifest_path = session.home.release_dir(earlier.id) / "manifest.json"
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            continue
        shown.append(PreviousRelease(earlier, manifest, read_report(session, view)))
        if len(shown) == PREVIOUS_RELEASES_SHOWN:
            break
    return shown


def released_files(session: Session, job_id: int) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and files of a release, fetched through `review.fetch` (which checks
    who may have them, checks every sha256 and records the fetch in the audit log)."""
    with tempfile.TemporaryDirectory(prefix="tre-fetch-") as folder:
        target = Path(folder)
        written = review.fetch(session, job_id, target)
        files = {str(p.relative_to(target)): p.read_bytes() for p in written}
        manifest = json.loads((target / f"manifest-{job_id}.json").read_text())
    return manifest, files


def release_zip(session: Session, job_id: int) -> bytes:
    """A release as one zip: its files and manifest-<job>.json."""
    manifest, files = released_files(session, job_id)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(files.items()):
            archive.writestr(name, data)
        archive.writestr(f"manifest-{job_id}.json", json.dumps(manifest, indent=2))
    return buffer.getvalue()
