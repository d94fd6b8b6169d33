-- A transaction ID is scoped to a device *and an endpoint* (spec: Client-Server API ›
-- Transaction identifiers): the same ID sent to PUT /send in another room, or to PUT /redact,
-- is a new request. `scope` names the endpoint and its path parameters.
ALTER TABLE transaction_ids ADD COLUMN scope TEXT NOT NULL DEFAULT '';
ALTER TABLE transaction_ids DROP CONSTRAINT transaction_ids_pkey;
ALTER TABLE transaction_ids ADD PRIMARY KEY (user_id, device_id, scope, txn_id);
