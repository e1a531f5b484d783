"""The provider's two DAGs, ``qubinode_failure_recovery`` and ``qubinode_shadow_scan``, defined in the
installed package: each module's ``build()`` makes its DAG, and a DAGs folder holds a small file that
calls it (``qubinode-recovery dags install``, docs/quickstart.md), so upgrading the provider upgrades
the DAGs. Importing this package does not import Airflow; importing one of its DAG modules does."""
