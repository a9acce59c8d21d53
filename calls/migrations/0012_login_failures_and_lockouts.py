"""Failed logins and lock-outs move from the cache to PostgreSQL (calls/logins.py); those in Redis are forgotten."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('calls', '0011_rollup_failures_are_failed_calls'),
    ]

    operations = [
        migrations.CreateModel(
            name='LockOut',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('subject', models.CharField(max_length=80, unique=True)),
                ('kind', models.CharField(choices=[('account', 'Account'), ('address', 'Address')], max_length=7)),
                ('name', models.CharField(max_length=150, verbose_name='account or address')),
                ('since', models.DateTimeField()),
                ('until', models.DateTimeField(db_index=True)),
                ('failures', models.PositiveIntegerField()),
            ],
            options={
                'verbose_name': 'lock-out',
                'ordering': ['-since'],
            },
        ),
        migrations.CreateModel(
            name='LoginFailure',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('subject', models.CharField(max_length=80)),
                ('at', models.DateTimeField()),
            ],
            options={
                'indexes': [models.Index(fields=['subject', 'at'], name='loginfailure_subject_at_idx'), models.Index(fields=['at'], name='loginfailure_at_idx')],
            },
        ),
    ]
