from django.db import migrations

from tenants.default_tiers import ensure_default_tiers


def seed(apps, schema_editor):
    ensure_default_tiers(apps.get_model("tenants", "Tier"))


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
