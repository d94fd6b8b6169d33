-- A transaction ID is scoped to a device *and an endpoint* (spec: Client-Server API ›
-- Transaction identifiers): the same ID sent to PUT /send in another room, or to PUT /redact,
-- is a new request. `scope` names the endpoint and its path parameters.
CREATE TABLE transaction_ids_scoped (
    user_id   TEXT NOT NULL,
    device_id TEXT NOT NULL,
    scope     TEXT NOT NULL DEFAULT '',
    txn_id    TEXT NOT NULL,
    event_id  TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, scope, txn_id)
);
INSERT INTO transaction_ids_scoped (user_id, device_id, txn_id, event_id)
    SELECT user_id, device_id, txn_id, event_id FROM transaction_ids;
DROP TABLE transaction_ids;
ALTER TABLE transaction_ids_scoped RENAME TO transaction_ids;
CREATE INDEX transaction_ids_event ON transaction_ids (event_id);
