-- Other servers' signing keys, as fetched from them or from a notary (spec: Server-Server API ›
-- Retrieving server keys). A current key has `expired_ts` NULL and is usable until
-- `valid_until_ts`; an old key (from `old_verify_keys`) verifies what was signed before
-- `expired_ts`. `fetched_ts` is when we learnt it; `response_json` the signed key response it came
-- in, which a notary serves on (with its own signature added).
CREATE TABLE server_keys (
    server_name TEXT NOT NULL,
    key_id TEXT NOT NULL,
    public_key TEXT NOT NULL,
    valid_until_ts BIGINT NOT NULL,
    expired_ts BIGINT,
    fetched_ts BIGINT NOT NULL,
    response_json TEXT NOT NULL,
    PRIMARY KEY (server_name, key_id)
);
