-- Run once by the postgres image on its first start (docker-entrypoint-initdb.d), as the superuser of
-- POSTGRES_USER, in POSTGRES_DB (Airflow's metadata database). The ledger and Marquez get their own
-- database and owner on the same server (docs/compose.md). The passwords are the stack's development
-- defaults: change them here and in .env together before the first start.
CREATE USER qubinode WITH PASSWORD 'qubinode';
CREATE DATABASE qubinode_ledger OWNER qubinode;
CREATE USER marquez WITH PASSWORD 'marquez';
CREATE DATABASE marquez OWNER marquez;
