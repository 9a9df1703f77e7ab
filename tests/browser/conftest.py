"""Browser tests: Debian's Chromium driven by Playwright against the platform as it runs.

Not pytest-django's live server: it is a WSGI server and cannot carry the
inbox's WebSocket. The platform is started as `make run` starts it, on the
test database: a daphne process (HTTP, WebSocket, static files through
whitenoise) and an rq worker pool process. A sandbox worker process is the
tenant's WhatsApp, and posts its webhooks to that daphne.

Run these on their own (`pytest tests/browser`): mixed with the async database
tests in one process they hung (DESIGN.md), so a run that collects both leaves
these out. The test thread reads the database while Playwright's event loop
runs on it, hence DJANGO_ALLOW_ASYNC_UNSAFE for these tests only.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.bridges.conftest import REPO_ROOT, free_port, spawn_sandbox  # noqa: F401  (fixture)
from tests.processes import daphne_command, shared_database_url, stop_group, wait_answering

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
BROWSER_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    browser = [i for i in items if BROWSER_DIR in Path(str(i.path)).parents]
    if browser and len(browser) < len(items):
        for item in browser:
            items.remove(item)
        config.hook.pytest_deselected(items=browser)
        sys.stderr.write(f"\n{len(browser)} browser tests left out: run them on their own, `pytest tests/browser`\n")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@dataclass
class RunningPlatform:
    url: str
    port: int
    env: dict
    logs: Path
    web: subprocess.Popen | None = None
    workers: subprocess.Popen | None = None

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        return subprocess.Popen(command, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def start_web(self) -> None:
        self.web = self._spawn("daphne", daphne_command(self.port))
        wait_answering(self.web, f"{self.url}/healthz", log=self.logs / "daphne.log")

    def stop_web(self) -> None:
        stop_group(self.web)

    def start_workers(self) -> None:
        self.workers = self._spawn("workers", [sys.executable, "manage.py", "run_worker_pool", "high", "medium",
                                               "low", "ai", "webhooks", "media", "maintenance", "--num-workers", "1"])

    def stop(self) -> None:
        for process in (self.web, self.workers):
            if process is not None:
                stop_group(process)


def _platform(name: str, tmp_path_factory) -> RunningPlatform:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    logs = ARTIFACTS / name
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SETTINGS_MODULE": "waplatform.settings",
        "DATABASE_URL": shared_database_url(),
        "PUBLIC_BASE_URL": url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "WHITENOISE_USE_FINDERS": "true",
        # An empty root: files collected by an earlier `make run` would be served before the finders' fresh ones.
        "STATIC_ROOT": str(tmp_path_factory.mktemp("static")),
        "PACING_JITTER_SECONDS": "0.02",
        "MESSAGE_RETRY_BASE_SECONDS": "0.05",
        "MESSAGE_SESSION_WAIT_SECONDS": "0.2",
        "LOG_LEVEL": "WARNING",
        "MEDIA_ROOT": str(tmp_path_factory.mktemp("media")),
        # The sandbox (as WAHA) downloads outbound files from daphne by their signed link.
        "MEDIA_WAHA_SEND_MODE": "url",
    }
    return RunningPlatform(url=url, port=port, env=env, logs=logs)


@pytest.fixture
def running_platform(request, transactional_db, settings, tmp_path_factory) -> Iterator[RunningPlatform]:
    platform = _platform(request.node.name, tmp_path_factory)
    # The sandbox is told where to post its webhooks by whoever starts the session.
    settings.PUBLIC_BASE_URL = platform.url
    try:
        platform.start_web()
        platform.start_workers()
        yield platform
    finally:
        platform.stop()


@pytest.fixture(scope="module")
def _module_platform(request, django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[RunningPlatform]:
    platform = _platform(request.module.__name__.rsplit(".", 1)[-1], tmp_path_factory)
    try:
        platform.start_web()
        yield platform
    finally:
        platform.stop()


@pytest.fixture
def shared_platform(_module_platform, transactional_db, settings) -> Iterator[RunningPlatform]:
    """One daphne for the whole module (each test's data is flushed by transactional_db); the
    workers start per test, since every test starts on an emptied Redis (tests/conftest.py)."""
    settings.PUBLIC_BASE_URL = _module_platform.url
    try:
        _module_platform.start_workers()
        yield _module_platform
    finally:
        stop_group(_module_platform.workers)


@pytest.fixture(scope="module")
def chromium():
    """One browser per module; tests open contexts of their own (a context is a fresh profile)."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(request, monkeypatch):
    from playwright.sync_api import sync_playwright

    # Fail, not skip: a browser test silently skipped is a page nobody checked.
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.errors = errors
        try:
            yield page
        finally:
            report = getattr(request.node, "report_call", None)
            if report is not None and report.failed:
                page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-failure.png"), full_page=True)
            context.close()
            browser.close()


def screenshot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
