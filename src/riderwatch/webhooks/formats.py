"""What a delivery looks like on the wire for each kind of receiver, and whether the receiver took it.

- `json`: RiderWatch's own JSON for any system: {"id", "kind", "created_at", "data", "text"}, signed with
  HMAC-SHA256 over "<timestamp>.<body>" in `X-RiderWatch-Signature: sha256=<hex>`, the timestamp (Unix
  seconds) in `X-RiderWatch-Timestamp`; the receiver recomputes it with the shared secret and refuses old
  timestamps. Any 2xx answer is taken.
- `wecom`: a WeCom (企业微信) group robot: {"msgtype": "text", "text": {"content"}}; taken when it answers
  errcode 0.
- `dingtalk`: a DingTalk (钉钉) custom robot: the same text message; with a signing secret, `timestamp`
  (Unix milliseconds) and `sign` = Base64(HMAC-SHA256(secret, "<timestamp>\\n<secret>")) are added to the
  address; taken when it answers errcode 0.
- `feishu`: a Feishu (飞书) custom robot: {"msg_type": "text", "content": {"text"}}; with a signing secret,
  `timestamp` (Unix seconds) and `sign` = Base64(HMAC-SHA256 keyed with "<timestamp>\\n<secret>" over
  nothing) in the body; taken when it answers code 0.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode


@dataclass(frozen=True)
class Outgoing:
    url: str
    headers: dict[str, str]
    body: bytes


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def json_signature(secret: str, timestamp: int, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(secret: str, timestamp: int) -> str:
    digest = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def build(
    fmt: str,
    *,
    url: str,
    secret: str,
    delivery_id: int,
    kind: str,
    data: dict[str, Any],
    text: str,
    created_at: datetime,
    now: datetime,
) -> Outgoing:
    """The request that delivers one event to a receiver of format `fmt`."""
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "RiderWatch-Webhook/1"}
    seconds = int(now.timestamp())
    if fmt == "json":
        body = _json(
            {"id": delivery_id, "kind": kind, "created_at": created_at.isoformat(), "data": data, "text": text}
        )
        headers |= {
            "X-RiderWatch-Delivery": str(delivery_id),
            "X-RiderWatch-Event": kind,
            "X-RiderWatch-Timestamp": str(seconds),
        }
        if secret:
            headers["X-RiderWatch-Signature"] = json_signature(secret, seconds, body)
        return Outgoing(url, headers, body)
    if fmt == "wecom":
        return Outgoing(url, headers, _json({"msgtype": "text", "text": {"content": text}}))
    if fmt == "dingtalk":
        if secret:
            ms = int(now.timestamp() * 1000)
            url = url + ("&" if "?" in url else "?") + urlencode({"timestamp": ms, "sign": dingtalk_sign(secret, ms)})
        return Outgoing(url, headers, _json({"msgtype": "text", "text": {"content": text}}))
    if fmt == "feishu":
        message: dict[str, Any] = {"msg_type": "text", "content": {"text": text}}
        if secret:
            message = {"timestamp": str(seconds), "sign": feishu_sign(secret, seconds), **message}
        return Outgoing(url, headers, _json(message))
    raise ValueError(f"unknown webhook format {fmt!r}")


def refusal(fmt: str, status: int, body: bytes) -> str | None:
    """Why the receiver did not take the delivery (None: it did). Group robots answer 200 with an error
    code in the body when they refuse (a wrong key or signature, a message too long, too many a minute)."""
    if not 200 <= status < 300:
        return f"HTTP {status}: {body[:200].decode(errors='replace')}".strip()
    if fmt == "json":
        return None
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        return f"not JSON: {body[:200].decode(errors='replace')}"
    if not isinstance(answer, dict):
        return f"unexpected answer: {body[:200].decode(errors='replace')}"
    code = answer.get("errcode") if fmt in ("wecom", "dingtalk") else answer.get("code", answer.get("StatusCode"))
    if code in (0, "0"):
        return None
    message = answer.get("errmsg") or answer.get("msg") or answer.get("StatusMessage") or ""
    return f"error {code}: {message}".strip()
