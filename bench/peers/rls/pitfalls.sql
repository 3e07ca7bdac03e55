-- What row-level security leaves to the application: two reproductions on the RLS bench
-- database (after `peers-rls setup`), run as a superuser with
--   psql postgres://postgres@127.0.0.1:5432/peers_rls_1000 -f bench/peers/rls/pitfalls.sql
-- Both happen with the app's own role, `app.tenant_id` set to tenant 1, and print how many rows
-- of OTHER tenants that tenant reads. Everything runs in one transaction that is rolled back.
-- With a schema per tenant (Tenantry) neither can happen: a new table is created in each
-- tenant's schema by the tenant migrations, and there is no policy to write or forget.
\set ON_ERROR_STOP on
BEGIN;

-- 1. A table added later without its policy (a migration that forgot
--    `ENABLE/FORCE ROW LEVEL SECURITY` + `CREATE POLICY`): every tenant reads every row.
CREATE TABLE tags (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                   tenant_id BIGINT NOT NULL, name TEXT NOT NULL);
INSERT INTO tags (tenant_id, name) SELECT id, 'tag of ' || name FROM tenants;
ALTER TABLE tags OWNER TO peers_rls_app;

-- 2. A view created by a superuser (e.g. a migration run as postgres): views run with their
--    owner's rights, and a superuser bypasses row-level security, FORCE or not.
CREATE VIEW recent_notes AS SELECT * FROM notes ORDER BY created_at DESC;
GRANT SELECT ON recent_notes TO peers_rls_app;

SET LOCAL ROLE peers_rls_app;
SELECT set_config('app.tenant_id', '1', true);
SELECT 'notes (policy in place)' AS "table", count(*) FILTER (WHERE tenant_id <> 1) AS other_tenants_rows_seen FROM notes
UNION ALL
SELECT 'tags (no policy)', count(*) FILTER (WHERE tenant_id <> 1) FROM tags
UNION ALL
SELECT 'recent_notes (view owned by postgres)', count(*) FILTER (WHERE tenant_id <> 1) FROM recent_notes;
ROLLBACK;
