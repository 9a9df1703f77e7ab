import operations.models
from django.db import migrations, models


class Migration(migrations.Migration):
    """Adopts the Alert table pooling.0004 renamed to operations_alert; state only, rows kept.

    `kind` has no `choices`: kinds are validated in code (waplatform.alerts.AlertKind),
    so adding one needs no migration.
    """

    initial = True

    dependencies = [
        ("pooling", "0004_move_alert_to_operations"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="Alert",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("kind", models.CharField(max_length=32, validators=[operations.models._known_kind])),
                        ("key", models.CharField(max_length=128)),
                        ("message", models.TextField()),
                        ("opened_at", models.DateTimeField(auto_now_add=True)),
                        ("resolved_at", models.DateTimeField(blank=True, null=True)),
                    ],
                    options={
                        "ordering": ["-opened_at"],
                        "constraints": [
                            models.UniqueConstraint(
                                condition=models.Q(("resolved_at__isnull", True)),
                                fields=("kind", "key"),
                                name="one_open_alert_per_kind_key",
                            )
                        ],
                    },
                ),
            ],
        ),
    ]
