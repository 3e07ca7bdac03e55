-- Lab tenants only: samples. `citext` and `sample_status` come from the shared `extensions` schema.
CREATE TABLE samples (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code citext NOT NULL UNIQUE,
    status sample_status NOT NULL DEFAULT 'received'
);
