"""The demo: per-person passwords, seeded into a new database only, never reset."""

import re
import stat
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from tenants.models import Tenant
from tests.factories import UserFactory

User = get_user_model()
DEMO_USERS = ["operator", "acme-agent", "globex-agent", "initech-agent"]


@pytest.fixture(autouse=True)
def _var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def printed_passwords(output: str) -> dict[str, str]:
    return dict(re.findall(r"^Demo (?:operator|tenant agent): (\S+) / (\S+)$", output, re.M))


def signs_in(username: str, password: str) -> bool:
    response = Client().post("/inbox/login/", {"username": username, "password": password})
    return response.status_code == 302


def test_every_demo_user_gets_a_password_of_its_own_printed_once_and_kept_in_var(db, settings):
    output = seed()
    passwords = printed_passwords(output)

    assert sorted(passwords) == sorted(DEMO_USERS)
    assert len(set(passwords.values())) == len(DEMO_USERS)
    assert signs_in("acme-agent", passwords["acme-agent"])
    assert not signs_in("acme-agent", passwords["operator"])
    kept = settings.VAR_DIR / "demo-passwords" / "globex-agent"
    assert kept.read_text().strip() == passwords["globex-agent"]
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert output.count("API key (shown once)") == 3


def test_a_changed_password_survives_the_next_seed(db):
    passwords = printed_passwords(seed())
    user = User.objects.get(username="acme-agent")
    user.set_password("my own passphrase 42")
    user.save()

    again = seed()

    assert printed_passwords(again) == {} and "API key (shown once)" not in again
    assert "seeded only into a new one" in again
    assert signs_in("acme-agent", "my own passphrase 42")
    assert not signs_in("acme-agent", passwords["acme-agent"])
    assert Tenant.objects.filter(slug__in=["acme", "globex", "initech"]).count() == 3


def test_demo_false_seeds_no_users_or_tenants(db, settings):
    settings.DEMO = False

    output = seed()

    assert "DEMO=false" in output
    assert not User.objects.exists() and not Tenant.objects.exists()
    assert not (settings.VAR_DIR / "demo-passwords").exists()


def test_a_database_already_in_use_gets_no_demo(db):
    UserFactory(username="alice")

    output = seed()

    assert printed_passwords(output) == {}
    assert not User.objects.filter(username__in=DEMO_USERS).exists()
