"""Shared test infrastructure, imported as ``support.<module>`` (``tests/`` is on ``sys.path``).

- :mod:`support.processes`: the one launcher for every process a test starts (bounded, own session,
  whole tree reaped);
- :mod:`support.airflow_harness`: real Airflow for the tests (migrated metadata DB, homes, ``airflow
  dags test``, the shared API server);
- :mod:`support.leaks`: the thread and process leak checks the root ``conftest.py`` runs;
- :mod:`support.canaries`: the canary-secret corpus and its leak check.
"""
