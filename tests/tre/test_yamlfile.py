"""The strict YAML loader, and the files a person gives tre read through it."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import EXAMPLES
from tre.yamlfile import MAX_DEPTH, YamlError, load


def test_yaml_1_2_scalars_and_no_surprises():
    assert load("a: yes\nb: on\nc: 2:00\nd: 010\ne: true\nf: 1.5\ng: 2027-06-30") == {
        "a": "yes",
        "b": "on",
        "c": "2:00",  # never base 60
        "d": 10,  # never octal
        "e": True,
        "f": 1.5,
        "g": "2027-06-30",  # the field that reads it decides what a date is
    }
    assert load("on: x") == {"on": "x"}  # a key, not the boolean true


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("filter: a\nfilter: b\n", "line 2: 'filter' is given twice (first on line 1)"),
        ("1: x\n", "line 1: a key must be a name (text), not '1'"),
        ("null: x\n", "a key must be a name"),
        ("[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5), f"nested more than {MAX_DEPTH} levels"),
        ("a: [1, 2\n", "is not valid YAML: line 2, column 1"),
    ],
)
def test_what_is_refused_and_where(text, says):
    with pytest.raises(YamlError) as error:
        load(text, "job.yaml")
    assert says in str(error.value)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ("title: Café\n".encode("latin-1"), "is not UTF-8 text"),
        ("title: x\n".encode("utf-16"), "is UTF-16"),
        (b"a: " + b"x" * (1 << 20), "the most tre reads is"),
    ],
)
def test_bytes_that_are_not_utf_8_text_are_refused(data, says):
    with pytest.raises(YamlError) as error:
        load(data, "job.yaml")
    assert says in str(error.value) and "job.yaml" in str(error.value)
    assert load("\ufefftitle: Café\n".encode()) == {"title": "Café"}  # a BOM is fine


def test_a_spec_with_two_filters_or_a_bad_encoding_is_refused_by_submit(cli, tmp_path):
    spec = yaml.safe_load((EXAMPLES / "health_by_area.yaml").read_text())
    text = yaml.safe_dump(spec, sort_keys=False)
    twice = text.replace(
        "  filter: has_copd == true\n",
        "  filter: has_copd == true\n  filter: age_band == '0-15'\n",
    )
    assert twice != text
    (tmp_path / "twice.yaml").write_text(twice)
    (tmp_path / "latin.yaml").write_bytes(text.replace("COPD", "COPD – Café").encode("cp1252"))
    for name, says in (("twice.yaml", "'filter' is given twice"), ("latin.yaml", "not UTF-8")):
        result = cli("submit", tmp_path / name, who="rita")
        assert result.code == 2, (name, result.out, result.err)
        assert says in result.err and "internal error" not in result.err


def test_a_project_request_with_an_impossible_date_or_a_number_key(cli, tmp_path):
    request = yaml.safe_load((EXAMPLES / "project.yaml").read_text())
    request["name"] = "another-project"
    text = yaml.safe_dump(request, sort_keys=False)
    (tmp_path / "date.yaml").write_text(text.replace("2027-12-31", "2027-06-31"))
    (tmp_path / "key.yaml").write_text(text + "1: one\n")
    for name, says in (("date.yaml", "expires"), ("key.yaml", "a key must be a name")):
        result = cli("project", "request", tmp_path / name, who="rita")
        assert result.code == 2, (name, result.out, result.err)
        assert says in result.err and "internal error" not in result.err


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"\x01project: x\n", "line 1: it contains the character U+0001"),
        (b"project: x\ntitle: a\x07b\n", "line 2: it contains the character U+0007"),
        (
            b"project: x\n" + b"#\n" * 3000 + b"title: \x00\n",
            "line 3002: it contains the character U+0000",
        ),
    ],
)
def test_a_control_character_is_refused_by_line_not_a_crash(data, says):
    # Found by tests/tre/test_yamlfile_properties.py: PyYAML checks the characters when
    # its loader is made, outside what was caught, so `tre submit` ended in exit 70.
    with pytest.raises(YamlError) as error:
        load(data, "job.yaml")
    assert str(error.value).startswith("job.yaml is not valid YAML: " + says)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("memory: !!int\n", "line 1: '' cannot be read as !!int"),
        ("workers: !!int 0x\n", "line 1: '0x' cannot be read as !!int"),
        ("a: 1\nvalue: !!float .\n", "line 2: '.' cannot be read as !!float"),
        ("value: !!float\n", "line 1: '' cannot be read as !!float"),
        ("active: !!bool maybe\n", "line 1: 'maybe' cannot be read as !!bool"),
        ("expires: !!timestamp 2027-02-30\n", "line 1: '2027-02-30' cannot be read as !!timestamp"),
        ("quota: !!map [1]\n", "expected a mapping node, but found sequence"),
        ("!!set [1]\n", "expected a mapping node, but found sequence"),
        ("? [a, b]\n: 1\n", "line 1: a key must be a name (text), not a list"),
    ],
)
def test_an_explicit_tag_that_does_not_fit_is_refused_not_a_crash(text, says):
    # Found by tests/tre/test_yamlfile_properties.py: PyYAML's constructors raise
    # ValueError, IndexError, KeyError, AttributeError or TypeError for these, uncaught.
    with pytest.raises(YamlError) as error:
        load(text, "job.yaml")
    assert says in str(error.value)
