
-- tenantry_enter as in migration 3, except that a tenant in maintenance is refused with TY003
-- (TenantNotServing { status: Maintenance }: 503 with Retry-After), not TY002 (suspended, 403).
CREATE OR REPLACE FUNCTION tenantry_enter(p_id bigint, p_schema text, p_oid oid, p_serving boolean, p_session boolean,
                               p_domain text)
RETURNS boolean LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_oid oid;
    v_status text;
BEGIN
    -- Shared tenant lock first: renames, deletes and status changes take it exclusively, so
    -- they wait for this tenant's work in flight, and what is read below cannot change
    -- until the transaction (or session) ends.
    IF p_session THEN
        PERFORM pg_advisory_lock_shared(1952804468, (p_id & 2147483647)::int);
    ELSE
        PERFORM pg_advisory_xact_lock_shared(1952804468, (p_id & 2147483647)::int);
    END IF;
    -- Read after the lock: a fresh snapshot (volatile function) and fresh catalog caches.
    SELECT n.oid INTO v_oid FROM pg_catalog.pg_namespace n WHERE n.nspname = p_schema;
    IF v_oid IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_schema_name',
            MESSAGE = format('schema "%s" does not exist', p_schema);
    END IF;
    SELECT t.status INTO v_status FROM tenantry_tenants t WHERE t.id = p_id AND t.schema_name = p_schema;
    IF NOT FOUND OR v_oid IS DISTINCT FROM coalesce(p_oid, v_oid) THEN
        RAISE EXCEPTION USING ERRCODE = 'TY001',
            MESSAGE = format('tenantry: schema "%s" no longer belongs to tenant %s', p_schema, p_id);
    END IF;
    -- Reached through a domain: it must still be this tenant's (it may have moved to another).
    IF p_domain IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM tenantry_domains d WHERE d.domain = p_domain AND d.tenant_id = p_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'TY001',
            MESSAGE = format('tenantry: domain "%s" no longer belongs to tenant %s', p_domain, p_id);
    END IF;
    IF p_serving AND v_status = 'maintenance' THEN
        RAISE EXCEPTION USING ERRCODE = 'TY003',
            MESSAGE = format('tenantry: tenant "%s" is in maintenance', p_schema);
    ELSIF p_serving AND v_status <> 'active' THEN
        RAISE EXCEPTION USING ERRCODE = 'TY002',
            MESSAGE = format('tenantry: tenant "%s" is %s', p_schema, v_status);
    END IF;
    RETURN true;
END
$$;
