-- A key's right to create and read tasks. Keys made before this may do both, as they could;
-- `keys create --ingest` now makes keys that may only post evidence.
ALTER TABLE api_keys ADD COLUMN can_check BOOLEAN NOT NULL DEFAULT TRUE;
