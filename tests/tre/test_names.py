import pytest

from tre.names import check_name


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", "A-project", "1abc", "x" * 64, "a b", "é"])
def test_object_names_that_could_escape_a_path_or_html_are_refused(bad):
    with pytest.raises(ValueError, match="not allowed"):
        check_name(bad, "object")


@pytest.mark.parametrize("bad", ["1col", "a-b", "a;drop", "", "a.b"])
def test_column_names_are_identifiers(bad):
    with pytest.raises(ValueError, match="letters, digits"):
        check_name(bad, "column")


def test_good_names_pass_unchanged():
    assert check_name("lcr-health_2026", "object") == "lcr-health_2026"
    assert check_name("Age_Band", "column") == "Age_Band"
    assert check_name("r.smith", "person") == "r.smith"
