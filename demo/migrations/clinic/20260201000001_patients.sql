-- Clinic tenants only: patients. `citext` comes from the shared `extensions` schema.
CREATE TABLE patients (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL,
    email citext UNIQUE
);
