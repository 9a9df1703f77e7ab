"""Failed sign-ins and unknown API keys are throttled per client address (real Redis)."""

from base64 import b64encode

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tenants.services import issue_api_key
from tests.factories import MembershipFactory, OperatorFactory

PASSWORD = "correct horse battery"


def client_from(address: str) -> Client:
    # The test client's REMOTE_ADDR stands for the peer daphne reports (the client, behind nginx).
    return Client(REMOTE_ADDR=address)


@pytest.fixture
def member(db):
    membership = MembershipFactory()
    membership.user.set_password(PASSWORD)
    membership.user.save()
    return membership.user


@pytest.mark.parametrize("path", ["/inbox/login/", "/admin/login/"])
def test_the_sixth_failed_sign_in_from_one_address_is_429_and_other_addresses_still_sign_in(db, settings, path):
    settings.LOGIN_FAILURE_LIMIT = 5
    operator = OperatorFactory()
    operator.set_password(PASSWORD)
    operator.save()
    guesser = client_from("203.0.113.7")

    failures = [guesser.post(path, {"username": operator.username, "password": f"guess {n}"}).status_code
                for n in range(5)]
    sixth = guesser.post(path, {"username": operator.username, "password": "guess 6"})
    right_from_the_guesser = guesser.post(path, {"username": operator.username, "password": PASSWORD})
    elsewhere = client_from("198.51.100.20").post(path, {"username": operator.username, "password": PASSWORD})

    assert failures == [200] * 5  # the form again, with its error
    assert sixth.status_code == 429
    assert 0 < int(sixth["Retry-After"]) <= settings.LOGIN_FAILURE_WINDOW_SECONDS
    assert "Too many failed attempts" in sixth.content.decode()
    assert right_from_the_guesser.status_code == 429  # a correct guess must not tell itself apart
    assert elsewhere.status_code == 302


def test_a_success_does_not_reset_the_count(member, settings):
    """A guesser with an account of its own must not earn fresh guesses by signing in."""
    settings.LOGIN_FAILURE_LIMIT = 3
    guesser = client_from("203.0.113.8")
    guesser.post("/inbox/login/", {"username": member.username, "password": "x"})
    guesser.post("/inbox/login/", {"username": member.username, "password": "y"})
    assert guesser.post("/inbox/login/", {"username": member.username, "password": PASSWORD}).status_code == 302
    guesser.post("/inbox/logout/")
    guesser.post("/inbox/login/", {"username": member.username, "password": "z"})

    assert guesser.post("/inbox/login/", {"username": member.username, "password": PASSWORD}).status_code == 429


def test_unknown_api_keys_from_one_address_end_in_429_and_valid_keys_still_work(tenant, settings):
    settings.API_KEY_FAILURE_LIMIT = 4
    valid = issue_api_key(tenant=tenant).plaintext
    scanner = APIClient(REMOTE_ADDR="203.0.113.9")
    scanner.credentials(HTTP_AUTHORIZATION="Bearer wap_not-a-key")

    answers = [scanner.get("/api/v1/tenant") for _ in range(5)]
    other_address = APIClient(REMOTE_ADDR="198.51.100.21")
    other_address.credentials(HTTP_AUTHORIZATION="Bearer wap_not-a-key")
    neighbour = APIClient(REMOTE_ADDR="203.0.113.9")
    neighbour.credentials(HTTP_AUTHORIZATION=f"Bearer {valid}")

    assert [a.status_code for a in answers] == [401, 401, 401, 401, 429]
    assert answers[-1].json()["code"] == "throttled"
    assert 0 < int(answers[-1]["Retry-After"]) <= settings.API_KEY_FAILURE_WINDOW_SECONDS
    assert other_address.get("/api/v1/tenant").status_code == 401
    assert neighbour.get("/api/v1/tenant").status_code == 200


def test_http_basic_on_the_staff_api_shares_the_sign_in_limit(db, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    operator = OperatorFactory()
    operator.set_password(PASSWORD)
    operator.save()
    guesser = APIClient(REMOTE_ADDR="203.0.113.10")

    answers = []
    for password in ["a", "b", "c", PASSWORD]:
        guesser.credentials(HTTP_AUTHORIZATION="Basic " + b64encode(f"{operator.username}:{password}".encode()).decode())
        answers.append(guesser.get("/api/v1/staff/slots").status_code)
    elsewhere = APIClient(REMOTE_ADDR="198.51.100.22")
    elsewhere.credentials(HTTP_AUTHORIZATION="Basic " + b64encode(f"{operator.username}:{PASSWORD}".encode()).decode())

    assert answers == [403, 403, 403, 429]  # 403: the view lists the session first, which has no challenge
    assert elsewhere.get("/api/v1/staff/slots").status_code == 200


def test_ipv6_addresses_of_one_64_share_a_budget(tenant, settings):
    settings.API_KEY_FAILURE_LIMIT = 2
    answers = []
    for host in ["2001:db8:1:2::10", "2001:db8:1:2::11", "2001:db8:1:2:aaaa::1"]:
        scanner = APIClient(REMOTE_ADDR=host)
        scanner.credentials(HTTP_AUTHORIZATION="Bearer wap_not-a-key")
        answers.append(scanner.get("/api/v1/tenant").status_code)
    next_network = APIClient(REMOTE_ADDR="2001:db8:1:3::10")
    next_network.credentials(HTTP_AUTHORIZATION="Bearer wap_not-a-key")

    assert answers == [401, 401, 429]
    assert next_network.get("/api/v1/tenant").status_code == 401
