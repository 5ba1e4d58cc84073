-- chaintape:idempotent
-- Only the owner creates objects in the public schema. PostgreSQL 15 makes this the default for
-- new databases, but a database created by an older version (or restored from its dump) still
-- lets every role, Grafana's read-only one included, create tables and functions there.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
