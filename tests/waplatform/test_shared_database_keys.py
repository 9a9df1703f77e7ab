"""Keys generated into var/ are one host's: with a shared database the platform refuses to start."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
# Never connected to: the checks and the ASGI import only read the URL.
POSTGRES_URL = "postgres://wap@127.0.0.1:1/waplatform"
FERNET_KEY = "kHgvx8T0Q6o6I5o3s1S9cK8Ck3m5nI2mZ9Yv6e0nq5I="


def run(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in ("SECRET_KEY", "SECRETS_ENCRYPTION_KEYS", "DATABASE_URL")}
    return subprocess.run([sys.executable, *args], cwd=BASE_DIR, capture_output=True, text=True, timeout=120,
                          env={**base, "WAP_VAR_DIR": str(tmp_path / "var"), **env})


@pytest.mark.parametrize("entry", [
    ["manage.py", "check"], ["-c", "import waplatform.asgi"],
    # the platform's processes skip Django's URL checks (waplatform.checks.ServiceCommand), not these
    ["manage.py", "run_worker_pool", "low", "--burst"], ["manage.py", "run_scheduler", "waplatform.cron"],
    ["manage.py", "run_bridge_agent"],
])
def test_a_generated_secret_key_with_a_postgres_database_refuses_to_start(tmp_path, entry):
    result = run(tmp_path, *entry, DATABASE_URL=POSTGRES_URL)

    assert result.returncode != 0
    assert "waplatform.E001" in result.stderr and "Set SECRET_KEY" in result.stderr
    assert "waplatform.E002" in result.stderr  # the generated encryption key, likewise


@pytest.mark.parametrize("entry", [["manage.py", "check"], ["-c", "import waplatform.asgi"]])
def test_explicit_keys_with_a_postgres_database_start(tmp_path, entry):
    result = run(tmp_path, *entry, DATABASE_URL=POSTGRES_URL, SECRET_KEY="x" * 50,
                 SECRETS_ENCRYPTION_KEYS=FERNET_KEY)

    assert result.returncode == 0, result.stderr


def test_a_generated_secret_key_on_sqlite_is_fine(tmp_path):
    result = run(tmp_path, "manage.py", "check")

    assert result.returncode == 0, result.stderr
