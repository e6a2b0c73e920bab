"""Job scripts are rendered by pure functions: their text is checked here, no cluster."""

import re
from pathlib import Path

import pytest
import yaml

from slurm.errors import ProfileError
from slurm.profiles import SiteProfile, load_profile, profile_dir
from slurm.scripts import render_runner_script
from tre.models import Resources, SlurmPlacement

JOB_DIR = Path("/srv/tre/jobs/000042")


def render(profile: SiteProfile, placement: SlurmPlacement | None = None, **resources) -> str:
    return render_runner_script(
        name="tre-abc123-42",
        job_dir=JOB_DIR,
        resources=Resources(
            **({"workers": 3, "cores": 4, "memory": "8GiB", "walltime": "2h"} | resources)
        ),
        profile=profile,
        placement=profile.placement_for("lcr-health", placement or SlurmPlacement()),
        python="/opt/tre/venv/bin/python",
    )


def sbatch_options(script: str) -> dict[str, str]:
    return dict(re.findall(r"^#SBATCH --([\w-]+)(?:=(\S*))?$", script, flags=re.M))


def test_one_allocation_holds_the_scheduler_the_engine_and_every_worker():
    options = sbatch_options(render(load_profile("local-test")))
    assert options["ntasks"] == "5"  # 3 workers + scheduler + engine
    assert options["cpus-per-task"] == "4"
    # 3 workers x 8GiB, plus 1GiB each for scheduler and engine, over 5 x 4 CPUs.
    assert options["mem-per-cpu"] == "1332M"
    assert options["time"] == "02:00:00"
    assert options["job-name"] == "tre-abc123-42"
    assert options["output"] == f"{JOB_DIR}/slurm-%j.out"
    assert "no-requeue" in options


def test_the_project_maps_to_its_account_and_the_profile_defaults_apply():
    options = sbatch_options(render(load_profile("local-test")))
    assert options["account"] == "tre-lcr-health"
    assert options["partition"] == "debug"
    assert "qos" not in options and "exclusive" not in options


def test_a_project_s_own_placement_wins_within_the_allowed_partitions():
    profile = load_profile("local-test")
    options = sbatch_options(
        render(profile, SlurmPlacement(account="nhs-1", partition="long", qos="high"))
    )
    assert (options["account"], options["partition"], options["qos"]) == ("nhs-1", "long", "high")
    with pytest.raises(ProfileError, match="not one this site lets tre use"):
        render(profile, SlurmPlacement(partition="gpu"))


def test_the_script_runs_every_task_through_srun_and_wipes_scratch_on_exit():
    script = render(load_profile("local-test"))
    assert (
        "srun --kill-on-bad-exit=0 /opt/tre/venv/bin/python -m slurm.launch "
        f"{JOB_DIR} --cluster slurm-runner"
    ) in script
    assert 'export TRE_JOB_SCRATCH="/tmp/tre-abc123-42-$SLURM_JOB_ID"' in script
    assert "trap wipe_scratch EXIT" in script
    assert f"touch {JOB_DIR}/scratch-wiped" in script
    assert "export POLARS_MAX_THREADS=4" in script


def filled_template() -> dict:
    """hartree-style.yaml with its placeholders filled in as a site would."""
    text = (profile_dir() / "hartree-style.yaml").read_text()
    values = {
        "<tre-partition>": "tre",
        "<tre-highmem>": "tre-himem",
        "<site-prefix>": "hpc",
        "<tre-qos>": "tre_normal",
        "<node-feature>": "nvme",
        "<python-module>": "python/3.11",
        "<service-node-address>": "10.1.0.5",
        "<outside-address>": "www.example.org",
    }
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return yaml.safe_load(text)


def test_the_hartree_style_template_renders_once_filled_in(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(filled_template()))
    profile = load_profile(path)
    script = render(profile)
    options = sbatch_options(script)
    assert options["account"] == "hpc-lcr-health"
    assert options["qos"] == "tre_normal"
    assert "exclusive" in options
    assert "#SBATCH --constraint=nvme" in script
    assert "module load python/3.11" in script
    assert script.index("module purge") < script.index("srun ")
    assert profile.interface == "ib0" and profile.tls


def test_the_unfilled_template_names_every_placeholder():
    with pytest.raises(ProfileError, match="placeholders") as info:
        load_profile("hartree-style")
    text = "\n".join(info.value.reasons)
    for field in ("partition", "account", "qos", "prologue[1]"):
        assert field in text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("partition", "debug\n#SBATCH --uid=0"),
        ("qos", "a b"),
        ("prologue", ["ok", "x\ny"]),
        ("sbatch_extra", ["--x\n--y"]),
    ],
)
def test_values_that_could_inject_sbatch_lines_are_refused(tmp_path, field, value):
    data = {"name": "evil", field: value}
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileError, match="not valid"):
        load_profile(path)


def test_an_unknown_profile_lists_the_shipped_ones():
    with pytest.raises(ProfileError) as info:
        load_profile("nosuch")
    assert "local-test" in (info.value.fix or "")


def test_unknown_fields_in_a_profile_are_refused(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: x\npartiton: debug\n")
    with pytest.raises(ProfileError, match="not valid") as info:
        load_profile(path)
    assert any("partiton" in r for r in info.value.reasons)


def test_python_steps_run_first_in_sandboxes_of_their_own_whatever_their_exit_status():
    profile = load_profile("local-test")
    script = render_runner_script(
        name="tre-abc123-42",
        job_dir=JOB_DIR,
        resources=Resources(workers=2, cores=1, memory="1GiB", walltime="10m"),
        profile=profile,
        placement=profile.placement_for("lcr-health", SlurmPlacement()),
        python="/opt/tre/venv/bin/python",
        sandboxed=["sandbox", "engine phase"],
        code_first=["sandbox", "code phase"],
    )
    lines = script.splitlines()
    code = lines.index("srun --kill-on-bad-exit=0 sandbox 'code phase'")
    engine = lines.index("srun --kill-on-bad-exit=0 sandbox 'engine phase'")
    assert lines.index("trap wipe_scratch EXIT") < code < engine
    assert "set -uo pipefail" in lines and "set -e" not in script  # the engine always runs


def test_a_profile_that_submits_as_the_job_user_needs_the_key_gateway(tmp_path):
    values = filled_template() | {"submit_via_sudo": True}
    values.pop("key_gateway")
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert "key_gateway" in info.value.render()
    assert load_profile("local-nodes").submit_via_sudo


def test_a_job_user_s_script_writes_its_log_and_marker_in_its_own_folder(tmp_path):
    profile = load_profile("local-nodes")
    script = render_runner_script(
        name="tre-x-7",
        job_dir=Path(JOB_DIR),
        resources=Resources(workers=2, cores=1, memory="1GiB", walltime="10m"),
        profile=profile,
        placement=profile.placement_for("p", SlurmPlacement()),
        python="/usr/bin/python3",
        log_dir=Path(JOB_DIR) / "slurm",
    )
    assert f"#SBATCH --output={JOB_DIR}/slurm/slurm-%j.out" in script
    assert f"touch {JOB_DIR}/slurm/scratch-wiped" in script
