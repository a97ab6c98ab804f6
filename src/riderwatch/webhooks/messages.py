"""What each event says, in words: the inbox shows a user's notices with these texts, and a webhook's
message is written from them in its channel's language when it is sent.

An event's data is language-neutral (ids, codes, times, names in both languages); the words are chosen
here, so a notice read in English and the same event in a Chinese duty chat say the same thing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from riderwatch.i18n import N_, translations

# The texts of the events a user is told of in their inbox (and on their own webhook).
NOTICE_TEXTS = {
    "clue_dispatched": N_("Clue #%(clue)d was dispatched to you."),
    "clue_escalated": N_("Clue #%(clue)d is overdue (escalation level %(level)d)."),
    "clue_verified": N_("Your clue #%(clue)d was verified and is being handled."),
    "clue_rejected": N_("Your clue #%(clue)d was not taken up: %(reason)s"),
    "clue_closed": N_("Your clue #%(clue)d was handled: %(outcome)s"),
    "alert": N_("Early warning: %(headline)s"),
    "feedback_assigned": N_("A rider's feedback #%(feedback)d is yours to answer."),
    "feedback_answered": N_("The police answered your feedback #%(feedback)d."),
}
# The texts of the events a party's duty group chat is told of.
PARTY_TEXTS = {
    "clue_dispatched": N_("Clue #%(clue)d (%(category)s) was dispatched to %(handler)s; deadline %(deadline)s."),
    "clue_escalated": N_("Clue #%(clue)d (%(category)s) is overdue since %(deadline)s: escalation level %(level)d."),
    "clue_closed": N_("Clue #%(clue)d (%(category)s) was closed: %(outcome)s"),
    "alert": N_("%(msg_type)s alert (%(severity)s): %(headline)s. Area: %(area)s. Valid until %(expires)s."),
    "sighting": N_("A rider answered alert #%(alert)d with a sighting: clue #%(clue)d."),
    "test": N_("A test message to “%(channel)s”: this channel is set up correctly."),
}
URGENT = N_("URGENT")
SEVERITIES = {
    "Extreme": N_("Extreme"),
    "Severe": N_("Severe"),
    "Moderate": N_("Moderate"),
    "Minor": N_("Minor"),
    "Unknown": N_("Unknown severity"),
}
SIGNED = N_("[RiderWatch] %(text)s")  # who is speaking in the chat
MSG_TYPES = {"Alert": N_("New"), "Update": N_("Updated"), "Cancel": N_("Cancelled")}


def _time(value: str | None, locale: str, timezone: str) -> str:
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


def _named(value: Any, locale: str) -> str:
    """A name given in both languages ({"zh", "en"}) in `locale`'s (Chinese when there is no English)."""
    if isinstance(value, dict):
        return str(value.get(locale) or value.get("zh") or "")
    return str(value or "")


def notice_text(kind: str, params: dict[str, Any], *, locale: str, clue_id: int | None = None) -> str:
    """A notice's text in the reader's language."""
    _ = translations(locale).gettext
    values = {"clue": clue_id or 0, "level": 0, "reason": "", "outcome": "", "headline": "", "feedback": 0, **params}
    text = _(NOTICE_TEXTS.get(kind, kind))
    return text % values if "%(" in text else text


def party_text(kind: str, data: dict[str, Any], *, locale: str, timezone: str) -> str:
    """A party event's text in `locale`."""
    _ = translations(locale).gettext
    values = {
        "clue": data.get("clue_id") or 0,
        "alert": data.get("alert_id") or 0,
        "category": _named(data.get("category"), locale),
        "handler": _named(data.get("handler"), locale),
        "deadline": _time(data.get("deadline"), locale, timezone),
        "expires": _time(data.get("expires"), locale, timezone),
        "level": data.get("level") or 0,
        "outcome": data.get("outcome") or "",
        "headline": _named(data.get("headline"), locale),
        "area": _named(data.get("area"), locale),
        "severity": _(SEVERITIES.get(str(data.get("severity")), SEVERITIES["Unknown"])),
        "msg_type": _(MSG_TYPES.get(str(data.get("msg_type")), MSG_TYPES["Alert"])),
        "channel": data.get("channel") or "",
    }
    text = _(PARTY_TEXTS[kind]) % values
    return f"[{_(URGENT)}] {text}" if data.get("urgent") else text


def message(kind: str, data: dict[str, Any], *, personal: bool, locale: str, timezone: str, base_url: str = "") -> str:
    """The whole message a webhook sends: the event's text, and the page to open when the station's address
    is known. Personal events carry the notice; party events their own data."""
    if personal:
        notice = data.get("notice") or {}
        text = notice_text(kind, notice.get("params") or {}, locale=locale, clue_id=notice.get("clue_id"))
        clue_id, alert_id = notice.get("clue_id"), notice.get("alert_id")
    else:
        text = party_text(kind, data, locale=locale, timezone=timezone)
        clue_id, alert_id = data.get("clue_id"), data.get("alert_id")
    text = translations(locale).gettext(SIGNED) % {"text": text}
    base = base_url.rstrip("/")
    if base and clue_id:
        text += f"\n{base}/clues/{clue_id}"
    elif base and alert_id:
        text += f"\n{base}/alerts/{alert_id}"
    return text
