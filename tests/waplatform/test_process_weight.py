"""What every Django process of the platform loads: a worker must not carry the web's libraries.

Each rq worker, pool parent and the scheduler is a full `django.setup()`; a module
loaded there is paid for in every one of them (docs/performance.md, capacity).
"""

import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SETUP = ("import os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'waplatform.settings'); "
         "import django; django.setup(); ")

# Web-only weight: the API schema generator, which pulls DRF's test client (django.test, jinja2)
# and, through DRF's compat module, django.contrib.postgres and psycopg (~20 MB per process).
WEB_ONLY = ["drf_spectacular.plumbing", "rest_framework.test", "django.test", "jinja2", "psycopg",
            # loaded only where used: the Firestore client (~50 MB), daphne's Twisted (~40 MB), BM25's numpy
            "google.cloud.firestore", "grpc", "twisted", "numpy"]


def modules_imported(tmp_path, *args: str) -> set[str]:
    """Every module a real `python <args>` process imported (-X importtime names each), on SQLite."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'weight.sqlite3'}"}
    result = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}


def test_a_worker_process_loads_no_web_only_library(tmp_path):
    # What a worker runs: setup, the worker class, and the jobs of every queue.
    loaded = modules_imported(tmp_path, "-c", SETUP + "import waplatform.workers, waplatform.jobs, messaging.jobs, "
                                                      "agents.jobs, pooling.jobs")

    assert "messaging.jobs" in loaded
    assert [name for name in WEB_ONLY if name in loaded] == []


def test_the_cron_scheduler_registers_every_job_without_the_firestore_client(tmp_path):
    # It only names the jobs; the mirror's sweep used to bring gRPC and Firestore along (~27 MB).
    loaded = modules_imported(tmp_path, "-c", SETUP + "import waplatform.cron")

    assert "mirror.jobs" in loaded
    assert [name for name in WEB_ONLY if name in loaded] == []


def test_a_worker_pool_process_skips_the_url_checks_that_load_the_api(tmp_path):
    # Django's system checks import the URLconf (and the API's libraries); manage.py
    # run_worker_pool used to run them in every pool parent and, by fork, every worker.
    # A real pool in burst mode: it exits once its empty queue is drained.
    loaded = modules_imported(tmp_path, "manage.py", "run_worker_pool", "media", "--num-workers", "1", "--burst")

    assert "rq.worker_pool" in loaded  # it did start a pool
    assert [name for name in WEB_ONLY if name in loaded] == []


def test_the_api_schema_still_describes_the_api_key_scheme(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert schema.status_code == 200
    assert "apiKey" in schema.json()["components"]["securitySchemes"]


def test_a_pools_workers_run_their_jobs_with_the_start_up_objects_frozen_out_of_the_collector(tmp_path):
    # A full collection scans every object start-up left, several hundred thousand: a stall of
    # ~130 ms inside whichever request or job it lands in (docs/performance.md, session 7).
    # Frozen in the parent before the fork, they are skipped, and stay shared with it.
    from waplatform.queues import get_queue

    job = get_queue("media").enqueue("gc.get_freeze_count")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'freeze.sqlite3'}"}
    subprocess.run([sys.executable, "manage.py", "run_worker_pool", "media", "--num-workers", "1", "--burst"],
                   cwd=REPO_ROOT, env=env, capture_output=True, timeout=120, check=True)

    job.refresh()
    assert job.get_status() == "finished" and job.return_value() > 50_000


def test_a_pools_workers_find_what_their_first_job_needs_already_loaded_and_only_their_queues(tmp_path):
    # Each fresh `ai` worker imported numpy for its first reply (~300 ms of a 520-640 ms reply,
    # docs/performance.md, session 8); the pool's parent imports it once, before the fork.
    from waplatform.queues import get_queue

    ai = get_queue("ai").enqueue("sys.modules.__contains__", "rank_bm25")
    ai_http = get_queue("ai").enqueue("sys.modules.__contains__", "httpcore")
    media = get_queue("media").enqueue("sys.modules.__contains__", "numpy")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'preload.sqlite3'}"}
    for queue in ("ai", "media"):
        subprocess.run([sys.executable, "manage.py", "run_worker_pool", queue, "--num-workers", "1", "--burst"],
                       cwd=REPO_ROOT, env=env, capture_output=True, timeout=120, check=True)

    for job in (ai, ai_http, media):
        job.refresh()
    assert [ai.return_value(), ai_http.return_value()] == [True, True]
    assert media.return_value() is False  # the knowledge base's numpy stays out of the other pools



def test_a_preload_calls_what_it_names_and_skips_a_library_that_cannot_be_imported(settings, caplog):
    from pooling.bridges._http import tls_context
    from waplatform.worker_preload import preload_for

    settings.WORKER_PRELOAD_MODULES = {"*": ["json"], "low": ["pooling.bridges._http:tls_context", "no_such_lib"]}
    tls_context.cache_clear()

    assert preload_for(["low"]) == ["json", "pooling.bridges._http:tls_context"]
    assert tls_context.cache_info().currsize == 1  # built now, so the workers forked next inherit it
    assert "no_such_lib could not be imported" in caplog.text
