from tenants.models import Tier
from tests.conftest import client_for
from tests.factories import TenantFactory


def test_each_tier_is_throttled_at_its_own_rate_with_retry_after(db):
    Tier.objects.filter(name="standard").update(api_rate_limit_per_minute=3)
    Tier.objects.filter(name="enterprise").update(api_rate_limit_per_minute=6)
    standard = client_for(TenantFactory(tier=Tier.objects.get(name="standard")))
    enterprise = client_for(TenantFactory(tier=Tier.objects.get(name="enterprise")))

    standard_codes = [standard.get("/api/v1/tenant").status_code for _ in range(4)]
    enterprise_codes = [enterprise.get("/api/v1/tenant").status_code for _ in range(6)]
    refused = standard.get("/api/v1/tenant")

    assert standard_codes == [200, 200, 200, 429]
    assert enterprise_codes == [200] * 6
    assert refused.json()["code"] == "throttled"
    assert 1 <= int(refused["Retry-After"]) <= 60


def test_throttles_are_per_tenant(db):
    Tier.objects.filter(name="standard").update(api_rate_limit_per_minute=1)
    first, second = client_for(TenantFactory()), client_for(TenantFactory())

    assert first.get("/api/v1/tenant").status_code == 200
    assert second.get("/api/v1/tenant").status_code == 200
    assert first.get("/api/v1/tenant").status_code == 429


def test_people_in_the_inbox_do_not_use_up_the_integrations_budget(db):
    from django.test import Client

    from tests.factories import MembershipFactory

    Tier.objects.filter(name="standard").update(api_rate_limit_per_minute=2)
    membership = MembershipFactory()
    person = Client()
    person.force_login(membership.user)
    integration = client_for(membership.tenant)

    person_codes = [person.get("/api/v1/tenant").status_code for _ in range(3)]
    integration_codes = [integration.get("/api/v1/tenant").status_code for _ in range(3)]

    assert person_codes == [200, 200, 429]
    assert integration_codes == [200, 200, 429]
