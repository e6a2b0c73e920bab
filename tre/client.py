"""The CLI's client mode: the researchers', checkers' and admins' commands through a
`tre serve`.

`tre --server URL ...` (or TRE_SERVER, or `server:` in ~/.config/tre/client.yaml)
sends the commands to a server instead of opening a local home. The token comes from
TRE_TOKEN, or from a file only its owner can read: TRE_TOKEN_FILE, `token_file:` in
client.yaml, or ~/.config/tre/token. Never from the command line, where other users
and shell histories would see it; and it is never printed or logged.

Every method returns the same models the service layer does, so the CLI prints the same
thing either way, and a refusal comes back as the same TreError (message, reasons, fix).

Finding the server and the token is `tre.client_config`'s job.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import httpx
from pydantic_core import to_jsonable_python

from jobs.spec import JobSpec
from tre.client_config import read_token
from tre.errors import InputError, NotFound, PermissionDenied, PlatformError, StateError, TreError
from tre.models import (
    Decision,
    Job,
    OutputRecord,
    OutputRequest,
    Person,
    Project,
    ProjectState,
    Review,
)
from tre.service.review import RequestView

TIMEOUT_SECONDS = 120.0
_ERRORS: dict[str, type[TreError]] = {
    "InputError": InputError,
    "NotFound": NotFound,
    "PermissionDenied": PermissionDenied,
    "Unauthenticated": PermissionDenied,
    "LoginRequired": PermissionDenied,
    "StateError": StateError,
    "PlatformError": PlatformError,
}


def error_from(response: httpx.Response) -> TreError:
    """The TreError a server's error response describes."""
    try:
        body = response.json()["error"]
        kind = _ERRORS.get(str(body.get("kind")), TreError)
        return kind(
            str(body["message"]), reasons=list(body.get("reasons") or []), fix=body.get("fix")
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return PlatformError(
            f"the server answered HTTP {response.status_code} without an explanation",
            fix="check that --server points at a tre server",
        )


class Client:
    """A connection to a tre server, acting as the token's person."""

    def __init__(
        self, server: str, token: str, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.server = server.rstrip("/")
        self._http = httpx.Client(
            base_url=self.server,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "tre-cli"},
            timeout=TIMEOUT_SECONDS,
            transport=transport,
        )
        self._me: str | None = None

    @classmethod
    def connect(cls, server: str) -> Client:
        """A client of `server` with the token from the environment or the token file."""
        if not server.startswith(("http://", "https://")):
            raise InputError(
                f"the server address {server!r} is not a URL",
                fix="give it as http(s)://HOST:PORT, e.g. --server https://tre.example.ac.uk",
            )
        return cls(server, read_token())

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self._http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; a refusal raises the TreError it describes."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise PlatformError(
                f"cannot reach the tre server at {self.server}: {type(exc).__name__}: {exc}",
                fix="check --server (or TRE_SERVER) and that 'tre serve' is running there",
            ) from exc
        if response.is_success:
            return response
        raise error_from(response)

    # -- people ----------------------------------------------------------------------

    @property
    def actor(self) -> str:
        """Who the token belongs to."""
        if self._me is None:
            self._me = str(self.call("GET", "/api/whoami").json()["name"])
        return self._me

    def list_people(self) -> list[Person]:
        """Registered people you may see; as `tre.service.people.list_people`."""
        return [_person(p) for p in self.call("GET", "/api/people").json()]

    def register_person(
        self,
        *,
        name: str,
        full_name: str,
        roles: list[str],
        email: str = "",
        accredited_until: date | None = None,
    ) -> Person:
        """Register someone new (admins); as `tre.service.people.register_person`."""
        body = {
            "name": name,
            "full_name": full_name,
            "roles": roles,
            "email": email,
            "accredited_until": accredited_until,
        }
        return _person(self.call("POST", "/api/people", json=to_jsonable_python(body)).json())

    def update_person(
        self,
        name: str,
        *,
        roles: list[str] | None = None,
        accredited_until: date | None = None,
        active: bool | None = None,
    ) -> Person:
        """Change a registration (admins); what is None stays as it is."""
        wanted = {"roles": roles, "accredited_until": accredited_until, "active": active}
        body = {key: value for key, value in wanted.items() if value is not None}
        found = self.call("PATCH", f"/api/people/{_part(name)}", json=to_jsonable_python(body))
        return _person(found.json())

    def confirm_admin(self, name: str) -> Person:
        """Confirm NAME's admin role; as `tre.service.people.confirm_admin`."""
        return _person(self.call("POST", f"/api/people/{_part(name)}/confirm-admin").json())

    # -- projects --------------------------------------------------------------------

    def request_project(self, data: dict[str, Any]) -> Project:
        """Request a project from its YAML mapping; as `tre.service.projects.request_project`."""
        # YAML gives dates as dates; JSON wants them as ISO strings, which the server parses.
        found = self.call("POST", "/api/projects", json=to_jsonable_python(data))
        return Project.model_validate(found.json())

    def approve_project(self, name: str, *, expires: date | None = None) -> Project:
        """Approve (or renew) a project (admins)."""
        body = {"expires": expires.isoformat()} if expires is not None else None
        found = self.call("POST", f"/api/projects/{_part(name)}/approve", json=body)
        return Project.model_validate(found.json())

    def change_project_state(self, name: str, new: ProjectState, reason: str) -> Project:
        """Suspend, close or reject a project, with a reason (admins)."""
        body = {"state": new.value, "reason": reason}
        found = self.call("POST", f"/api/projects/{_part(name)}/state", json=body)
        return Project.model_validate(found.json())

    def list_projects(self) -> list[Project]:
        """Projects you may see."""
        return [Project.model_validate(p) for p in self.call("GET", "/api/projects").json()]

    def show_project(self, name: str) -> Project:
        """One project."""
        return Project.model_validate(self.call("GET", f"/api/projects/{_part(name)}").json())

    # -- jobs ------------------------------------------------------------------------

    def submit_job(self, spec: JobSpec, pickles: dict[str, bytes]) -> Job:
        """Submit a job; as `tre.service.jobs.submit_job`."""
        body = {
            "spec": spec.model_dump(mode="json"),
            "code": {name: base64.b64encode(data).decode() for name, data in pickles.items()},
        }
        return _job(self.call("POST", "/api/jobs", json=body).json())

    def list_jobs(self, *, everything: bool = False) -> list[Job]:
        """Your jobs, or every job you may see."""
        found = self.call("GET", "/api/jobs", params={"all": everything}).json()
        return [_job(j) for j in found]

    def job_detail(self, job_id: int) -> tuple[Job, dict[str, dict[str, int]], str]:
        """A job, its progress per step and what its backend says."""
        data = self.call("GET", f"/api/jobs/{job_id}").json()
        return _job(data["job"]), data["progress"], data["backend"]

    def job_logs(self, job_id: int, tail: int = 200, *, held: bool = False) -> str:
        """The last lines of a job's logs (`held`: its own log, for output checkers)."""
        params = {"tail": tail, "held": held}
        return str(self.call("GET", f"/api/jobs/{job_id}/logs", params=params).json()["text"])

    def cancel_job(self, job_id: int) -> Job:
        """Cancel a queued or running job."""
        return _job(self.call("POST", f"/api/jobs/{job_id}/cancel").json())

    def show(self, job_id: int) -> RequestView:
        """A job's outputs and the reviews you may see; as `tre.service.review.show`."""
        return _view(self.call("GET", f"/api/jobs/{job_id}/outputs").json())

    # -- reviews ---------------------------------------------------------------------

    def queue(self) -> list[RequestView]:
        """Requests awaiting review, oldest first."""
        return [_view(item) for item in self.call("GET", "/api/reviews").json()]

    def vote(
        self, job_id: int, outputs: list[str] | None, decision: Decision, comment: str
    ) -> list[Review]:
        """Record a vote on some or all outputs."""
        body = {"decision": decision.value, "comment": comment, "outputs": outputs}
        found = self.call("POST", f"/api/reviews/{job_id}/votes", json=body).json()
        return [Review.model_validate(r) for r in found]

    def release(self, job_id: int) -> Job:
        """Settle a reviewed request."""
        return _job(self.call("POST", f"/api/reviews/{job_id}/release").json())

    def fetch(self, job_id: int, destination: Path) -> list[Path]:
        """Download a job's released files into `destination`, checking every sha256
        against the manifest (as `tre.service.review.fetch` does locally)."""
        data = self.call("GET", f"/api/jobs/{job_id}/release").content
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            manifest = json.loads(archive.read(f"manifest-{job_id}.json"))
            entries = manifest.get("files", [])
            paths = [_safe_relative(str(e["path"])) for e in entries]
            clashes = [str(p) for p in paths if (destination / p).exists()]
            if clashes:
                raise InputError(
                    f"{destination} already has {', '.join(clashes)}",
                    fix="fetch into an empty folder (--to DIR)",
                )
            written = []
            for entry, relative in zip(entries, paths, strict=True):
                content = archive.read(str(entry["path"]))
                if hashlib.sha256(content).hexdigest() != entry["sha256"]:
                    raise StateError(
                        f"released file {entry['path']} does not match its manifest",
                        fix="fetch again; if it persists, tell the TRE administrators",
                    )
                target = destination / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
                written.append(target)
        (destination / f"manifest-{job_id}.json").write_text(json.dumps(manifest, indent=2))
        return written


def _safe_relative(path: str) -> Path:
    """A manifest path as a relative path that stays inside the destination."""
    parts = PurePosixPath(path).parts
    if not parts or PurePosixPath(path).is_absolute() or ".." in parts:
        raise PlatformError(
            f"the server's release manifest names an unsafe path {path!r}",
            fix="tell the TRE administrators",
        )
    return Path(*parts)


def _part(name: str) -> str:
    """A name as one path segment: a '/' or '?' in a mistyped name cannot reach another
    endpoint."""
    return quote(name, safe="")


def _person(data: dict[str, Any]) -> Person:
    # The API leaves out e-mail addresses and who registered whom; the CLI prints neither.
    return Person.model_validate(data)


def _job(data: dict[str, Any]) -> Job:
    return Job.model_validate({**data, "handle": {}})


def _view(data: dict[str, Any]) -> RequestView:
    job = _job(data["job"])
    outputs = [OutputRecord.model_validate(o) for o in data["outputs"]]
    request = OutputRequest(
        job_id=job.id,
        project=job.project,
        author=job.submitter,
        outputs=outputs,
        # The report's files stay on the server; checkers read it on the review page.
        report_json="",
        report_html="",
        report_markdown="",
    )
    reviews = [Review.model_validate(r) for r in data.get("reviews", [])]
    return RequestView(job, request, reviews, dict(data["counts"]), int(data.get("undeclared", 0)))
