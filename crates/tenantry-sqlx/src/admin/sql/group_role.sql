-- The group role of every tenant role (slot g), and its use of the shared schemas (slot schemas).
DO $tenantry$ BEGIN CREATE ROLE {g} NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $tenantry$;
GRANT USAGE ON SCHEMA {schemas} TO {g}
