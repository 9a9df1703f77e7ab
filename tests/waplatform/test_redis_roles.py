"""Three Redis roles (queues, channels, cache), each from its own URL, plain or Sentinel."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from waplatform.embedded_redis import EmbeddedRedis, free_port
from waplatform.queues import enqueue
from waplatform.redis import get_redis, probe_client
from waplatform.redis_urls import InvalidRedisURL, parse_redis_url

BASE_DIR = Path(__file__).resolve().parents[2]


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_database():
    address = parse_redis_url(
        "redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2,[::1]:26380/wap-queues/2?sentinel_password=sp")

    assert address.is_sentinel
    assert address.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26379), ("::1", 26380))
    assert (address.service, address.db, address.password) == ("wap-queues", 2, "s3cret")
    assert address.sentinel_kwargs()["password"] == "sp"
    assert "s3cret" not in address.redacted()


def test_a_plain_url_is_left_to_redis_py():
    assert not parse_redis_url("redis://:pw@127.0.0.1:6379/3").is_sentinel


@pytest.mark.parametrize(("url", "hint"), [
    ("redis+sentinel://10.0.0.1:26379", "/SERVICE"),
    ("redis+sentinel://10.0.0.1:26379/svc/zero", "must be a number"),
    ("redis+sentinel:///svc/0", "at least one sentinel"),
    ("redis+sentinel://h:26379/svc/0?timeout=3", "unknown option"),
    ("http://127.0.0.1:6379/0", "not a Redis URL"),
])
def test_a_malformed_url_says_what_to_write(url, hint):
    with pytest.raises(InvalidRedisURL, match=hint.replace("/", "/")):
        parse_redis_url(url)


def _settings_in_subprocess(**environ) -> dict:
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'rq': s.RQ_QUEUES['high'], 'channels': s.CHANNEL_LAYERS['default']['CONFIG'],"
        " 'cache': s.CACHES['default']['LOCATION'], 'urls': [s.REDIS_QUEUES_URL, s.REDIS_CHANNELS_URL,"
        " s.REDIS_CACHE_URL]}, default=str))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    env.update(DJANGO_SETTINGS_MODULE="waplatform.settings", **environ)
    done = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_one_redis_url_serves_every_role():
    found = _settings_in_subprocess(REDIS_URL="redis://10.9.9.9:6379/4")

    assert found["urls"] == ["redis://10.9.9.9:6379/4"] * 3
    assert found["rq"]["URL"] == "redis://10.9.9.9:6379/4"
    assert found["channels"]["hosts"] == ["redis://10.9.9.9:6379/4"]
    assert found["cache"] == ["redis://10.9.9.9:6379/4"]


def test_each_role_takes_its_own_url_and_sentinel_reaches_django_rq_and_channels():
    found = _settings_in_subprocess(
        REDIS_URL="redis://10.9.9.9:6379/0",
        REDIS_QUEUES_URL="redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/wap-queues/1",
        REDIS_CHANNELS_URL="redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/wap-channels/0",
        REDIS_CACHE_URL="redis://10.0.0.9:6379/0",
    )

    assert found["rq"]["SENTINELS"] == [["10.0.0.1", 26379], ["10.0.0.2", 26379]]
    assert (found["rq"]["MASTER_NAME"], found["rq"]["DB"]) == ("wap-queues", 1)
    assert "URL" not in found["rq"]
    [host] = found["channels"]["hosts"]
    assert host["master_name"] == "wap-channels" and host["sentinels"] == [["10.0.0.1", 26379], ["10.0.0.2", 26379]]
    assert found["cache"] == ["redis://10.0.0.9:6379/0"]


def test_a_malformed_redis_url_stops_the_process_at_start_with_the_fix():
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    env.update(DJANGO_SETTINGS_MODULE="waplatform.settings", REDIS_QUEUES_URL="redis+sentinel://10.0.0.1:26379")
    done = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=BASE_DIR, env=env,
                          capture_output=True, text=True, timeout=60)

    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and "/SERVICE" in done.stderr


@pytest.mark.integration
def test_throttles_count_on_the_cache_redis_and_jobs_queue_on_the_queues_redis(api_client, tmp_path, settings):
    cache_server = EmbeddedRedis(port=free_port(), data_dir=tmp_path, appendonly=False).start()
    try:
        with override_settings(REDIS_CACHE_URL=cache_server.url):
            assert api_client.get("/api/v1/tenant").status_code == 200
            enqueue("waplatform.jobs.heartbeat", queue="maintenance")

            cache, queues = probe_client(cache_server.url), get_redis()
            assert cache.keys("wap:throttle:*") and not queues.keys("wap:throttle:*")
            assert queues.llen("rq:queue:maintenance") == 1 and not cache.keys("rq:*")
    finally:
        cache_server.stop()
