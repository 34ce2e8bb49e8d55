-- Live lookups: what each provider was asked and when (a re-check within the freshness window
-- asks again for nothing), and per task how many lookups its budget has paid for.
CREATE TABLE lookup_cache (
    number           INTEGER NOT NULL,
    provider         TEXT NOT NULL,
    looked_up_at_ms  INTEGER NOT NULL,
    -- The provider's raw status, or empty when it had no answer for the number.
    raw_status       TEXT NOT NULL,
    PRIMARY KEY (number, provider)
) WITHOUT ROWID;

ALTER TABLE tasks ADD COLUMN lookups_made INTEGER NOT NULL DEFAULT 0;
