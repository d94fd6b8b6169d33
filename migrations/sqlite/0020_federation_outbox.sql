-- The federation outbox (DESIGN §1, §6): what must be sent to other servers, written in the
-- same transaction as the local event that caused it, and deleted by the federation sender once
-- the destination accepted it. One row per (destination, PDU or EDU), in sending order.
CREATE TABLE federation_outbox (
    outbox_id   INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: it names transactions
    destination TEXT NOT NULL,
    event_id    TEXT,            -- a PDU of the events table
    edu         TEXT,            -- or an EDU's JSON
    created_ts  BIGINT NOT NULL
);
CREATE INDEX federation_outbox_destination ON federation_outbox (destination, outbox_id);
