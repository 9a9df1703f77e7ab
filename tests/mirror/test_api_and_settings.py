"""The mirror's switch and the custom-token endpoint (no Firestore needed for these)."""

import json

import django_rq
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

from rest_framework.test import APIClient

from mirror.custom_tokens import AUDIENCE
from tests.factories import MembershipFactory
from waplatform.events import publish_event


def test_with_firestore_project_unset_the_subscriber_enqueues_nothing(transactional_db, tenant, settings):
    settings.FIRESTORE_PROJECT = ""
    publish_event(tenant_id=tenant.pk, type="tenant.updated", data={})
    assert django_rq.get_queue("maintenance").count == 0


def test_with_firestore_project_set_an_event_enqueues_a_mirror_job(transactional_db, tenant, settings):
    settings.FIRESTORE_PROJECT = "demo-project"
    publish_event(tenant_id=tenant.pk, type="message.received", data={"id": 7, "conversation_id": 3})
    [job] = django_rq.get_queue("maintenance").jobs
    assert job.func_name == "mirror.jobs.mirror_object" and job.args[:3] == ("message", tenant.pk, 7)


def test_firebase_token_is_503_when_not_configured(api_client, settings):
    settings.FIRESTORE_PROJECT = ""
    response = api_client.post("/api/v1/firebase/token", {}, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "firebase_not_configured" and "FIRESTORE_PROJECT" in response.json()["detail"]


def test_firebase_token_without_a_key_file_is_503(api_client, settings):
    settings.FIRESTORE_PROJECT = "demo-project"
    settings.FIREBASE_SERVICE_ACCOUNT_FILE = ""
    response = api_client.post("/api/v1/firebase/token", {}, format="json")
    assert response.status_code == 503 and "FIREBASE_SERVICE_ACCOUNT_FILE" in response.json()["detail"]


@pytest.fixture
def service_account(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {
        "type": "service_account", "project_id": "demo-project", "private_key_id": "test-key",
        "private_key": pem, "client_email": "mirror@demo-project.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token",
    }
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(info))
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return path, public


def test_firebase_token_carries_the_callers_tenant_claim(api_client, tenant, settings, service_account):
    # given a platform configured with a service-account key
    path, public_key = service_account
    settings.FIRESTORE_PROJECT = "demo-project"
    settings.FIREBASE_SERVICE_ACCOUNT_FILE = str(path)

    # when the tenant's integration asks for a token for one of its app users
    response = api_client.post("/api/v1/firebase/token", {"user": "alice"}, format="json")

    # then it is a custom token signed by the service account, for that tenant only
    assert response.status_code == 200, response.content
    body = response.json()
    claims = jwt.decode(body["token"], certs=public_key, audience=AUDIENCE)
    assert claims["claims"] == {"tenant": str(tenant.pk)} == body["claims"]
    assert claims["uid"] == body["uid"] == f"tenant-{tenant.pk}:alice"
    assert claims["iss"] == claims["sub"] == "mirror@demo-project.iam.gserviceaccount.com"
    assert claims["exp"] - claims["iat"] == 3600
    assert body["path"] == f"tenants/{tenant.pk}" and body["project_id"] == "demo-project"


def test_a_signed_in_member_gets_a_token_of_its_own(tenant, settings, service_account):
    path, public_key = service_account
    settings.FIRESTORE_PROJECT = "demo-project"
    settings.FIREBASE_SERVICE_ACCOUNT_FILE = str(path)
    member = MembershipFactory(tenant=tenant)
    client = APIClient()
    client.force_login(member.user)

    response = client.post("/api/v1/firebase/token", {}, format="json")

    assert response.status_code == 200, response.content
    claims = jwt.decode(response.json()["token"], certs=public_key, audience=AUDIENCE)
    assert claims["uid"] == f"tenant-{tenant.pk}:user-{member.user.pk}"
    assert claims["claims"] == {"tenant": str(tenant.pk)}


def test_firebase_token_needs_an_api_key(client):
    assert client.post("/api/v1/firebase/token").status_code in (401, 403)
