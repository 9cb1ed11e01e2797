"""Schedules.

They start switched off (turn them on in the UI, or with `dagster schedule start`): a fresh checkout should
not begin writing to a warehouse someone is using.
"""

from dagster import DefaultScheduleStatus, ScheduleDefinition

from dagster_app.jobs import full_build

daily_full_build = ScheduleDefinition(
    name="daily_full_build",
    job=full_build,
    cron_schedule="0 5 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Rebuild the whole warehouse every day at 05:00 UTC.",
)
