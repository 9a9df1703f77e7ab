from django.db import migrations


class Migration(migrations.Migration):
    """Alert moves up to operations (it holds kinds of every app). The rows stay: the table is
    renamed, and operations.0001 adopts it without touching the database."""

    dependencies = [
        ("pooling", "0003_alter_alert_kind"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.AlterModelTable(name="alert", table="operations_alert")],
            state_operations=[migrations.DeleteModel(name="Alert")],
        ),
    ]
