from policies.refusals import FIXES, MEANINGS, PROJECT_STATE_CODES, RefusalCode, hints, table
from tre.docs import STATES
from tre.models import ProjectState


def test_every_code_has_a_meaning_and_a_fix():
    assert set(MEANINGS) == set(RefusalCode)
    assert all(MEANINGS.values())
    for code in RefusalCode:
        assert hints([code], submitter="rita", project="p"), code


def test_every_hint_answers_a_code_and_is_shown_once():
    assert all(codes for _, codes in FIXES)
    assert len({hint for hint, _ in FIXES}) == len(FIXES)
    every = hints(list(RefusalCode) * 2, submitter="rita", project="p")
    assert len(every) == len(FIXES)


def test_every_state_but_approved_has_a_code():
    assert set(PROJECT_STATE_CODES) == set(ProjectState) - {ProjectState.APPROVED}


def test_the_generated_docs_list_every_code_with_its_meaning_and_fix():
    listed = STATES.read_text()
    assert table() in listed, "run 'make docs'"
    for code in RefusalCode:
        assert f"| `{code.value}` | {MEANINGS[code]} |" in table()
