"""The S3 path: django-storages' S3 backend (boto3) against a real S3 API server process
(moto_server from PyPI) standing for the provider, as MEDIA_STORAGE=s3 configures it."""

import subprocess
import sys

import boto3
import httpx
import pytest

from tests.http_receiver import free_port
from tests.media.conftest import SAMPLES
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

BUCKET = "wa-media-test"
CREDENTIALS = {"aws_access_key_id": "test-key", "aws_secret_access_key": "test-secret"}


@pytest.fixture
def s3_server():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.poll() is None, "moto_server exited"
        try:
            return httpx.get(url, timeout=0.5).status_code < 500
        except httpx.TransportError:
            return False

    try:
        wait_until(answers, timeout=30, message="the S3 server to answer")
        client = boto3.client("s3", endpoint_url=url, region_name="us-east-1", **CREDENTIALS)
        client.create_bucket(Bucket=BUCKET)
        yield url, client
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def s3_storage(settings, s3_server, media_root):
    url, client = s3_server
    settings.STORAGES = {**settings.STORAGES, "media": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": BUCKET, "endpoint_url": url, "region_name": "us-east-1",
        "access_key": CREDENTIALS["aws_access_key_id"], "secret_key": CREDENTIALS["aws_secret_access_key"],
        "location": "media", "default_acl": None, "querystring_auth": False, "file_overwrite": True}}}
    return client


def test_inbound_media_is_stored_in_s3_once_and_served_from_it(waha_platform, s3_storage, media_root):
    data, mimetype, filename = SAMPLES["image"]
    first = waha_platform.settled(waha_platform.receive("image", data, mimetype, filename))
    second = waha_platform.settled(waha_platform.receive("image", data, mimetype, "again.png"))

    keys = sorted(o["Key"] for o in s3_storage.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert keys == [f"media/{first.storage_key}", f"media/{first.thumbnail_key}"]
    assert s3_storage.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read() == data
    assert second.storage_key == first.storage_key
    assert not media_root.exists() or not any(p.is_file() for p in media_root.rglob("*"))

    download = waha_platform.api.get(f"/api/v1/media/{second.pk}", HTTP_RANGE="bytes=8-99")
    assert download.status_code == 206 and b"".join(download.streaming_content) == data[8:100]
