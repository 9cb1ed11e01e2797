"""Asset definitions; every module here is loaded by `dagster_app.definitions`."""
