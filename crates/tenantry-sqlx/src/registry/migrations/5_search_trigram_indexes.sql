
-- Trigram indexes for the operator screens' search (Admin::tenant_page: a schema name, display
-- name or domain containing the text), so that a rare term is found through the indexes rather
-- than by a walk of the whole registry.
--
-- pg_trgm is a trusted extension (CREATE privilege on the database is enough). Where it is
-- installed already, that copy is used, in whatever schema it lives; otherwise it is created
-- in the first schema of this migration's search_path, the shared schema (move it with ALTER
-- EXTENSION pg_trgm SET SCHEMA ...: the indexes follow). When it can't be had (no privilege,
-- contrib not installed, a Citus worker refusing it) nothing is created: the search gives the
-- same results, walking the registry as before.
DO $trgm$
DECLARE
    ops text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION pg_trgm;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'tenantry: no pg_trgm (% %): tenant search runs without trigram indexes',
                SQLSTATE, SQLERRM;
            RETURN;
        END;
    END IF;
    SELECT format('%I.gin_trgm_ops', n.nspname) INTO ops
    FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_trgm';
    EXECUTE format('CREATE INDEX tenantry_tenants_schema_name_trgm ON tenantry_tenants USING gin (schema_name %s)', ops);
    EXECUTE format('CREATE INDEX tenantry_tenants_display_name_trgm ON tenantry_tenants USING gin (display_name %s)', ops);
    EXECUTE format('CREATE INDEX tenantry_domains_domain_trgm ON tenantry_domains USING gin (domain %s)', ops);
END
$trgm$;
