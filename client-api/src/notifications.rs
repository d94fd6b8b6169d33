//! The notification list (spec: Client-Server API › Push Notifications › Listing
//! Notifications).

use hearth_core::{Homeserver, push::notifications};
use ruma::{
    MilliSecondsSinceUnixEpoch, UInt,
    api::client::push::get_notifications::{self, v3::Notification},
};

use crate::{convert::raw, error::Result, ruma_wrapper::Ruma};

/// `GET /_matrix/client/v3/notifications`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3notifications>
pub async fn get(
    hs: Homeserver,
    req: Ruma<get_notifications::v3::Request>,
) -> Result<get_notifications::v3::Response> {
    let body = req.body;
    let only_highlight = body.only.as_deref() == Some("highlight");
    let limit = body.limit.map(u64::from);
    let page =
        notifications::list(&hs, &req.auth.user_id, body.from.as_deref(), limit, only_highlight).await?;
    let notifications = page
        .notifications
        .into_iter()
        .map(|n| {
            let ts = MilliSecondsSinceUnixEpoch(UInt::try_from(n.ts).unwrap_or_default());
            Notification::new(n.actions, raw(&n.event), n.read, n.room_id, ts)
        })
        .collect();
    let mut response = get_notifications::v3::Response::new(notifications);
    response.next_token = page.next_token;
    Ok(response)
}
