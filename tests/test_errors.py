"""Domain errors: English details for the API, the same message in the reader's language for pages."""

from __future__ import annotations

import json

from riderwatch.errors import N_, Conflict, DomainError, InvalidInput, TooManyRequests, problem_response
from riderwatch.i18n import translations

CATALOGUE = {
    "no zone %(code)r": "没有编号为 %(code)r 的区域",
    "the task %(name)s ended": "巡逻任务 %(name)s 已结束",
    "ended": "已结束",
}


def _gettext(message: str) -> str:
    return CATALOGUE.get(message, message)


def test_detail_is_english_and_translated_fills_the_same_parameters() -> None:
    exc = InvalidInput(N_("no zone %(code)r"), code="Z-9")
    assert exc.detail == "no zone 'Z-9'"
    assert str(exc) == exc.detail
    assert exc.message == "no zone %(code)r"
    assert exc.params == {"code": "Z-9"}
    assert exc.translated(_gettext) == "没有编号为 'Z-9' 的区域"


def test_parameters_are_never_translated() -> None:
    # A rider named like a catalogued word keeps their name.
    exc = Conflict(N_("the task %(name)s ended"), name="ended")
    assert exc.detail == "the task ended ended"
    assert exc.translated(_gettext) == "巡逻任务 ended 已结束"


def test_a_message_missing_from_the_catalogue_stays_english() -> None:
    exc = InvalidInput(N_("no rider %(id)d"), id=7)
    assert exc.translated(_gettext) == "no rider 7"


def test_a_plain_string_works_as_before_even_with_a_percent_sign() -> None:
    exc = DomainError("at most 100% of the zone")
    assert exc.detail == exc.translated(_gettext) == "at most 100% of the zone"
    assert exc.params == {} and exc.extra == {}


def test_keywords_the_message_does_not_name_are_extra_problem_fields() -> None:
    exc = TooManyRequests(N_("too many failed logins for %(username)r"), username="wang", retry_after=600)
    assert exc.params == {"username": "wang"}
    assert exc.extra == {"retry_after": 600}
    res = problem_response(exc, instance="/api/login")
    body = json.loads(bytes(res.body))
    assert body["detail"] == "too many failed logins for 'wang'"
    assert body["retry_after"] == 600 and "username" not in body
    assert res.headers["retry-after"] == "600"
    legacy = InvalidInput("bad rows", errors=[{"row": 2}])
    assert legacy.extra == {"errors": [{"row": 2}]} and legacy.detail == "bad rows"


def test_the_real_catalogues() -> None:
    exc = InvalidInput(N_("the window may span at most %(days)d days"), days=7)
    assert exc.translated(translations("zh").gettext) == "时间窗口最长 7 天"
    assert exc.translated(translations("en").gettext) == exc.detail == "the window may span at most 7 days"
