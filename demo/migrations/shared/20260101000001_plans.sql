-- Shared data every tenant page reads: the plans a tenant can be on.
CREATE TABLE plans (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    monthly_price_cents INTEGER NOT NULL,
    note_limit INTEGER NOT NULL
);
INSERT INTO plans (code, name, monthly_price_cents, note_limit) VALUES
    ('free', 'Free', 0, 100),
    ('pro', 'Pro', 1200, 10000),
    ('enterprise', 'Enterprise', 9900, 1000000);
