"""Schedules.

They start switched off (turn them on in the UI, or with `dagster schedule start`): a fresh checkout should
not begin writing to a warehouse someone is using.
"""

from dagster import DefaultScheduleStatus, ScheduleDefinition

from dagster_app.jobs import frequent_refresh, full_build

daily_full_build = ScheduleDefinition(
    name="daily_full_build",
    job=full_build,
    cron_schedule="0 5 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Rebuild the whole warehouse every day at 05:00 UTC, retraining included.",
)

every_15_minutes_refresh = ScheduleDefinition(
    name="every_15_minutes_refresh",
    job=frequent_refresh,
    # Off the quarter hours, so it does not start together with the daily build at 05:00.
    cron_schedule="7,22,37,52 * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Every 15 minutes: new web and ESP events, behavioral triggers and the audience.",
)
