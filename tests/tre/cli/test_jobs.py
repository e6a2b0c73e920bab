"""`tre status`: one word per meaning (issue 27). A job refused at submission and a job
whose outputs the checkers rejected read differently, in the list and in detail."""

from __future__ import annotations

from tests.conftest import write_spec
from tests.tre.factories import SPEC, refused_at_submission, rejected_at_review


def test_a_refused_job_and_a_job_with_rejected_outputs_show_different_words(session_as, cli):
    refused = refused_at_submission(session_as("olga"))
    rejected = rejected_at_review(session_as("rita"), session_as("carl"), session_as("chen"))

    listed = cli("status", "--all", who="ada")
    assert listed.code == 0, listed.err
    rows = {line.split()[1]: line.split()[3] for line in listed.out.splitlines()[3:-1]}
    assert rows == {str(refused.id): "refused", str(rejected.id): "rejected"}

    one = cli("status", str(refused.id), who="olga")
    assert one.code == 0, one.err
    assert "state:     refused" in one.out
    assert "olga is not a member of project" in one.out
    assert "output" not in one.out  # it never ran: nothing for the checkers

    other = cli("status", str(rejected.id), who="rita")
    assert other.code == 0, other.err
    assert "state:     rejected" in other.out
    assert "carl rejected: small cells" in other.out
    assert "nothing was released; the checkers' comments say why" in other.out


def test_submitting_a_job_the_approvals_do_not_allow_says_it_was_refused(cli, tmp_path):
    result = cli("submit", write_spec(tmp_path, SPEC), who="olga")
    assert result.code == 4
    assert "job 1 was refused" in result.err
    assert "rejected" not in result.err
