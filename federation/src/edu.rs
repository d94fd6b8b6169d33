//! EDUs of a transaction (spec: Server-Server API › EDUs): typing notifications, read receipts
//! and presence of the sending server's users in rooms we share. Others are ignored for now; an
//! EDU that does not fit is logged and dropped (EDUs get no per-item answer).

use std::time::Duration;

use hearth_core::{presence, receipts, rooms::server_acl, typing};
use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, ServerName, presence::PresenceState};
use serde::Deserialize;
use serde_json::Value;

use crate::Federation;

/// Takes in one EDU `origin` sent.
pub async fn receive(fed: &Federation, origin: &ServerName, edu: &Value) {
    let result = match edu["edu_type"].as_str() {
        Some("m.typing") => typing_edu(fed, origin, &edu["content"]).await,
        Some("m.receipt") => receipt_edu(fed, origin, &edu["content"]).await,
        Some("m.presence") => presence_edu(fed, origin, &edu["content"]).await,
        _ => Ok(()),
    };
    if let Err(e) = result {
        tracing::info!(%origin, edu_type = ?edu["edu_type"], error = %e, "dropping an EDU");
    }
}

#[derive(Deserialize)]
struct Typing {
    room_id: OwnedRoomId,
    user_id: OwnedUserId,
    typing: bool,
}

async fn typing_edu(fed: &Federation, origin: &ServerName, content: &Value) -> anyhow::Result<()> {
    let edu: Typing = serde_json::from_value(content.clone())?;
    anyhow::ensure!(edu.user_id.server_name() == origin, "a typing user of another server");
    server_acl::check(fed.hs(), &edu.room_id, origin).await?;
    typing::receive_remote(fed.hs(), &edu.user_id, &edu.room_id, edu.typing).await?;
    Ok(())
}

#[derive(Deserialize)]
struct UserReceipt {
    event_ids: Vec<OwnedEventId>,
    #[serde(default)]
    data: ReceiptData,
}

#[derive(Default, Deserialize)]
struct ReceiptData {
    thread_id: Option<String>,
}

/// `{room_id: {"m.read": {user_id: {event_ids, data}}}}`, and Hearth's delivery receipts
/// (`io.hearth.delivered`, sent only to the server of the events' sender) likewise.
async fn receipt_edu(fed: &Federation, origin: &ServerName, content: &Value) -> anyhow::Result<()> {
    let rooms = content.as_object().ok_or_else(|| anyhow::anyhow!("receipts are not an object"))?;
    for (room_id, types) in rooms {
        let room_id = OwnedRoomId::try_from(room_id.as_str())?;
        server_acl::check(fed.hs(), &room_id, origin).await?;
        for receipt_type in ["m.read", receipts::DELIVERED] {
            let Some(users) = types[receipt_type].as_object() else { continue };
            for (user_id, receipt) in users {
                let user_id = OwnedUserId::try_from(user_id.as_str())?;
                anyhow::ensure!(user_id.server_name() == origin, "a receipt of a user of another server");
                let receipt: UserReceipt = serde_json::from_value(receipt.clone())?;
                let Some(event_id) = receipt.event_ids.last() else { continue };
                if receipt_type == receipts::DELIVERED {
                    receipts::receive_remote_delivered(fed.hs(), &user_id, &room_id, event_id).await?;
                } else {
                    let thread = receipt.data.thread_id.as_deref();
                    receipts::receive_remote(fed.hs(), &user_id, &room_id, event_id, thread).await?;
                }
            }
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct PresenceUpdate {
    user_id: OwnedUserId,
    presence: PresenceState,
    status_msg: Option<String>,
    #[serde(default)]
    last_active_ago: u64,
}

/// `{"push": [{user_id, presence, status_msg, last_active_ago, currently_active}]}`: updates of
/// the sending server's users.
async fn presence_edu(fed: &Federation, origin: &ServerName, content: &Value) -> anyhow::Result<()> {
    let updates: Vec<PresenceUpdate> = serde_json::from_value(content["push"].clone())?;
    for update in updates {
        anyhow::ensure!(update.user_id.server_name() == origin, "presence of a user of another server");
        let ago = Duration::from_millis(update.last_active_ago);
        presence::receive_remote(
            fed.hs(),
            &update.user_id,
            &update.presence,
            update.status_msg.as_deref(),
            ago,
        )
        .await?;
    }
    Ok(())
}
