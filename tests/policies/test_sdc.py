"""Disclosure policy files: the packaged default, the TRE's own, per dataset and per
project; the precedence between them; every file recorded with its hash."""

import hashlib

import pytest

from disclosure import Protection, Rules
from policies.sdc import STRICTER, default_policy_path, layered_policy, load_sdc_policy
from tre.errors import InputError


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_packaged_default_holds_every_parameter_at_its_default(tmp_path):
    policy = layered_policy(tmp_path)
    assert policy.rules() == Rules()
    assert policy.protection() == Protection()
    assert set(policy.parameters) == set(STRICTER)
    assert [f.layer for f in policy.files] == ["packaged"]
    digest = hashlib.sha256(default_policy_path().read_bytes()).hexdigest()
    assert policy.record() == {
        "files": [{"layer": "packaged", "path": str(default_policy_path()), "sha256": digest}],
        "notes": [],
    }


def test_the_tres_own_policy_may_loosen_the_packaged_defaults(tmp_path):
    write(tmp_path / "policies" / "sdc.yaml", "threshold: 5\nround_to: 5\n")
    policy = layered_policy(tmp_path)
    assert policy.rules().threshold == 5
    assert policy.protection().round_to == 5
    assert policy.notes == []
    assert policy.path == str(tmp_path / "policies" / "sdc.yaml")


def test_dataset_and_project_policies_only_tighten(tmp_path):
    folder = tmp_path / "policies"
    write(folder / "sdc.yaml", "threshold: 10\n")
    write(folder / "datasets" / "residents.yaml", "threshold: 15\ndominance_k: 0.95\n")
    write(folder / "projects" / "falls.yaml", "threshold: 5\nround_to: 5\nsuppress: true\n")
    policy = layered_policy(tmp_path, project="falls", datasets=["residents", "fire_incidents"])
    assert policy.rules().threshold == 15  # the dataset's, not the project's looser 5
    assert policy.rules().dominance_k == 0.9  # 0.95 is looser than 0.9: refused
    assert policy.protection().round_to == 5  # rounding tightens
    assert [f.layer for f in policy.files] == [
        "packaged",
        "tre",
        "dataset residents",
        "project falls",
    ]
    assert policy.notes == [
        "the dataset residents policy asks dominance_k: 0.95, looser than the 0.9 already "
        "required; the stricter value applies",
        "the project falls policy asks threshold: 5, looser than the 15 already required; "
        "the stricter value applies",
    ]
    # Only the layers that apply are read: another project sees none of this.
    other = layered_policy(tmp_path, project="other", datasets=["fire_incidents"])
    assert other.rules().threshold == 10
    assert [f.layer for f in other.files] == ["packaged", "tre"]


def test_layers_after_the_tre_do_not_depend_on_their_order(tmp_path):
    folder = tmp_path / "policies"
    write(folder / "datasets" / "a.yaml", "threshold: 12\nsame_value: fail\n")
    write(folder / "datasets" / "b.yaml", "threshold: 20\nzeros_disclosive: false\n")
    one = layered_policy(tmp_path, datasets=["a", "b"])
    two = layered_policy(tmp_path, datasets=["b", "a"])
    assert one.parameters == two.parameters
    assert one.rules().threshold == 20
    assert one.rules().same_value == "fail"
    assert one.rules().zeros_disclosive is True  # false would loosen the default


@pytest.mark.parametrize(
    ("name", "looser", "stricter"),
    [
        ("threshold", 5, 20),
        ("dominance_k", 0.95, 0.8),
        ("suppress", True, False),
        ("secondary", False, True),
        ("totals", True, False),
        ("redact_at_or_below", 0, 7),
        ("protection_level", 0, 10),
        ("few_values", 2, 5),  # checking more predictors value by value
        ("cell_key", False, True),  # noise differencing cannot remove
        ("cell_key_max_noise", 2, 4),
        ("cell_key_smallest", 0, 4),
        ("cell_key_p_stay", 0.5, 0.3),
    ],
)
def test_each_parameter_knows_its_stricter_direction(name, looser, stricter):
    assert STRICTER[name](looser, stricter) == stricter
    assert STRICTER[name](stricter, looser) == stricter


def test_a_bad_policy_file_names_the_file_and_every_problem(tmp_path):
    path = write(tmp_path / "policies" / "projects" / "falls.yaml", "treshold: 3\nround_to: 1\n")
    with pytest.raises(InputError) as caught:
        layered_policy(tmp_path, project="falls")
    text = str(caught.value)
    assert str(path) in text
    assert "unknown parameter 'treshold' (did you mean 'threshold'?)" in text
    assert "round_to is 1" in text


def test_invalid_yaml_and_non_mappings_are_refused(tmp_path):
    write(tmp_path / "policies" / "sdc.yaml", "threshold: [\n")
    with pytest.raises(InputError, match="not valid YAML"):
        layered_policy(tmp_path)
    write(tmp_path / "policies" / "sdc.yaml", "- threshold\n")
    with pytest.raises(InputError, match="must be a mapping"):
        layered_policy(tmp_path)


def test_an_empty_file_changes_nothing_but_is_recorded(tmp_path):
    write(tmp_path / "policies" / "sdc.yaml", "")
    policy = layered_policy(tmp_path)
    assert policy.rules() == Rules()
    assert [f.layer for f in policy.files] == ["packaged", "tre"]


def test_a_single_file_can_be_loaded_alone(tmp_path):
    policy = load_sdc_policy()
    assert policy.rules() == Rules()
    assert policy.sha256 == hashlib.sha256(default_policy_path().read_bytes()).hexdigest()
