"""A wheel that installs anywhere (issue 9). The wheel built from what is committed (git HEAD, so no
untracked or ignored local file can stand in for a missing one) holds every file the server serves,
and, installed into an empty virtual environment, migrates a database and serves pages, Leaflet and
htmx with no source tree, no npm and no network. Commit a change before running this test on it.

Also: the front-end libraries committed under static/vendor/ are npm's files at the versions
package-lock.json names (`make vendor` refreshes them)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.live import free_port

REPO = Path(__file__).resolve().parents[1]
VENDOR = REPO / "src" / "riderwatch" / "static" / "vendor"
NODE_MODULES = REPO / "node_modules"
# static/vendor/<dir> ← node_modules/<package>/dist (and the package's LICENSE), as `make vendor` copies.
NPM_PACKAGES = {"leaflet": "leaflet", "htmx": "htmx.org", "chartjs": "chart.js"}
VENDORED = {
    "chartjs/LICENSE.md",
    "chartjs/chart.umd.min.js",
    "htmx/LICENSE",
    "htmx/htmx.min.js",
    "leaflet/LICENSE",
    "leaflet/images/layers-2x.png",
    "leaflet/images/layers.png",
    "leaflet/images/marker-icon-2x.png",
    "leaflet/images/marker-icon.png",
    "leaflet/images/marker-shadow.png",
    "leaflet/leaflet.css",
    "leaflet/leaflet.js",
}
# Tracked package files the wheel need not carry: the message extraction's config, and dot files.
NOT_SHIPPED = {"riderwatch/babel.cfg"}
PASSWORD = "wheel-test-password"
# The installed wheel serves from a process of its own, which reads the real clock: so do these tests.
pytestmark = [
    pytest.mark.real_clock,
    pytest.mark.one_database("sqlite", why="building and installing the wheel does not depend on it"),
]


def _run(args: list[str | Path], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    res = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd)
    assert res.returncode == 0, f"{' '.join(map(str, args))} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    return str(res.stdout)


def _git(*args: str) -> str:
    return _run(["git", "-C", REPO, *args])


def _npm_source(rel: str) -> Path:
    top, _, rest = rel.partition("/")
    package = NODE_MODULES / NPM_PACKAGES[top]
    return package / rest if rest.startswith("LICENSE") else package / "dist" / rest


# --- the committed front-end libraries --------------------------------------------------------------


def test_vendored_libraries_are_committed() -> None:
    tracked = _git("ls-files", "--", "src/riderwatch/static/vendor").split()
    assert {p.removeprefix("src/riderwatch/static/vendor/") for p in tracked} == VENDORED


def test_vendored_libraries_are_npms_files_at_the_locked_versions() -> None:
    if not NODE_MODULES.is_dir():
        pytest.skip("no node_modules to compare with (`make vendor` installs it with npm)")
    lock = json.loads((REPO / "package-lock.json").read_text())["packages"]
    for package in NPM_PACKAGES.values():
        locked = lock[f"node_modules/{package}"]["version"]
        installed = json.loads((NODE_MODULES / package / "package.json").read_text())["version"]
        if installed != locked:
            pytest.skip(f"node_modules holds {package} {installed}, package-lock.json {locked}: run `make vendor`")
    for rel in sorted(VENDORED):
        assert (VENDOR / rel).read_bytes() == _npm_source(rel).read_bytes(), f"{rel} differs: run `make vendor`"
    # Nothing the copied folders hold was left out.
    images = NODE_MODULES / "leaflet" / "dist" / "images"
    assert {f"leaflet/images/{p.name}" for p in images.iterdir()} <= VENDORED


# --- the wheel ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    source: Path  # git HEAD, unpacked
    wheel: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    tmp = tmp_path_factory.mktemp("wheel")
    if not (REPO / ".git").exists():
        pytest.fail(f"{REPO} is not a git clone: this test builds the wheel from the committed tree")
    source, dist = tmp / "source", tmp / "dist"
    source.mkdir()
    _git("archive", "--format=tar", f"--output={tmp / 'head.tar'}", "HEAD")
    _run(["tar", "-x", "-f", tmp / "head.tar", "-C", source])
    # The build backend comes from this environment (a dev dependency), so nothing is downloaded;
    # --check-build-dependencies fails the build if it does not meet [build-system] requires.
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index", "--no-build-isolation"]
    _run([*pip_wheel, "--check-build-dependencies", "--wheel-dir", dist, source], env=_pip_env())
    (wheel,) = dist.glob("riderwatch-*.whl")
    return Built(source=source, wheel=wheel)


def _pip_env() -> dict[str, str]:
    return {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}


def test_the_wheel_holds_every_file_of_the_package(built: Built) -> None:
    names = set(zipfile.ZipFile(built.wheel).namelist())
    package = built.source / "src"
    tracked = {p.relative_to(package).as_posix() for p in (package / "riderwatch").rglob("*") if p.is_file()}
    shipped = {p for p in tracked if not p.rsplit("/", 1)[-1].startswith(".")} - NOT_SHIPPED
    assert sorted(shipped - names) == []
    # What the issue named, spelled out.
    for name in (
        *(f"riderwatch/static/vendor/{rel}" for rel in VENDORED),
        "riderwatch/templates/base.html",
        "riderwatch/locale/zh/LC_MESSAGES/messages.po",
        "riderwatch/locale/en/LC_MESSAGES/messages.po",
        "riderwatch/migrations/env.py",
        "riderwatch/migrations/script.py.mako",
    ):
        assert name in names, name
    assert any(re.fullmatch(r"riderwatch/migrations/versions/[^/]+\.py", n) for n in names)
    # Only the package and its metadata: no tests, benchmarks or build leftovers.
    tops = {n.split("/", 1)[0] for n in names} - {"riderwatch"}
    assert len(tops) == 1 and re.fullmatch(r"riderwatch-[^-/]+\.dist-info", tops.pop()), tops
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


@dataclass(frozen=True)
class Installed:
    venv: Path
    env: dict[str, str]  # for running its commands: a temporary database and data directory
    cwd: Path


@pytest.fixture(scope="module")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """A fresh virtual environment with only the wheel installed in it; the wheel's dependencies come
    from this test environment's site-packages, read through a .pth path line (so that its own .pth
    files, the editable install of riderwatch among them, are not processed)."""
    assert sys.prefix != sys.base_prefix, "run the tests from the project's virtual environment (.venv)"
    tmp = tmp_path_factory.mktemp("installed")
    venv, cwd = tmp / "venv", tmp / "cwd"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RIDERWATCH_", "PYTHON"))}
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], env=env).strip())
    ours = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (site / "riderwatch_test_dependencies.pth").write_text("".join(f"{p}\n" for p in ours))
    _run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index", built.wheel],
        env=_pip_env(),
    )
    env |= {
        "RIDERWATCH_DATABASE_URL": f"sqlite:///{tmp / 'riderwatch.db'}",
        "RIDERWATCH_DATA_DIR": str(tmp / "data"),
        # Only what the wheel ships is on trial here; the periodic jobs are tested elsewhere.
        "RIDERWATCH_RUN_JOBS": "false",
    }
    return Installed(venv=venv, env=env, cwd=cwd)


@contextmanager
def _serving(installed: Installed) -> Iterator[str]:
    """`riderwatch serve` from the fresh environment on a free port; yields its base URL."""
    port = free_port()
    log = installed.cwd / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [installed.venv / "bin" / "riderwatch", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=installed.env,
            cwd=installed.cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"riderwatch serve exited with {proc.returncode}:\n{log.read_text()}")
            try:
                httpx.get(f"{base}/login", timeout=2, trust_env=False)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(f"riderwatch serve did not answer in 30 s:\n{log.read_text()}")
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_installed_wheel_migrates_and_serves_pages_maps_and_htmx(installed: Installed, built: Built) -> None:
    python, riderwatch = installed.venv / "bin" / "python", installed.venv / "bin" / "riderwatch"
    where = _run([python, "-c", "import riderwatch; print(riderwatch.__file__)"], env=installed.env, cwd=installed.cwd)
    assert Path(where.strip()).resolve().is_relative_to(installed.venv.resolve()), where
    _run([riderwatch, "db", "upgrade"], env=installed.env, cwd=installed.cwd)
    _run(
        [riderwatch, "user", "create", "wheel", "--role", "dispatcher", "--password", PASSWORD],
        env=installed.env,
        cwd=installed.cwd,
    )
    static = built.source / "src" / "riderwatch" / "static"
    with _serving(installed) as base, httpx.Client(base_url=base, timeout=10, trust_env=False) as client:
        login = client.get("/login")
        assert login.status_code == 200
        assert "登录" in login.text  # the Chinese catalogue, compiled from the wheel's .po at start-up
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert csrf is not None
        res = client.post(
            "/login", data={"username": "wheel", "password": PASSWORD, "csrf_token": csrf[1], "next": "/desk"}
        )
        assert (res.status_code, res.headers.get("location")) == (303, "/desk"), res.text
        desk = client.get("/desk")
        assert desk.status_code == 200
        # The versioned URLs the page itself references.
        refs = {urlsplit(r).path: r for r in re.findall(r'(?:src|href)="(/static/[^"]+)"', desk.text)}
        for path, kind in (
            ("/static/vendor/leaflet/leaflet.js", "javascript"),
            ("/static/vendor/leaflet/leaflet.css", "text/css"),
            ("/static/vendor/htmx/htmx.min.js", "javascript"),
            ("/static/css/app.css", "text/css"),
        ):
            assert path in refs, f"/desk does not reference {path}"
            res = client.get(refs[path])
            assert res.status_code == 200, path
            assert kind in res.headers["content-type"], (path, res.headers["content-type"])
            assert res.content == (static / path.removeprefix("/static/")).read_bytes(), path
        assert b"Leaflet 1." in client.get(refs["/static/vendor/leaflet/leaflet.js"]).content
        assert b"htmx" in client.get(refs["/static/vendor/htmx/htmx.min.js"]).content
        # Every vendored file, the marker and layer images among them, under the path the CSS resolves.
        css_url = urlsplit(refs["/static/vendor/leaflet/leaflet.css"]).path
        for image in re.findall(r"url\((images/[^)]+)\)", client.get(css_url).text):
            assert client.get(urljoin(css_url, image)).status_code == 200, image
        for rel in sorted(VENDORED):
            res = client.get(f"/static/vendor/{rel}")
            assert res.status_code == 200, rel
            assert res.content == (static / "vendor" / rel).read_bytes(), rel
        # What the service worker keeps for offline use.
        worker = client.get("/sw.js")
        assert worker.status_code == 200
        for asset in re.findall(r"'(/static/[^']+)'", worker.text):
            assert client.get(asset).status_code == 200, asset
