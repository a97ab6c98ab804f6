"""Sending a run to the server over its public HTTP interface, as riders and platforms would.

Positions go in batches to POST /api/v1/tracking/pings, sent by the riders' platform accounts (one
request carries many riders) or, for a rider no platform account may send for, by the rider. The
feed learns which account speaks for which rider from the server's own answers (`other_platform`).
Riders go on and off duty with PUT /api/v1/me/duty, each switch dated with its simulated time
("at", as a phone that was offline sends it), and report clues with POST /api/v1/clues under an
Idempotency-Key, so a retried report never makes a second clue. Transient failures (connection
errors, 429, 5xx) are retried with exponential backoff; every request is safe to repeat.

The feed never sends a point before the moment it describes: the server refuses positions from the
future. With a speed-up, a run that starts in the past catches up with the clock, then goes on in
real time. How far back a run may start is the server's to say: it takes duty switches and points
only so old (RIDERWATCH_MAX_PING_AGE_HOURS) and no shift before the rider's consent.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import httpx

from riderwatch.sim.riders import ClueReport, DutyChange, Pings, Tick

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
# A rider whose consent the run gives as it puts them on duty consents a moment after the switch:
# so long after it, the shift begins with the consent. Earlier switches the server refuses (409).
CONSENT_SLACK = timedelta(minutes=2)
# Answers that say "this account may not send for this rider": try the rider's next account.
WRONG_SENDER = frozenset({"other_platform", "unknown_rider"})


class FeedError(Exception):
    """The server refused something the run cannot go on without, or stayed unreachable."""


@dataclass
class FeedStats:
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    retries: int = 0
    duty_changes: int = 0
    shifts_started: int = 0  # on-duty switches the server took
    clues_created: int = 0
    clues_refused: Counter[int] = field(default_factory=Counter)
    riders_dropped: dict[str, str] = field(default_factory=dict)
    by_sender: Counter[str] = field(default_factory=Counter)  # pings each account had stored
    sim_time: datetime | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "sim_time": self.sim_time.isoformat() if self.sim_time else None,
            "pings_sent": self.sent,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": dict(sorted(self.rejected.items())),
            "requests": self.requests,
            "retries": self.retries,
            "duty_changes": self.duty_changes,
            "shifts_started": self.shifts_started,
            "clues_created": self.clues_created,
            "clues_refused": {str(k): v for k, v in sorted(self.clues_refused.items())},
            "riders_dropped": dict(sorted(self.riders_dropped.items())),
            "accepted_by_sender": dict(sorted(self.by_sender.items())),
        }


Sleep = Callable[[float], Awaitable[None]]


class Server:
    """Bearer-token sessions for many accounts on one server, with retries."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        password_of: Callable[[str], str | None],
        stats: FeedStats,
        attempts: int = 6,
        backoff_s: float = 0.5,
        sleep: Sleep = asyncio.sleep,
        tokens: Mapping[str, str] | None = None,
    ) -> None:
        """`tokens`: bearer tokens the caller already holds for some accounts (used before logging in)."""
        self.client, self.password_of, self.stats = client, password_of, stats
        self.attempts, self.backoff_s, self.sleep = attempts, backoff_s, sleep
        self._tokens: dict[str, str] = dict(tokens or {})

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.attempts):
            try:
                res = await self.client.request(method, path, **kwargs)
                self.stats.requests += 1
                if res.status_code not in RETRY_STATUS:
                    return res
                after = _retry_after(res)
                wait = after if after is not None else self.backoff_s * 2**attempt
            except httpx.TransportError:
                wait = self.backoff_s * 2**attempt
            if attempt + 1 < self.attempts:
                self.stats.retries += 1
                await self.sleep(min(wait, 30.0))
        raise FeedError(f"{method} {path}: no answer after {self.attempts} attempts")

    async def login(self, username: str) -> str | None:
        """A token for the account, or None when its credentials are refused."""
        if username in self._tokens:
            return self._tokens[username]
        password = self.password_of(username)
        if password is None:
            return None
        res = await self._send("POST", "/api/v1/auth/token", data={"username": username, "password": password})
        if res.status_code != 200:
            return None
        token: str = res.json()["access_token"]
        self._tokens[username] = token
        return token

    async def call(self, username: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request as the account; a token that expired mid-run is renewed once."""
        for _ in range(2):
            token = await self.login(username)
            if token is None:
                raise PermissionError(f"the server refused the credentials of {username!r}")
            headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {token}"}
            res = await self._send(method, path, headers=headers, **kwargs)
            if res.status_code != 401:
                return res
            self._tokens.pop(username, None)
        return res


def _retry_after(res: httpx.Response) -> float | None:
    value = res.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def ping_payloads(pings: Pings, names: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """(rider, ping body) pairs in the shape of POST /api/v1/tracking/pings."""
    out: list[tuple[str, dict[str, Any]]] = []
    for r, ts, lat, lon, spd, hdg, acc in zip(
        pings.rider.tolist(),
        pings.ts.tolist(),
        pings.lat.tolist(),
        pings.lon.tolist(),
        pings.speed_mps.tolist(),
        pings.heading.tolist(),
        pings.accuracy_m.tolist(),
        strict=True,
    ):
        body: dict[str, Any] = {"ts": _iso(ts), "lat": lat, "lon": lon, "speed_mps": spd, "accuracy_m": acc}
        if not math.isnan(hdg):
            body["heading"] = hdg
        out.append((names[r], body))
    return out


def duty_body(change: DutyChange) -> dict[str, Any]:
    """The body of PUT /api/v1/me/duty for a switch at its simulated time."""
    return {"on_duty": change.on_duty, "at": change.at.isoformat()}


def clue_body(report: ClueReport, seed: int) -> tuple[dict[str, Any], str]:
    """The clue a rider files for an incident, and its idempotency key (stable across retries and reruns)."""
    inc = report.incident
    body = {
        "category": inc.category,
        "description": inc.description,
        "lat": inc.lat,
        "lon": inc.lon,
        "observed_at": inc.at.isoformat(),
        # About one report in ten is filed anonymously, as riders do for crime tips.
        "anonymous": inc.id % 10 == 3,
    }
    return body, f"sim:{seed}:incident:{inc.id}"


class Feeder:
    """Buffers a run's pings and sends them with the duty changes and clues, in time order."""

    def __init__(
        self,
        server: Server,
        *,
        platforms: Sequence[str],
        seed: int,
        manage_duty: bool = True,
        batch_size: int = 2000,
    ) -> None:
        self.server, self.platforms, self.seed = server, list(platforms), seed
        self.manage_duty, self.batch_size = manage_duty, batch_size
        self.stats = server.stats
        self._route: dict[str, int] = {}  # rider → index into senders(rider)
        self._buffer: list[tuple[str, dict[str, Any]]] = []
        self._consented: dict[str, datetime] = {}  # rider → since when, as the server says
        self.on_duty: set[str] = set()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def _senders(self, rider: str) -> list[str]:
        return [*self.platforms, rider]

    def add(self, pings: Iterable[tuple[str, dict[str, Any]]]) -> None:
        for rider, body in pings:
            if rider not in self.stats.riders_dropped:
                self._buffer.append((rider, body))

    def _drop(self, rider: str, why: str) -> None:
        self.stats.riders_dropped.setdefault(rider, why)

    async def flush(self) -> None:
        """Send everything buffered; pings an account may not send move on to the rider's next account."""
        todo, self._buffer = self._buffer, []
        while todo:
            by_sender: dict[str, list[tuple[str, dict[str, Any]]]] = {}
            for rider, body in todo:
                senders = self._senders(rider)
                i = self._route.setdefault(rider, 0)
                if i >= len(senders):
                    self._drop(rider, "no account may send this rider's positions")
                    continue
                by_sender.setdefault(senders[i], []).append((rider, body))
            todo = []
            for sender, items in by_sender.items():
                for k in range(0, len(items), self.batch_size):
                    todo.extend(await self._post(sender, items[k : k + self.batch_size]))

    async def _post(self, sender: str, items: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
        platform = sender in self.platforms
        pings = [{**body, "rider": rider} if platform else body for rider, body in items]
        try:
            res = await self.server.call(sender, "POST", "/api/v1/tracking/pings", json={"pings": pings})
        except PermissionError:
            if not platform:
                self._drop(sender, "the server refused the rider's credentials")
                return []
            # A platform account we cannot log in as: its riders move on to their next account.
            for rider, _ in items:
                self._route[rider] = max(self._route.get(rider, 0), self.platforms.index(sender) + 1)
            return items
        if res.status_code != 200:
            raise FeedError(f"pings as {sender}: {res.status_code} {res.text[:300]}")
        data = res.json()
        retry: list[tuple[str, dict[str, Any]]] = []
        wrong: set[int] = set()
        for rej in data["rejections"]:
            rider, body = items[rej["index"]]
            if platform and rej["reason"] in WRONG_SENDER:
                wrong.add(rej["index"])
                self._route[rider] = max(self._route.get(rider, 0), self.platforms.index(sender) + 1)
                retry.append((rider, body))
            else:
                self.stats.rejected[rej["reason"]] += 1
        self.stats.sent += len(items) - len(wrong)
        self.stats.accepted += data["accepted"]
        self.stats.by_sender[sender] += data["accepted"]
        self.stats.duplicates += data["duplicates"]
        return retry

    async def duty(self, change: DutyChange) -> None:
        """The rider goes on or off duty at the change's time (consenting first, once, when the run manages that).

        A switch the server finds too old or in the future ends the run (FeedError): the run starts
        further back than the server takes. Any other refusal (a membership that is not active, a
        shift before the rider's consent) leaves that rider out of the rest of the run.
        """
        self.stats.duty_changes += 1
        rider = change.rider
        if change.on_duty:
            self.on_duty.add(rider)
        else:
            self.on_duty.discard(rider)
        if not self.manage_duty or rider in self.stats.riders_dropped:
            return
        try:
            if change.on_duty and rider not in self._consented:
                res = await self.server.call(rider, "PUT", "/api/v1/me/location-consent", json={"granted": True})
                if res.status_code != 200:
                    self._drop(rider, f"consent refused: {res.status_code}")
                    return
                self._consented[rider] = datetime.fromisoformat(res.json()["since"])
            since = self._consented.get(rider)
            if change.on_duty and since is not None and since - CONSENT_SLACK <= change.at < since:
                # The rider consented as the run put them on duty: the shift begins with the consent.
                change = DutyChange(rider, True, since)
            res = await self.server.call(rider, "PUT", "/api/v1/me/duty", json=duty_body(change))
        except PermissionError:
            self._drop(rider, "the server refused the rider's credentials")
            return
        if res.status_code == 422:
            switch = "on" if change.on_duty else "off"
            raise FeedError(
                f"the server refused {rider} going {switch} duty at {change.at.isoformat()}: {_detail(res)} "
                "(the server takes duty switches and positions only so far back: start the run later)"
            )
        if res.status_code != 200:
            # 409: a membership that is not active, or a shift before the rider's consent.
            self._drop(rider, f"duty refused: {res.status_code} {_detail(res)}")
        elif change.on_duty:
            self.stats.shifts_started += 1

    async def clue(self, report: ClueReport) -> None:
        if report.rider in self.stats.riders_dropped:
            return
        body, key = clue_body(report, self.seed)
        try:
            res = await self.server.call(
                report.rider, "POST", "/api/v1/clues", json=body, headers={"Idempotency-Key": key}
            )
        except PermissionError:
            self._drop(report.rider, "the server refused the rider's credentials")
            return
        if res.status_code in (200, 201):
            self.stats.clues_created += 1
        else:
            self.stats.clues_refused[res.status_code] += 1


def _detail(res: httpx.Response) -> str:
    try:
        return str(res.json().get("detail", ""))[:200]
    except ValueError:
        return res.text[:200]


@dataclass
class Pace:
    """When each simulated moment may be sent: `speedup` times faster than the clock, never early."""

    start: datetime
    speedup: float
    clock: Callable[[], float] = time.time
    sleep: Sleep = asyncio.sleep
    _wall0: float = field(default=math.nan, init=False)

    def due(self, t: datetime) -> float:
        if math.isnan(self._wall0):
            self._wall0 = self.clock()
        at = t.timestamp()
        if self.speedup > 0:
            return max(self._wall0 + (at - self.start.timestamp()) / self.speedup, at)
        return at

    async def wait(self, t: datetime) -> None:
        delay = self.due(t) - self.clock()
        if delay > 0:
            await self.sleep(delay)


async def feed(
    ticks: Iterable[Tick],
    feeder: Feeder,
    names: Sequence[str],
    *,
    pace: Pace | None,
    flush_every_s: float = 2.0,
    progress: Callable[[FeedStats], None] | None = None,
    progress_every_s: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
) -> FeedStats:
    """Send a run tick by tick: duty changes first, then pings.

    Every switch carries its own time, so a shift's points may follow its end in a later batch; a
    rider's points are only ever sent after the switch that began their shift.
    """
    last_flush = last_report = clock()
    stats = feeder.stats
    for tick in ticks:
        if pace is not None:
            await pace.wait(tick.t)
        stats.sim_time = tick.t
        for change in tick.duty:
            await feeder.duty(change)
        feeder.add(ping_payloads(tick.pings, names))
        for report in tick.clues:
            await feeder.clue(report)
        now = clock()
        if feeder.buffered >= feeder.batch_size or now - last_flush >= flush_every_s:
            await feeder.flush()
            last_flush = now
        if progress is not None and now - last_report >= progress_every_s:
            progress(stats)
            last_report = now
    await feeder.flush()
    if progress is not None:
        progress(stats)
    return stats


def write_jsonl(ticks: Iterable[Tick], names: Sequence[str], out: IO[str], seed: int) -> Counter[str]:
    """A dry run: every ping, duty change, order step and clue as one JSON object per line."""
    counts: Counter[str] = Counter()

    def emit(kind: str, **values: Any) -> None:
        counts[kind] += 1
        out.write(json.dumps({"type": kind, **values}, ensure_ascii=False, separators=(",", ":")) + "\n")

    for tick in ticks:
        for change in tick.duty:
            emit("duty", rider=change.rider, on_duty=change.on_duty, at=change.at.isoformat())
        for o in tick.orders:
            emit(
                "order",
                order=o.order,
                rider=o.rider,
                stage=o.stage,
                at=o.at.isoformat(),
                lat=o.lat,
                lon=o.lon,
                place=o.place,
                restaurant=o.restaurant,
            )
        for rider, body in ping_payloads(tick.pings, names):
            emit("ping", rider=rider, **body)
        for report in tick.clues:
            body, key = clue_body(report, seed)
            emit("clue", rider=report.rider, at=report.at.isoformat(), idempotency_key=key, **body)
    return counts
