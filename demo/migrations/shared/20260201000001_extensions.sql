-- A shared `extensions` schema, on every search path after the tenant and shared schemas
-- (Tenantry's extra_search_path): extensions and shared types live here once, not per tenant.
CREATE SCHEMA IF NOT EXISTS extensions;
CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA extensions;
CREATE TYPE extensions.sample_status AS ENUM ('received', 'testing', 'done');
