"""docs/quickstart.md, run literally against a platform started as `make run` starts it.

Only the values the doc tells the reader to set change: BASE and HOOK_PORT in its
first command. The platform and the `manage.py` commands share their configuration
through one .env file (WAP_ENV_FILE), as a reader's checkout does.
"""

import os
import re
import subprocess

import pytest

from tests.e2e.platform import BASE_DIR, Launcher
from waplatform.embedded_redis import free_port

pytestmark = pytest.mark.integration

QUICKSTART = BASE_DIR / "docs" / "quickstart.md"


def quickstart_commands() -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```$", QUICKSTART.read_text(), flags=re.S | re.M)


def test_the_quickstart_has_ten_commands_and_sets_only_base_and_hook_port_first():
    commands = quickstart_commands()

    assert len(commands) == 10
    assert commands[0].strip() == "export BASE=http://127.0.0.1:8000 HOOK_PORT=8099"


def test_the_quickstart_runs_as_written(tmp_path):
    # given a running platform whose settings come from one .env, as in a checkout
    hook_port = free_port()
    launcher_env = tmp_path / "platform.env"
    launcher = Launcher(tmp_path, WAP_ENV_FILE=str(launcher_env), EGRESS_ALLOW_PRIVATE_URLS="true")
    launcher_env.write_text(
        f"PORT={launcher.port}\nEMBEDDED_REDIS_PORT={launcher.redis_port}\n"
        f"WAP_VAR_DIR={launcher.var_dir}\nEGRESS_ALLOW_PRIVATE_URLS=true\n")
    workdir = tmp_path / "reader"
    workdir.mkdir()
    (workdir / ".venv").symlink_to(BASE_DIR / ".venv")
    (workdir / "manage.py").symlink_to(BASE_DIR / "manage.py")
    try:
        launcher.wait_ready()
        commands = quickstart_commands()
        commands[0] = f"export BASE={launcher.base} HOOK_PORT={hook_port}\n"
        script = "set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + "\n".join(commands)

        # when the reader pastes the ten commands into one shell
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
        env.update(WAP_ENV_FILE=str(launcher_env), PYTHONPATH=str(BASE_DIR))
        done = subprocess.run(["bash", "-c", script], cwd=workdir, env=env, capture_output=True, text=True,
                              timeout=240)

        # then every command succeeded, the webhook was verified, and the reply was read back
        assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}\n{launcher.output()[-3000:]}"
        assert "verified message.received: Sandbox echo: Hello from the quickstart" in done.stdout
        assert '"direction":"in"' in done.stdout and "REFUSED" not in done.stdout
    finally:
        launcher.close()

