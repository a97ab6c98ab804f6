"""The `riderwatch` command (CONTRACT.md: db upgrade, demo, serve, user create, open311 key create)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from riderwatch.config import Settings
from riderwatch.db import make_engine, make_session_factory, unit_of_work
from riderwatch.errors import DomainError
from riderwatch.infra.clock import utcnow

if TYPE_CHECKING:
    import uvicorn

app = typer.Typer(help="RiderWatch: delivery riders as a community public-safety team.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="User accounts.", no_args_is_help=True)
open311_app = typer.Typer(help="Open311 GeoReport v2.", no_args_is_help=True)
open311_key_app = typer.Typer(help="Open311 API keys.", no_args_is_help=True)
jobs_app = typer.Typer(help="Periodic jobs.", no_args_is_help=True)
incidents_app = typer.Typer(help="The police's recorded cases (incidents) for hotspots.", no_args_is_help=True)
org_app = typer.Typer(
    help="The district: communities, grids, zones, stations, platforms, patrol units.", no_args_is_help=True
)
riders_app = typer.Typer(help="The riders' programme.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(open311_app, name="open311")
open311_app.add_typer(open311_key_app, name="key")
app.add_typer(jobs_app, name="jobs")
app.add_typer(incidents_app, name="incidents")
app.add_typer(org_app, name="org")
app.add_typer(riders_app, name="riders")
webhooks_app = typer.Typer(help="Webhooks to duty group chats and other systems.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")

console = Console()
err = Console(stderr=True)


def _factory(settings: Settings):  # type: ignore[no-untyped-def]
    return make_session_factory(make_engine(settings.database_url))


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


def _ensure_dir(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations to RIDERWATCH_DATABASE_URL."""
    from riderwatch.migrate import upgrade

    settings = Settings()
    _ensure_dir(settings)
    upgrade(settings.database_url, revision)
    console.print(f"database at [bold]{revision}[/bold]: {settings.database_url}")


@user_app.command("create")
def user_create(
    username: str,
    role: Annotated[
        str, typer.Option(help="admin, dispatcher, police, grid_staff, patrol, station_manager, platform or rider")
    ],
    password: Annotated[str, typer.Option(help="at least 8 characters")],
    station: Annotated[str | None, typer.Option(help="code of the delivery station to link")] = None,
    display_name: Annotated[str, typer.Option(help="name shown in pages")] = "",
) -> None:
    """Create an active account that can act at once."""
    from riderwatch.accounts.service import create_user

    settings = Settings()
    try:
        with unit_of_work(_factory(settings)) as session:
            user = create_user(
                session,
                username=username,
                role=role,
                password=password,
                station_code=station,
                display_name=display_name,
            )
            console.print(f"created {user.role} [bold]{user.username}[/bold] (id {user.id})")
    except DomainError as exc:
        _fail(exc.detail)


@open311_key_app.command("create")
def open311_key_create(name: str) -> None:
    """Issue an Open311 API key; the key is printed once."""
    from riderwatch.accounts.service import create_api_key

    settings = Settings()
    try:
        with unit_of_work(_factory(settings)) as session:
            key = create_api_key(session, name=name)
    except DomainError as exc:
        _fail(exc.detail)
    print(key)


@jobs_app.command("run")
def jobs_run() -> None:
    """Run the periodic jobs once (overdue escalation); safe beside running servers."""
    from riderwatch.jobs import run_due_jobs

    settings = Settings()
    done = run_due_jobs(_factory(settings), interval=settings.job_interval_seconds)
    for name, changed in done.items():
        console.print(f"{name}: {changed} changed")
    if not done:
        console.print("another process holds the job leases; nothing run")


@webhooks_app.command("deliver")
def webhooks_deliver() -> None:
    """Send every webhook delivery that is due now and wait for the answers (server processes do this
    on their own; this is for a deployment that runs them with RIDERWATCH_WEBHOOK_WORKER=false)."""
    import asyncio

    from riderwatch.webhooks.worker import Worker, worker_settings

    settings = Settings()
    sent = asyncio.run(Worker(_factory(settings), worker_settings(settings)).drain())
    console.print(f"{sent} sent")


@incidents_app.command("import")
def incidents_import(
    file: Annotated[
        str,
        typer.Argument(help="CSV or Excel (.xlsx): source,external_ref,category,lat,lon,occurred_at[,note][,crs]"),
    ],
    source: Annotated[
        str | None, typer.Option(help="source of rows that name none (the file may then leave the column out)")
    ] = None,
) -> None:
    """Import incidents from a CSV export or an Excel workbook: all rows or none; changed cases are updated."""
    from pathlib import Path

    from riderwatch.incidents.rows import MAX_FILE_BYTES, ImportRefused
    from riderwatch.incidents.service import import_file

    settings = Settings()
    path = Path(file)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            _fail(f"{file} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; split it")
        data = path.read_bytes()
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror or exc}")
    try:
        with unit_of_work(_factory(settings)) as session:
            result = import_file(
                session,
                actor=None,
                data=data,
                filename=path.name,
                timezone=settings.timezone,
                origin=f"cli:{path.name}",
                default_source=source,
            )
    except ImportRefused as exc:
        for error in exc.errors:
            where = f"row {error.row}" + (f", {error.field}" if error.field else "")
            err.print(f"{where}: {error.reason}", markup=False, highlight=False)
        _fail(exc.detail)
    except DomainError as exc:
        _fail(exc.detail)
    console.print(f"created: {result.created}")
    console.print(f"updated: {result.updated}")
    console.print(f"unchanged: {result.unchanged}")
    console.print("errors: 0")


def _read(file: str, limit: int) -> bytes:
    from pathlib import Path

    path = Path(file)
    try:
        if path.stat().st_size > limit:
            _fail(f"{file} is larger than {limit // (1024 * 1024)} MiB; split it")
        return path.read_bytes()
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror or exc}")
        raise  # _fail has exited


@org_app.command("list")
def org_list(
    kind: Annotated[
        str, typer.Argument(help="jurisdictions, communities, grids, zones, stations, platforms, patrol-units")
    ],
    retired: Annotated[bool, typer.Option(help="list retired ones too")] = False,
) -> None:
    """The district's organisations or areas of one kind: code, name, English name (and what each belongs to)."""
    from riderwatch.org import district

    with unit_of_work(_factory(Settings())) as session:
        try:
            found = district.kind_of(kind)
        except DomainError as exc:
            _fail(exc.detail)
        for row in district.list_rows(session, found, include_retired=retired):
            shown = district.present(session, found, row)
            extra = [
                f"{k}={shown[k]}" for k in ("community", "platform", "jurisdiction", "rollout_stage") if shown.get(k)
            ]
            mark = " (retired)" if shown["retired"] else ""
            typer.echo("\t".join([shown["code"], shown["name"], shown["name_en"], *extra]) + mark)


@org_app.command("import")
def org_import(
    kind: Annotated[str, typer.Argument(help="jurisdictions, communities, grids or zones")],
    file: Annotated[str, typer.Argument(help="GeoJSON, KML or KMZ; each area's code and name as properties")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check and report, store nothing")] = False,
    crs: Annotated[str, typer.Option(help="the file's datum: wgs84, or gcj02 (converted)")] = "wgs84",
) -> None:
    """Create or update areas from a boundary file: every area checked, all stored or none."""
    from pathlib import Path

    from riderwatch.org import boundary_files, district

    data = _read(file, boundary_files.MAX_FILE_BYTES)
    try:
        features = boundary_files.read_file(data, filename=Path(file).name, crs=crs)
        with unit_of_work(_factory(Settings())) as session:
            result = district.import_areas(session, actor=None, kind_name=kind, features=features, dry_run=dry_run)
    except district.AreasRefused as exc:
        for problem in exc.problems:
            err.print(f"feature {problem.feature} ({problem.code or 'no code'}): {problem.reason}", markup=False)
        _fail(exc.detail)
    except DomainError as exc:
        _fail(exc.detail)
    for warning in result.warnings:
        err.print(f"feature {warning['feature']} ({warning['code']}) overlaps {warning['overlaps']}", markup=False)
    prefix = "would be " if dry_run else ""
    console.print(f"{prefix}created: {result.created}")
    console.print(f"{prefix}updated: {result.updated}")
    console.print(f"unchanged: {result.unchanged}")


@riders_app.command("import")
def riders_import(
    file: Annotated[str, typer.Argument(help="XLSX or CSV: 姓名/name, 手机号/phone, 站点/station[, 平台/platform]")],
    codes: Annotated[
        str | None, typer.Option("--codes", help="write the new riders' one-time codes to this CSV file")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check and report, store nothing")] = False,
    active: Annotated[bool, typer.Option(help="new riders start active (default: applied, until trained)")] = False,
) -> None:
    """Import a platform's rider list: all rows or none; riders matched by mobile number."""
    import csv
    from pathlib import Path
    from zoneinfo import ZoneInfo

    import anyio

    from riderwatch.db import make_engine, make_session_factory
    from riderwatch.riders import imports

    if codes and Path(codes).exists():
        _fail(f"{codes} exists; name a new file for the codes")
    data = _read(file, imports.MAX_FILE_BYTES)
    settings = Settings()
    engine = make_engine(settings.database_url)

    async def run() -> imports.Imported:
        return await imports.import_riders(
            make_session_factory(engine),
            make_session_factory(engine, read_only=True),
            anyio.CapacityLimiter(settings.login_hashes_at_once),
            importer=None,
            data=data,
            filename=Path(file).name,
            content_type="",
            dry_run=dry_run,
            rider_status="active" if active else "applied",
        )

    try:
        result = anyio.run(run)
    except imports.RidersRefused as exc:
        for problem in exc.problems:
            where = f"row {problem.row}" + (f", {problem.column}" if problem.column else "")
            err.print(f"{where}: {problem.reason}", markup=False, highlight=False)
        _fail(exc.detail)
    except DomainError as exc:
        _fail(exc.detail)
    finally:
        engine.dispose()
    prefix = "would be " if dry_run else ""
    console.print(f"{prefix}created: {result.created}")
    console.print(f"{prefix}updated: {result.updated}")
    console.print(f"unchanged: {result.unchanged}")
    if result.accounts and codes:
        with open(codes, "x", newline="", encoding="utf-8-sig") as out:  # Excel and WPS read the BOM as UTF-8
            writer = csv.writer(out)
            writer.writerow(["行", "姓名", "登录名", "一次性验证码", "有效期至"])
            for a in result.accounts:
                local = a.expires_at.astimezone(ZoneInfo(settings.timezone)).strftime("%Y-%m-%d %H:%M")
                writer.writerow([a.row, a.name, a.username, a.code, local])
        console.print(f"one-time codes: {codes}")
    elif result.accounts:
        for a in result.accounts:
            typer.echo(f"{a.username}\t{a.code}\t{a.name}")


@app.command("evaluate")
def evaluate(
    period: Annotated[str, typer.Option(help="the month, YYYY-MM")],
    out: Annotated[str, typer.Option("-o", "--out", help="the file to write")],
    file_format: Annotated[str, typer.Option("--format", help="csv or xlsx")] = "xlsx",
    platform: Annotated[str | None, typer.Option(help="only this platform's riders (its code or name)")] = None,
    rescore: Annotated[bool, typer.Option(help="score the month again first (it supersedes the earlier run)")] = False,
    locale: Annotated[str, typer.Option(help="the headers' language: zh or en")] = "zh",
) -> None:
    """Write a month's evaluation for the platforms' pay: one row per rider (the indicators, the weighted
    score, the rank, the grade); XLSX adds a sheet with the weights and the method. A month not scored yet
    is scored first."""
    from pathlib import Path

    from riderwatch.evaluation import service as evaluation
    from riderwatch.evaluation.export import evaluation_file

    if file_format not in ("csv", "xlsx"):
        _fail(f"--format is csv or xlsx, not {file_format!r}")
    if locale not in ("zh", "en"):
        _fail(f"--locale is zh or en, not {locale!r}")
    settings = Settings()
    try:
        with unit_of_work(_factory(settings)) as session:
            platform_id = evaluation.platform_by_name(session, platform).id if platform else None
            run = None if rescore else evaluation.latest_run(session, period)
            if run is None:
                run = evaluation.run_period(session, period=period, timezone=settings.timezone)
                console.print(f"scored {period}: {run.rider_count} riders (run {run.id})")
            data = evaluation_file(
                session, run=run, user=None, platform_id=platform_id, file_format=file_format, locale=locale
            )
            rows = len(evaluation.visible_rows(session, user=None, run=run, platform_id=platform_id))
            run_id = run.id
    except DomainError as exc:
        _fail(exc.detail)
    try:
        Path(out).write_bytes(data)
    except OSError as exc:
        _fail(f"cannot write {out}: {exc.strerror or exc}")
    console.print(f"{out}: {rows} riders, {period}, run {run_id}")


@app.command("purge")
def purge(
    days: Annotated[int | None, typer.Option(min=1, help="retention in days (default: the configured one)")] = None,
) -> None:
    """Delete raw positions and per-rider aggregates past retention; anonymous coverage counts stay."""
    from riderwatch.tracking.service import purge_expired

    settings = Settings()
    retention = days or settings.position_retention_days
    with unit_of_work(_factory(settings)) as session:
        done = purge_expired(session, retention_days=retention)
    console.print(f"purged data older than {retention} days:")
    for name, count in done.items():
        console.print(f"  {name}: {count}")


@app.command("demo")
def demo(
    password: Annotated[str, typer.Option(help="password for every demo account")] = "riderwatch-demo",  # noqa: S107  (the documented demo password)
    seed: Annotated[int, typer.Option(help="random seed: the same seed gives the same district")] = 7,
    tracks_days: Annotated[
        float, typer.Option(min=0, max=7, help="days of simulated rider tracks up to now; 0: none")
    ] = 3,
) -> None:
    """Load the demo district (Zhenhai, Licheng District, Putian); idempotent."""
    from riderwatch.demo import build_demo
    from riderwatch.migrate import upgrade

    settings = Settings()
    _ensure_dir(settings)
    upgrade(settings.database_url)
    try:
        summary = build_demo(settings, password=password, seed=seed, console=console, tracks_days=tracks_days)
    except DomainError as exc:
        _fail(exc.detail)
    console.print(summary)
    console.print(f"demo accounts use password [bold]{password}[/bold]; e.g. dispatcher1, police1, rider001")


@app.command("simulate")
def simulate(
    url: Annotated[str, typer.Option(help="the server to feed")] = "http://127.0.0.1:8000",
    riders: Annotated[int, typer.Option(min=1, help="how many riders (rider001, rider002, …)")] = 20,
    days: Annotated[float, typer.Option(min=0.001, help="simulated days")] = 1.0,
    speedup: Annotated[
        float, typer.Option(min=0, help="simulated seconds per real second; 0: as fast as possible")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="the same seed gives the same run")] = 7,
    start: Annotated[str | None, typer.Option(help="simulated start, ISO 8601 with a timezone (default: now)")] = None,
    incidents: Annotated[bool, typer.Option(help="plant incident hotspots; riders report what they pass")] = False,
    dry_run: Annotated[bool, typer.Option(help="write the run to --out instead of sending it")] = False,
    out: Annotated[str | None, typer.Option(help="JSON-lines file for --dry-run ('-': standard output)")] = None,
    password: Annotated[
        str, typer.Option(envvar="RIDERWATCH_SIM_PASSWORD", help="password of the rider and platform accounts")
    ] = "riderwatch-demo",  # noqa: S107  (the documented demo password)
    platform: Annotated[
        list[str] | None, typer.Option(help="platform account that sends its riders' positions (repeatable)")
    ] = None,
    rider_pattern: Annotated[str, typer.Option(help="rider usernames, formatted with 1, 2, …")] = "rider{:03d}",
    interval: Annotated[float, typer.Option(min=1, help="seconds between a rider's positions")] = 15.0,
    manage_duty: Annotated[
        bool, typer.Option(help="riders consent and go on/off duty through the API (off: shifts are managed elsewhere)")
    ] = True,
) -> None:
    """Simulate riders delivering in the demo district and feed their positions (and clues) to a server."""
    import asyncio
    import json
    import sys
    from datetime import datetime, timedelta

    import httpx

    from riderwatch.sim.feed import FeedError, FeedStats
    from riderwatch.sim.run import RunPlan, rider_names, send_run, write_run

    try:
        begin = datetime.fromisoformat(start) if start else utcnow().replace(microsecond=0)
        if begin.tzinfo is None:
            raise ValueError("--start needs a timezone, e.g. 2026-11-29T08:00:00+08:00")
        names = rider_names(riders, rider_pattern)
    except (ValueError, IndexError, KeyError) as exc:
        _fail(str(exc))
    plan = RunPlan(
        seed=seed, start=begin, duration=timedelta(days=days), riders=names, interval_s=interval, incidents=incidents
    )
    if dry_run:
        if not out:
            _fail("--dry-run writes to --out FILE.jsonl (or '-')")
        assert out is not None
        if out == "-":
            counts = write_run(plan, sys.stdout)
        else:
            with open(out, "w", encoding="utf-8") as fh:
                counts = write_run(plan, fh)
        err.print(f"wrote {sum(counts.values())} lines: {dict(sorted(counts.items()))}")
        return

    def report(stats: FeedStats) -> None:
        err.print(json.dumps(stats.summary(), ensure_ascii=False))

    accounts = platform if platform is not None else ["meituan-api", "eleme-api"]

    async def go() -> FeedStats:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            return await send_run(
                plan,
                client,
                password_of=lambda _name: password,
                platforms=accounts,
                speedup=speedup,
                manage_duty=manage_duty,
                progress=report,
            )

    try:
        stats = asyncio.run(go())
    except FeedError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        err.print("stopped; riders were taken off duty")
        raise typer.Exit(130) from None
    console.print_json(json.dumps(stats.summary(), ensure_ascii=False))


@app.command("serve")
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int, typer.Option(min=1)] = 1,
    osmand_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            envvar="RIDERWATCH_OSMAND_PORT",
            help="also serve the OsmAnd protocol alone on this port, at any path (Traccar Client's "
            "http://host:5055); default off, it is always at /osmand on --port",
        ),
    ] = None,
) -> None:
    """Serve the web app and API (and, with --osmand-port, the OsmAnd protocol on a port of its own)."""
    import uvicorn

    if osmand_port is not None and osmand_port == port:
        _fail("--osmand-port must differ from --port")
    if osmand_port is not None and workers != 1:
        _fail("--osmand-port serves both ports from one process: use --workers 1, or route the OsmAnd port to /osmand")
    settings = Settings()
    _ensure_dir(settings)
    settings.signing_key  # noqa: B018  generate the key file once, before workers race for it
    if osmand_port is None:
        uvicorn.run(
            "riderwatch.asgi:app", host=host, port=port, workers=workers, log_level="info", **proxy_options(settings)
        )
        return
    import asyncio

    from riderwatch.app import create_app, settle_heap
    from riderwatch.tracking.osmand_app import create_osmand_app

    main = create_app(settings)
    settle_heap()
    servers = [
        uvicorn.Server(uvicorn.Config(main, host=host, port=port, log_level="info", **proxy_options(settings))),
        uvicorn.Server(
            uvicorn.Config(create_osmand_app(main), host=host, port=osmand_port, lifespan="off", log_level="info")
        ),
    ]
    asyncio.run(_serve_together(servers))


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy options: the client's address comes from X-Forwarded-For only on requests from a
    configured reverse proxy (`RIDERWATCH_TRUSTED_PROXIES`), never from anyone who sets the header."""
    if not settings.trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(settings.trusted_proxies)}


async def _serve_together(servers: list[uvicorn.Server]) -> None:
    """Run uvicorn servers in one event loop; when one stops (a signal, a port in use), all stop."""
    import asyncio

    tasks = [asyncio.create_task(server.serve()) for server in servers]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for server in servers:
        server.should_exit = True
    await asyncio.gather(*pending)
    for task in done:
        task.result()
