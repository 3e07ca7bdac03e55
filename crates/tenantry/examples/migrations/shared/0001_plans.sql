-- Shared data (one copy, in the shared schema): plans every tenant can read.
CREATE TABLE plans (code TEXT PRIMARY KEY, name TEXT NOT NULL);
INSERT INTO plans VALUES ('free', 'Free'), ('pro', 'Pro');
