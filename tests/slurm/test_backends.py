"""What the Slurm backends refuse before anything reaches sbatch."""

from pathlib import Path

import pytest

from slurm import sandbox
from slurm.backend import Submission
from slurm.errors import ProfileError
from slurm.slurm_backends import SlurmClusterBackend, SlurmRunnerBackend
from tre.models import Resources, SlurmPlacement

PROFILES = Path(__file__).parents[2] / "slurm" / "profiles"


def _profile(tmp_path: Path, extra: str, backend: str = "slurm-runner") -> str:
    text = (PROFILES / "local-test.yaml").read_text().replace("backend: slurm-runner", "")
    path = tmp_path / "site.yaml"
    path.write_text(f"{text}\nbackend: {backend}\n{extra}")
    return str(path)


def _submission(tmp_path: Path) -> Submission:
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    plan = sandbox.Plan(
        job_dir=job_dir,
        out_dir=job_dir / "out",
        data=(),
        key_socket=None,
        uid=12345,
        gid=12345,
        memory_bytes=1 << 30,
        cpu_seconds=600,
    )
    return Submission(
        job_id=1,
        name="tre-test-1",
        job_dir=job_dir,
        project="p",
        resources=Resources(workers=1, cores=1, memory="1GiB"),
        placement=SlurmPlacement(),
        sandbox=plan,
    )


def test_a_sandboxed_job_is_never_sent_to_slurm_without_tls(tmp_path):
    backend = SlurmRunnerBackend(_profile(tmp_path, ""))
    site = tmp_path / "site.yaml"
    site.write_text(site.read_text().replace("tls: true", "tls: false"))
    with pytest.raises(ProfileError) as refused:
        backend.submit(_submission(tmp_path))
    assert "tls: true" in refused.value.render()
    assert not (tmp_path / "job" / "job.sbatch").exists()


def test_slurm_cluster_in_a_sandboxed_home_needs_the_key_gateway(tmp_path):
    backend = SlurmClusterBackend(_profile(tmp_path, "", backend="slurm-cluster"))
    with pytest.raises(ProfileError) as refused:
        backend.submit(_submission(tmp_path))
    assert "key_gateway" in refused.value.render()


def test_scheduler_ports_must_be_a_range_of_unprivileged_ports(tmp_path):
    from slurm.profiles import load_profile

    with pytest.raises(ProfileError) as refused:
        load_profile(_profile(tmp_path, "scheduler_ports: 9000-8000\n"))
    assert "scheduler_ports" in refused.value.render()
    assert load_profile("local-nodes-cluster").port_range() == (7650, 7665)
