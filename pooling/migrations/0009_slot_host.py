from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('pooling', '0008_session_status_reported_at'),
    ]

    operations = [
        migrations.AddField(
            model_name='slot',
            name='host',
            field=models.CharField(blank=True, db_index=True, max_length=255),
        ),
    ]
