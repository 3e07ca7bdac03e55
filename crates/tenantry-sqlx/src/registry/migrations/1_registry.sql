
CREATE TABLE tenantry_tenants (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schema_name TEXT NOT NULL UNIQUE CHECK (schema_name ~ '^[a-z_][a-z0-9_]{0,62}$'),
    display_name TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'maintenance')),
    tenant_type TEXT NOT NULL DEFAULT 'default',
    data JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE tenantry_domains (
    domain TEXT PRIMARY KEY CHECK (domain = lower(domain) AND length(domain) <= 253),
    tenant_id BIGINT NOT NULL REFERENCES tenantry_tenants (id) ON DELETE CASCADE,
    is_primary BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX tenantry_domains_one_primary ON tenantry_domains (tenant_id) WHERE is_primary;
CREATE INDEX tenantry_domains_tenant ON tenantry_domains (tenant_id);
CREATE TABLE tenantry_migration_ledger (
    schema_name TEXT PRIMARY KEY,
    tenant_type TEXT NOT NULL,
    last_version BIGINT,
    fingerprint TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE FUNCTION tenantry_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tenantry_registry', TG_TABLE_NAME);
    RETURN NULL;
END
$$;
CREATE TRIGGER tenantry_tenants_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON tenantry_tenants FOR EACH STATEMENT EXECUTE FUNCTION tenantry_notify();
CREATE TRIGGER tenantry_domains_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON tenantry_domains FOR EACH STATEMENT EXECUTE FUNCTION tenantry_notify();
