-- The plans are public (the landing page lists them): readable by every role, including the
-- per-tenant roles of role mode (TENANTRY_DEMO_TENANT_ROLES), whose tenant pages read them.
GRANT SELECT ON plans TO PUBLIC;
