-- The tenant's role (slot r, in the group role g) owns its schema (s) and everything in it, and
-- gets what later migrations (run by the connecting user) create there. `GRANT r TO CURRENT_USER`
-- lets a non-superuser owner SET ROLE and migrate later. Slots are filled by sql::fill with
-- quoted names (ns: the schema as a literal, rl: the role name as a literal).
CREATE ROLE {r} NOLOGIN IN ROLE {g};
GRANT {r} TO CURRENT_USER;
ALTER SCHEMA {s} OWNER TO {r};
DO $tenantry$ DECLARE o record; BEGIN
  FOR o IN SELECT c.oid::regclass AS name FROM pg_class c
    WHERE c.relnamespace = {ns}::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
        AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
  LOOP EXECUTE format('ALTER TABLE %s OWNER TO %I', o.name, {rl}); END LOOP;
  FOR o IN SELECT p.oid::regprocedure AS name FROM pg_proc p WHERE p.pronamespace = {ns}::regnamespace
  LOOP EXECUTE format('ALTER ROUTINE %s OWNER TO %I', o.name, {rl}); END LOOP;
END $tenantry$;
ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT ALL ON TABLES TO {r};
ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT ALL ON SEQUENCES TO {r};
ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT EXECUTE ON ROUTINES TO {r}
