"""Firebase custom tokens: how a tenant's app signs in to read its mirror.

A custom token is a JWT signed with a service account's key; Firebase Auth
exchanges it (signInWithCustomToken) for an ID token whose claims
firestore.rules check. Signing happens here, locally, with the key file
named by FIREBASE_SERVICE_ACCOUNT_FILE (by default GOOGLE_APPLICATION_CREDENTIALS).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from google.auth import jwt
from google.oauth2 import service_account

from tenants.models import Tenant

# Fixed by Firebase Auth for custom tokens.
AUDIENCE = "https://identitytoolkit.googleapis.com/google.identity.identitytoolkit.v1.IdentityToolkit"
LIFETIME_SECONDS = 3600  # the most Firebase accepts
MAX_UID_LENGTH = 128


class CustomTokensNotConfigured(Exception):
    pass


@dataclass(frozen=True)
class CustomToken:
    token: str
    uid: str
    claims: dict
    expires_in: int


@lru_cache(maxsize=4)
def _credentials(path: str) -> service_account.Credentials:
    try:
        return service_account.Credentials.from_service_account_file(path)
    except (OSError, ValueError, KeyError) as exc:
        raise CustomTokensNotConfigured(f"FIREBASE_SERVICE_ACCOUNT_FILE is not a usable service-account key: {exc}")


def signing_credentials() -> service_account.Credentials:
    if not settings.FIRESTORE_PROJECT:
        raise CustomTokensNotConfigured("The Firestore mirror is off on this platform (FIRESTORE_PROJECT is unset).")
    if not settings.FIREBASE_SERVICE_ACCOUNT_FILE:
        raise CustomTokensNotConfigured(
            "Custom tokens need a service-account key: set FIREBASE_SERVICE_ACCOUNT_FILE "
            "(or GOOGLE_APPLICATION_CREDENTIALS) on the platform.")
    return _credentials(settings.FIREBASE_SERVICE_ACCOUNT_FILE)


def tenant_uid(tenant: Tenant, app_user: str = "") -> str:
    # Tenants share one Firebase project: the prefix keeps their users apart.
    base = f"tenant-{tenant.pk}"
    return f"{base}:{app_user}"[:MAX_UID_LENGTH] if app_user else base


def mint_custom_token(*, tenant: Tenant, app_user: str = "") -> CustomToken:
    """A custom token for the tenant's app, carrying the claim {tenant: "<id>"} the rules check."""
    credentials = signing_credentials()
    uid = tenant_uid(tenant, app_user)
    claims = {"tenant": str(tenant.pk)}
    now = int(time.time())
    payload = {
        "iss": credentials.service_account_email,
        "sub": credentials.service_account_email,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + LIFETIME_SECONDS,
        "uid": uid,
        "claims": claims,
    }
    token = jwt.encode(credentials.signer, payload).decode()
    return CustomToken(token=token, uid=uid, claims=claims, expires_in=LIFETIME_SECONDS)
