-- Cross-signing (spec: Client-Server API › End-to-End Encryption › Cross-signing): each local
-- user's master, self-signing and user-signing keys, kept as the canonical JSON uploaded (with
-- the signatures it carried), beside the ed25519 public key that names it.
CREATE TABLE e2e_cross_signing_keys (
    user_id    TEXT NOT NULL,
    key_type   TEXT NOT NULL,               -- master, self_signing or user_signing
    public_key TEXT NOT NULL,               -- unpadded base64, the key ID's name
    key_json   TEXT NOT NULL,
    updated_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, key_type)
);

-- Signatures uploaded with /keys/signatures/upload, merged into the signed key when it is
-- queried: a device signed by its owner's self-signing key, a master key signed by one of its
-- owner's devices, or another user's master key signed by the signer's user-signing key (shown
-- only to the signer). The target is a device ID or a cross-signing public key.
CREATE TABLE e2e_key_signatures (
    target_user_id TEXT NOT NULL,
    target_key_id  TEXT NOT NULL,
    signer_user_id TEXT NOT NULL,
    signer_key_id  TEXT NOT NULL,           -- ed25519:<device ID or public key>
    signature      TEXT NOT NULL,
    PRIMARY KEY (target_user_id, target_key_id, signer_user_id, signer_key_id)
);

-- Server-side key backups (spec: Client-Server API › Server-side key backups). A version's ID
-- is its row ID, unique across users; deleted versions stay (flagged) so a version is never
-- reused and deleting it twice succeeds. `etag` grows with every change to its keys.
CREATE TABLE e2e_backup_versions (
    version   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id   TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    auth_data TEXT NOT NULL,                -- JSON object
    etag      BIGINT NOT NULL DEFAULT 0,
    deleted   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX e2e_backup_versions_user ON e2e_backup_versions (user_id, version);

-- One backed-up megolm session key per version, room and session.
CREATE TABLE e2e_backup_keys (
    version             BIGINT NOT NULL REFERENCES e2e_backup_versions (version) ON DELETE CASCADE,
    room_id             TEXT NOT NULL,
    session_id          TEXT NOT NULL,
    first_message_index BIGINT NOT NULL,
    forwarded_count     BIGINT NOT NULL,
    is_verified         BIGINT NOT NULL,
    session_data        TEXT NOT NULL,      -- JSON object
    PRIMARY KEY (version, room_id, session_id)
);
