-- The group role of every tenant role (slot g); its use of the shared schemas that exist is
-- granted after it (admin/roles.rs).
DO $tenantry$ BEGIN CREATE ROLE {g} NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $tenantry$
