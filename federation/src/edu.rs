//! EDUs of a transaction (spec: Server-Server API › EDUs): typing notifications, read receipts
//! and presence of the sending server's users in rooms we share; device list and cross-signing
//! key changes of its users (Device Management, End-to-End Encryption); to-device messages from
//! its users (Send-to-device messaging). Others are ignored; an EDU that does not fit, or that
//! speaks for a user of another server, is logged and dropped (EDUs get no per-item answer).

use std::time::Duration;

use hearth_core::{e2ee::device_lists, presence, receipts, rooms::server_acl, to_device, typing};
use ruma::{
    OwnedEventId, OwnedRoomId, OwnedUserId, ServerName, UserId,
    api::federation::transactions::edu::{
        DeviceListUpdateContent, DirectDeviceContent, SigningKeyUpdateContent,
    },
    presence::PresenceState,
};
use serde::Deserialize;
use serde_json::Value;

use crate::Federation;

/// Takes in one EDU `origin` sent.
pub async fn receive(fed: &Federation, origin: &ServerName, edu: &Value) {
    let result = match edu["edu_type"].as_str() {
        Some("m.typing") => typing_edu(fed, origin, &edu["content"]).await,
        Some("m.receipt") => receipt_edu(fed, origin, &edu["content"]).await,
        Some("m.presence") => presence_edu(fed, origin, &edu["content"]).await,
        Some("m.device_list_update") => device_list_edu(fed, origin, &edu["content"]).await,
        Some("m.signing_key_update") => signing_key_edu(fed, origin, &edu["content"]).await,
        Some("m.direct_to_device") => to_device_edu(fed, origin, &edu["content"]).await,
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

/// A device of the sending server's user was added, changed or deleted (`deleted`): the user's
/// device list changed. The update's keys are not kept: `/keys/query` asks the user's server.
async fn device_list_edu(fed: &Federation, origin: &ServerName, content: &Value) -> anyhow::Result<()> {
    let edu: DeviceListUpdateContent = serde_json::from_value(content.clone())?;
    device_list_changed(fed, origin, &edu.user_id).await
}

/// The sending server's user changed their master or self-signing key: their device list
/// changed, as for a device.
async fn signing_key_edu(fed: &Federation, origin: &ServerName, content: &Value) -> anyhow::Result<()> {
    let edu: SigningKeyUpdateContent = serde_json::from_value(content.clone())?;
    device_list_changed(fed, origin, &edu.user_id).await
}

async fn device_list_changed(fed: &Federation, origin: &ServerName, user_id: &UserId) -> anyhow::Result<()> {
    anyhow::ensure!(user_id.server_name() == origin, "a device list of a user of another server");
    device_lists::receive_remote(fed.hs(), user_id).await?;
    Ok(())
}

/// To-device messages from the sending server's user to local users' devices.
async fn to_device_edu(fed: &Federation, origin: &ServerName, content: &Value) -> anyhow::Result<()> {
    let edu: DirectDeviceContent = serde_json::from_value(content.clone())?;
    anyhow::ensure!(edu.sender.server_name() == origin, "to-device messages from a user of another server");
    to_device::receive_remote(fed.hs(), &edu).await?;
    Ok(())
}
