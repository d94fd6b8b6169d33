//! Send-to-device messaging (spec: Client-Server API › Send-to-Device messaging): messages from
//! one client to specific devices, outside any room, kept until the device has received them
//! once. Each `/sendToDevice` request (and each `m.direct_to_device` EDU from another server)
//! takes one position in the to-device stream; a device's queue is read and acknowledged
//! through `/sync` ([`take`]).

use std::collections::BTreeMap;

use ruma::{
    DeviceId, OwnedDeviceId, ServerName, UserId,
    api::{
        client::to_device::send_event_to_device::v3::Messages,
        federation::transactions::edu::{DirectDeviceContent, DirectDeviceMessages, Edu},
    },
    to_device::DeviceIdOrAllDevices,
};
use serde_json::{Map, Value};

use crate::{
    Error, Homeserver, Result,
    rooms::outbound,
    storage::{
        Db, devices,
        streams::{self, Stream},
        to_device::{self, Delivery},
        txns,
    },
};

/// Most messages one `/sync` response carries (the spec's recommendation).
pub const MAX_PER_SYNC: usize = 100;

/// `PUT /sendToDevice/{eventType}/{txnId}` from `device` of `sender`: queues each message for its
/// device (`*` meaning every device the user has now) and wakes the recipients. A transaction ID
/// already used by this device for this event type is answered with success and changes
/// nothing. Each content must be a JSON object (400 `M_BAD_JSON`). Messages to devices that do
/// not exist are dropped. Messages to users of other servers go to their server as one
/// `m.direct_to_device` EDU per server (spec: Server-Server API › Send-to-device messaging),
/// queued in the federation outbox in the same transaction; with federation off they are
/// dropped.
pub async fn send(
    hs: &Homeserver,
    sender: &UserId,
    device: &DeviceId,
    kind: &str,
    txn_id: &str,
    messages: &Messages,
) -> Result<()> {
    let federate = hs.config().federation.enabled;
    let request = Request { sender, device, kind, txn_id, messages };
    if let Some(recipients) = queue(hs.db(), hs.server_name(), federate, request).await? {
        hs.notifier().wake_users(recipients);
    }
    Ok(())
}

/// An `m.direct_to_device` EDU `content` another server sent (its sender is one of its users,
/// which the caller checked): each message for a local user is queued for its device (`*`:
/// every device the user has) and the recipients woken; messages for other servers' users are
/// ignored. A `message_id` this sender used before changes nothing.
pub async fn receive_remote(hs: &Homeserver, content: &DirectDeviceContent) -> Result<()> {
    let ours = hs.server_name();
    if !content.messages.keys().any(|user| user.server_name() == ours) {
        return Ok(());
    }
    let request = Request {
        sender: &content.sender,
        // A remote sender's message IDs share one scope (the device is not known here).
        device: <&DeviceId>::from(""),
        kind: &content.ev_type.to_string(),
        txn_id: content.message_id.as_str(),
        messages: &content.messages,
    };
    if let Some(recipients) = queue(hs.db(), ours, false, request).await? {
        hs.notifier().wake_users(recipients);
    }
    Ok(())
}

/// One request to send to-device messages: a local client's `/sendToDevice`, or another
/// server's `m.direct_to_device` EDU.
#[derive(Clone, Copy, Debug)]
struct Request<'a> {
    sender: &'a UserId,
    device: &'a DeviceId,
    kind: &'a str,
    /// The client's transaction ID, or the EDU's `message_id`: used once.
    txn_id: &'a str,
    messages: &'a Messages,
}

/// [`send`]'s and [`receive_remote`]'s storage half: queues the messages for the devices of
/// `server_name`'s users, and with `federate` the others for their servers, and returns the
/// local recipients, or `None` when the transaction ID was used before.
async fn queue<'m>(
    db: &Db,
    server_name: &ServerName,
    federate: bool,
    request: Request<'m>,
) -> Result<Option<Vec<&'m UserId>>> {
    let Request { sender, device, kind, txn_id, messages } = request;
    let mut contents = messages.values().flat_map(|per_device| per_device.values());
    if contents.any(|content| !content.json().get().trim_start().starts_with('{')) {
        return Err(Error::bad_json("Each to-device message must be a JSON object"));
    }
    // One scope per event type: the same transaction ID for another type is another request
    // (the spec scopes transaction IDs to the endpoint's path).
    let scope = format!("sendToDevice/{kind}");

    let mut tx = db.begin().await?;
    // Taken first: it serialises to-device writers, so a repeated request waits for the first
    // to commit and then finds its transaction ID.
    let stream_id = streams::next_position(&mut tx, Stream::ToDevice).await?;
    if txns::get(&mut *tx, sender, device, &scope, txn_id).await?.is_some() {
        return Ok(None);
    }
    let mut recipients = Vec::new();
    let mut targets: Vec<(&UserId, OwnedDeviceId, &str)> = Vec::new();
    let mut remote: BTreeMap<&ServerName, DirectDeviceMessages> = BTreeMap::new();
    for (user, per_device) in messages {
        if user.server_name() != server_name {
            if federate {
                remote.entry(user.server_name()).or_default().insert(user.clone(), per_device.clone());
            }
            continue;
        }
        recipients.push(user.as_ref());
        // One message per device: a device named explicitly gets its own message even when
        // `*` is there too.
        let mut chosen: BTreeMap<OwnedDeviceId, &str> = BTreeMap::new();
        if let Some(content) = per_device.get(&DeviceIdOrAllDevices::AllDevices) {
            for row in devices::list(&mut *tx, user).await? {
                chosen.insert(row.device_id, content.json().get());
            }
        }
        for (target, content) in per_device {
            if let DeviceIdOrAllDevices::DeviceId(device_id) = target {
                chosen.insert(device_id.clone(), content.json().get());
            }
        }
        targets.extend(chosen.into_iter().map(|(device_id, content)| (user.as_ref(), device_id, content)));
    }
    let deliveries: Vec<Delivery<'_>> = targets
        .iter()
        .map(|(user_id, device_id, content)| Delivery { user_id, device_id, content })
        .collect();
    to_device::insert_many(&mut tx, stream_id, sender, kind, &deliveries).await?;
    for (server, messages) in remote {
        // The position is unique on this server, so it names the message for the receiver.
        let mut content =
            DirectDeviceContent::new(sender.to_owned(), kind.into(), stream_id.to_string().into());
        content.messages = messages;
        outbound::push_edu(&mut tx, &[server.to_owned()], &Edu::DirectToDevice(content)).await?;
    }
    // The transaction produced no event: the row only marks the ID as used.
    txns::insert(&mut *tx, sender, device, &scope, txn_id, "").await?;
    tx.commit().await?;
    Ok(Some(recipients))
}

/// Send-to-device messages for one `/sync` response.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Taken {
    /// The events, oldest first: `{"sender", "type", "content"}` each.
    pub events: Vec<Value>,
    /// The to-device position the response's `next_batch` must carry: `upto`, or the position
    /// of the last event when the batch was cut at [`MAX_PER_SYNC`] (the rest follow in the
    /// next response).
    pub position: i64,
}

/// The messages waiting for `device` of `user` with a position in `(since, upto]`, at most
/// [`MAX_PER_SYNC`]; first deletes those at or before `since`, which the client acknowledged by
/// syncing with a token carrying `since`. `upto` is the to-device stream's
/// [`streams::current`] position read when the sync began; `since` is 0 without a token.
pub async fn take(db: &Db, user: &UserId, device: &DeviceId, since: i64, upto: i64) -> Result<Taken> {
    let pool = db.pool();
    // Writing only when there is something to delete keeps the common sync a pure read.
    if to_device::oldest(pool, user, device).await?.is_some_and(|oldest| oldest <= since) {
        let mut tx = db.begin().await?;
        to_device::delete_upto(&mut tx, user, device, since).await?;
        tx.commit().await?;
    }
    let limit = i64::try_from(MAX_PER_SYNC).unwrap_or(i64::MAX);
    let rows = to_device::page(pool, user, device, since, upto, limit).await?;
    let position = match rows.last() {
        Some(last) if rows.len() == MAX_PER_SYNC => last.stream_id,
        _ => upto,
    };
    let events = rows
        .into_iter()
        .map(|row| {
            let content: Map<String, Value> = serde_json::from_str(&row.content).unwrap_or_default();
            serde_json::json!({ "sender": row.sender, "type": row.kind, "content": content })
        })
        .collect();
    Ok(Taken { events, position })
}

#[cfg(test)]
mod tests {
    use ruma::{OwnedDeviceId, OwnedUserId, owned_device_id, owned_user_id, serde::Raw, server_name};
    use serde_json::json;

    use super::*;
    use crate::storage::{outbox, test_db, users};

    async fn db(dir: &tempfile::TempDir) -> Db {
        test_db(dir).await
    }

    async fn add_device(db: &Db, user: &UserId, device: &DeviceId) {
        let mut tx = db.begin().await.expect("begin");
        users::insert(&mut tx, user, None, None, false, 0).await.expect("user");
        devices::upsert(&mut tx, user, device, None, 0).await.expect("device");
        tx.commit().await.expect("commit");
    }

    /// Messages from a list of (user, device or `*`, content).
    fn messages(list: &[(&OwnedUserId, &str, Value)]) -> Messages {
        let mut messages = Messages::new();
        for (user, device, content) in list {
            let target = DeviceIdOrAllDevices::try_from(*device).expect("device");
            let raw = Raw::from_json(serde_json::value::to_raw_value(content).expect("raw"));
            messages.entry((*user).clone()).or_default().insert(target, raw);
        }
        messages
    }

    async fn send(db: &Db, txn_id: &str, messages: &Messages) -> Option<Vec<OwnedUserId>> {
        send_federating(db, false, txn_id, messages).await
    }

    async fn send_federating(
        db: &Db,
        federate: bool,
        txn_id: &str,
        messages: &Messages,
    ) -> Option<Vec<OwnedUserId>> {
        let (sender, device) = (owned_user_id!("@alice:x"), owned_device_id!("ALICE"));
        let request = Request { sender: &sender, device: &device, kind: "m.test", txn_id, messages };
        let queued = queue(db, server_name!("x"), federate, request).await;
        queued.expect("queue").map(|users| users.into_iter().map(ToOwned::to_owned).collect())
    }

    async fn contents(db: &Db, user: &UserId, device: &DeviceId, since: i64, upto: i64) -> (Vec<Value>, i64) {
        let taken = take(db, user, device, since, upto).await.expect("take");
        (taken.events.into_iter().map(|e| e["content"].clone()).collect(), taken.position)
    }

    #[tokio::test]
    async fn messages_reach_the_named_devices_once_per_transaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = db(&dir).await;
        let (bob, carol) = (owned_user_id!("@bob:x"), owned_user_id!("@carol:x"));
        let (phone, laptop): (OwnedDeviceId, OwnedDeviceId) =
            (owned_device_id!("PHONE"), owned_device_id!("LAPTOP"));
        add_device(&db, &bob, &phone).await;
        add_device(&db, &bob, &laptop).await;
        add_device(&db, &carol, &phone).await;
        let remote = owned_user_id!("@dave:elsewhere");

        let batch = messages(&[
            (&bob, "*", json!({ "n": "all" })),
            (&bob, "LAPTOP", json!({ "n": "laptop" })),
            (&carol, "NOSUCHDEVICE", json!({ "n": "lost" })),
            (&remote, "*", json!({ "n": "federated" })),
        ]);
        assert_eq!(send(&db, "t1", &batch).await, Some(vec![bob.clone(), carol.clone()]), "local recipients");
        assert_eq!(send(&db, "t1", &batch).await, None, "a repeated transaction changes nothing");
        let only_carol = messages(&[(&carol, "PHONE", json!({ "n": "carol" }))]);
        assert!(send(&db, "t2", &only_carol).await.is_some());

        let upto = 2;
        let (events, position) = contents(&db, &bob, &phone, 0, upto).await;
        assert_eq!((events, position), (vec![json!({ "n": "all" })], upto));
        let (events, _) = contents(&db, &bob, &laptop, 0, upto).await;
        assert_eq!(events, vec![json!({ "n": "laptop" })], "a device named explicitly overrides `*`");
        let (events, _) = contents(&db, &carol, &phone, 0, upto).await;
        assert_eq!(events, vec![json!({ "n": "carol" })]);
        let taken = take(&db, &bob, &phone, 0, upto).await.expect("take");
        assert_eq!(taken.events[0]["sender"], "@alice:x");
        assert_eq!(taken.events[0]["type"], "m.test");
    }

    #[tokio::test]
    async fn messages_for_other_servers_go_to_the_outbox_as_one_edu_per_server() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = db(&dir).await;
        let (dave, erin) = (owned_user_id!("@dave:elsewhere"), owned_user_id!("@erin:elsewhere"));
        let batch =
            messages(&[(&dave, "*", json!({ "n": "dave" })), (&erin, "PHONE", json!({ "n": "erin" }))]);

        assert_eq!(send_federating(&db, true, "t1", &batch).await, Some(vec![]), "no local recipient");
        assert_eq!(send_federating(&db, true, "t1", &batch).await, None, "a repeated transaction");

        let pending = outbox::pending(db.pool(), "elsewhere", 10).await.expect("pending");
        assert_eq!(pending.len(), 1, "one EDU for the server, once");
        let edu: Value = serde_json::from_str(pending[0].edu.as_deref().expect("an EDU")).expect("JSON");
        assert_eq!(edu["edu_type"], "m.direct_to_device");
        assert_eq!(edu["content"]["sender"], "@alice:x");
        assert_eq!(edu["content"]["type"], "m.test");
        assert!(edu["content"]["message_id"].is_string(), "{edu}");
        assert_eq!(
            edu["content"]["messages"],
            json!({ "@dave:elsewhere": { "*": { "n": "dave" } }, "@erin:elsewhere": { "PHONE": { "n": "erin" } } })
        );
    }

    #[tokio::test]
    async fn taking_with_a_later_since_deletes_what_was_acknowledged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = db(&dir).await;
        let (bob, phone) = (owned_user_id!("@bob:x"), owned_device_id!("PHONE"));
        add_device(&db, &bob, &phone).await;
        for n in 1..=3 {
            send(&db, &format!("t{n}"), &messages(&[(&bob, "PHONE", json!({ "n": n }))])).await;
        }

        assert_eq!(contents(&db, &bob, &phone, 0, 2).await, (vec![json!({ "n": 1 }), json!({ "n": 2 })], 2));
        assert_eq!(contents(&db, &bob, &phone, 0, 3).await.0.len(), 3, "kept until acknowledged");
        assert_eq!(contents(&db, &bob, &phone, 2, 3).await, (vec![json!({ "n": 3 })], 3));
        assert_eq!(
            to_device::oldest(db.pool(), &bob, &phone).await.expect("oldest"),
            Some(3),
            "positions up to `since` are gone"
        );
        assert_eq!(contents(&db, &bob, &phone, 0, 3).await.0, vec![json!({ "n": 3 })], "for good");
    }

    #[tokio::test]
    async fn a_long_queue_is_taken_in_batches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = db(&dir).await;
        let (bob, phone) = (owned_user_id!("@bob:x"), owned_device_id!("PHONE"));
        add_device(&db, &bob, &phone).await;
        let total = MAX_PER_SYNC + 5;
        for n in 1..=total {
            send(&db, &format!("t{n}"), &messages(&[(&bob, "PHONE", json!({ "n": n }))])).await;
        }
        let upto = i64::try_from(total).expect("small");

        let first = take(&db, &bob, &phone, 0, upto).await.expect("take");
        assert_eq!(first.events.len(), MAX_PER_SYNC);
        assert_eq!(first.position, 100, "the position of the last message delivered");
        let rest = take(&db, &bob, &phone, first.position, upto).await.expect("take");
        assert_eq!(rest.events.len(), 5);
        assert_eq!(rest.events[0]["content"], json!({ "n": 101 }));
        assert_eq!(rest.position, upto);
    }

    #[tokio::test]
    async fn deleting_a_device_deletes_its_queue() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = db(&dir).await;
        let (bob, phone) = (owned_user_id!("@bob:x"), owned_device_id!("PHONE"));
        add_device(&db, &bob, &phone).await;
        send(&db, "t1", &messages(&[(&bob, "PHONE", json!({ "n": 1 }))])).await;

        let mut tx = db.begin().await.expect("begin");
        devices::delete(&mut tx, &bob, &phone).await.expect("delete");
        tx.commit().await.expect("commit");
        add_device(&db, &bob, &phone).await;

        assert!(take(&db, &bob, &phone, 0, 1).await.expect("take").events.is_empty());
    }
}
