from pooling.models import WhatsAppSession
from pooling.sessions import start_session


def seed(*, tenants) -> None:
    """Demo tenants get a running sandbox session (scanned by itself after SANDBOX_AUTO_SCAN_SECONDS)."""
    for tenant in tenants:
        if not WhatsAppSession.objects.filter(tenant=tenant, wanted=True).exists():
            start_session(tenant=tenant)
