//! Pushers (spec: Client-Server API › Push Notifications › Client behaviour, `POST
//! /pushers/set`): where a user's notifications are to be pushed. They are stored and listed;
//! nothing is sent to push gateways yet.

use ruma::{
    UserId,
    api::client::push::{Pusher, PusherKind, set_pusher::v3::PusherAction},
};
use serde_json::Value;

use crate::{
    Error, Homeserver, Result,
    storage::pushers::{self, NewPusher},
    time::now_ms,
};

/// The path every push gateway serves (spec: Push Gateway API).
const NOTIFY_PATH: &str = "/_matrix/push/v1/notify";

/// `user`'s pushers.
pub async fn list(hs: &Homeserver, user: &UserId) -> Result<Vec<Pusher>> {
    pushers::for_user(hs.db().pool(), user.as_str())
        .await?
        .iter()
        .map(|json| {
            serde_json::from_str(json).map_err(|e| Error::Internal(anyhow::anyhow!("stored pusher: {e}")))
        })
        .collect()
}

/// Creates, replaces or deletes one of `user`'s pushers. A pusher set without `append` takes
/// its `(app_id, pushkey)` over from every other user; deleting a pusher that does not exist
/// succeeds.
pub async fn set(hs: &Homeserver, user: &UserId, action: PusherAction) -> Result<()> {
    let mut tx = hs.db().begin().await?;
    match action {
        PusherAction::Delete(ids) => {
            pushers::delete(&mut tx, user.as_str(), &ids.app_id, &ids.pushkey).await?;
        }
        PusherAction::Post(data) => {
            let pusher = &data.pusher;
            if let PusherKind::Http(http) = &pusher.kind {
                check_url(&http.url)?;
            }
            let json = serde_json::to_value(pusher).map_err(|e| Error::Internal(e.into()))?;
            let kind = json.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
            let (app_id, pushkey) = (pusher.ids.app_id.as_str(), pusher.ids.pushkey.as_str());
            if !data.append {
                pushers::delete_for_others(&mut tx, user.as_str(), app_id, pushkey).await?;
            }
            let row = NewPusher {
                user_id: user.as_str(),
                app_id,
                pushkey,
                kind: &kind,
                pusher: &json.to_string(),
                created_ts: now_ms(),
            };
            pushers::put(&mut tx, &row).await?;
        }
        _ => return Err(Error::invalid_param("Unknown pusher action")),
    }
    tx.commit().await?;
    Ok(())
}

/// An HTTP pusher's `data.url` must be an absolute HTTP(S) URL with the push gateway path.
fn check_url(url: &str) -> Result<()> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let path = rest.and_then(|rest| rest.find('/').map(|slash| &rest[slash..]));
    match path {
        Some(path) if path.split('?').next() == Some(NOTIFY_PATH) => Ok(()),
        _ => {
            Err(Error::invalid_param(format!("data.url must be an http(s) URL with the path {NOTIFY_PATH}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn pusher_urls_must_point_at_a_push_gateway() {
        assert!(check_url("https://push.example.org/_matrix/push/v1/notify").is_ok());
        assert!(check_url("http://127.0.0.1:5000/_matrix/push/v1/notify").is_ok());
        assert!(check_url("https://push.example.org/").is_err());
        assert!(check_url("push.example.org/_matrix/push/v1/notify").is_err());
        assert!(check_url("ftp://push.example.org/_matrix/push/v1/notify").is_err());
    }
}
