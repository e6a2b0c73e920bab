"""A stored job's spec, parsed once: `spec_of(job)`.

`Job.spec` is the JSON the researcher submitted, validated then (`jobs.spec.parse_spec`)
and stored; the service reads it as a `JobSpec` through here only, never as a raw dict,
and does not validate it again on every dispatcher pass. The cache is keyed by the job
and its spec's own text (not the stored hash, which a row edited outside tre would not
match), so a changed spec is parsed afresh, and fails there if it no longer validates.
Callers read what they get and change nothing in it (it is shared).
"""

from __future__ import annotations

import json
from collections import OrderedDict

from jobs.spec import JobSpec
from tre.models import Job

MOST = 512  # specs kept: far more than jobs active at once
_parsed: OrderedDict[tuple[int, str], JobSpec] = OrderedDict()


def spec_of(job: Job) -> JobSpec:
    """`job`'s spec as a JobSpec, parsed on first use."""
    key = (job.id, json.dumps(job.spec, sort_keys=True))
    found = _parsed.get(key)
    if found is None:
        found = JobSpec.model_validate(job.spec)
        _parsed[key] = found
        if len(_parsed) > MOST:
            _parsed.popitem(last=False)
    else:
        _parsed.move_to_end(key)
    return found
