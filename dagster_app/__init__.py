"""Dagster orchestration of the email-personalization warehouse: `dagster_app.definitions:defs`."""
