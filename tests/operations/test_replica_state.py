"""The Health page says where analytics reads go when no read replica is configured."""

import re


def test_health_shows_no_replica_lag_without_a_replica(staff_client):
    html = staff_client.get("/admin/operations/health/").content.decode()

    lag = re.search(r'id="replica-lag">([^<]*)<', html).group(1)
    assert lag.startswith("n/a") and "DATABASE_REPLICA_URL" in lag
