"""Airflow plugins of the provider: the recovery UI (:mod:`.recovery_ui`), registered through the
``airflow.plugins`` entry point and the provider info."""
