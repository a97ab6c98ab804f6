"""Alerts as CAP 1.2 XML (OASIS Common Alerting Protocol) and the Atom index of the public ones.

CAP's dateTime has no "Z" and no fractions of a second (2026-12-07T18:30:00+08:00); a polygon is a
closed ring of at least four "lat,lon" pairs; a circle is "lat,lon radius-in-km". Each version of an
alert is its own CAP message, identified by `riderwatch-alert-{id}`; an Update or Cancel names every
earlier version in <references> ("sender,identifier,sent" each).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from lxml import etree

from riderwatch.models import Alert

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_TYPE = "application/cap+xml"
SENDER = "riderwatch"


def cap_time(value: datetime, zone: ZoneInfo) -> str:
    return value.astimezone(zone).replace(microsecond=0).isoformat()


def identifier(alert: Alert) -> str:
    return f"riderwatch-alert-{alert.id}"


def _sub(parent: etree._Element, name: str, text: str) -> etree._Element:
    node = etree.SubElement(parent, f"{{{CAP_NS}}}{name}")
    node.text = text
    return node


def _polygon(ring: list[list[float]]) -> str:
    return " ".join(f"{lat:.6f},{lon:.6f}" for lon, lat in ((p[0], p[1]) for p in ring))


def cap_document(alert: Alert, earlier: list[Alert], *, sender_name: str, zone: ZoneInfo) -> bytes:
    root = etree.Element(f"{{{CAP_NS}}}alert", nsmap={None: CAP_NS})
    _sub(root, "identifier", identifier(alert))
    _sub(root, "sender", SENDER)
    _sub(root, "sent", cap_time(alert.sent_at, zone))
    _sub(root, "status", alert.status)
    _sub(root, "msgType", alert.msg_type)
    _sub(root, "scope", alert.scope)
    if earlier:
        _sub(root, "references", " ".join(f"{SENDER},{identifier(a)},{cap_time(a.sent_at, zone)}" for a in earlier))
    languages = [("zh-CN", alert.headline, alert.description, alert.instruction)]
    if alert.headline_en:
        languages.append(("en-US", alert.headline_en, alert.description_en, alert.instruction_en))
    for language, headline, description, instruction in languages:
        info = _sub(root, "info", "")
        info.text = None
        _sub(info, "language", language)
        _sub(info, "category", alert.category)
        _sub(info, "event", alert.event)
        _sub(info, "urgency", alert.urgency)
        _sub(info, "severity", alert.severity)
        _sub(info, "certainty", alert.certainty)
        _sub(info, "effective", cap_time(alert.effective, zone))
        _sub(info, "expires", cap_time(alert.expires, zone))
        _sub(info, "senderName", sender_name)
        _sub(info, "headline", headline)
        if description:
            _sub(info, "description", description)
        if instruction:
            _sub(info, "instruction", instruction)
        if alert.polygon is not None or alert.circle_lat is not None:
            area = _sub(info, "area", "")
            area.text = None
            _sub(area, "areaDesc", alert.area_desc or headline)
            if alert.polygon is not None:
                for ring in alert.polygon["coordinates"][:1]:
                    _sub(area, "polygon", _polygon(ring))
            elif alert.circle_lat is not None and alert.circle_lon is not None and alert.circle_radius_m is not None:
                _sub(
                    area, "circle", f"{alert.circle_lat:.6f},{alert.circle_lon:.6f} {alert.circle_radius_m / 1000:.3f}"
                )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def atom_feed(alerts: list[Alert], *, base_url: str, updated: datetime, title: str, zone: ZoneInfo) -> bytes:
    """An Atom feed linking each alert's CAP document."""

    def sub(parent: etree._Element, name: str, text: str | None = None, **attrs: str) -> etree._Element:
        node = etree.SubElement(parent, f"{{{ATOM_NS}}}{name}", attrib=attrs)
        if text is not None:
            node.text = text
        return node

    feed = etree.Element(f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS})
    sub(feed, "id", f"{base_url}/alerts/feed.atom")
    sub(feed, "title", title)
    sub(feed, "updated", cap_time(updated, zone))
    sub(feed, "link", rel="self", href=f"{base_url}/alerts/feed.atom", type="application/atom+xml")
    author = sub(feed, "author")
    sub(author, "name", SENDER)
    for alert in alerts:
        entry = sub(feed, "entry")
        sub(entry, "id", f"{base_url}/alerts/{alert.id}.cap")
        sub(entry, "title", alert.headline)
        sub(entry, "updated", cap_time(alert.sent_at, zone))
        if alert.description:
            sub(entry, "summary", alert.description)
        sub(entry, "link", rel="alternate", href=f"{base_url}/alerts/{alert.id}.cap", type=CAP_TYPE)
    return etree.tostring(feed, xml_declaration=True, encoding="UTF-8", pretty_print=True)
