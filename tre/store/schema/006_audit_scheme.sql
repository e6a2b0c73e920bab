-- The audit chain becomes keyed: each event says which scheme made its hash. Events
-- before this migration were hashed with plain sha256; new ones are an HMAC-SHA256 under
-- the home's audit key ('hmac1'), see tre/audit.py. ADD COLUMN fires no UPDATE trigger,
-- so the append-only guard stays as it is.
ALTER TABLE audit ADD COLUMN scheme TEXT NOT NULL DEFAULT 'sha256';
