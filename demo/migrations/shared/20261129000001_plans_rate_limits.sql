-- Fair limits per tenant: each plan's request rate (sustained requests per second, and the
-- burst allowed after a quiet spell) and its cap on concurrent database transactions. NULL: no
-- limit. Sign-ups get the Free plan.
ALTER TABLE plans
    ADD COLUMN requests_per_second INTEGER CHECK (requests_per_second > 0),
    ADD COLUMN request_burst INTEGER CHECK (request_burst > 0),
    ADD COLUMN max_transactions INTEGER CHECK (max_transactions > 0);
UPDATE plans SET requests_per_second = 20, request_burst = 40 WHERE code = 'free';
UPDATE plans SET requests_per_second = 200, request_burst = 400 WHERE code = 'pro';
