//! Sync filters (spec: Client-Server API › Filtering).

use hearth_core::{Error, Homeserver, filters};
use ruma::api::client::filter::{create_filter, get_filter};

use crate::{error::Result, ruma_wrapper::Ruma};

/// `POST /_matrix/client/v3/user/{userId}/filter`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3useruseridfilter>
pub async fn create(
    hs: Homeserver,
    req: Ruma<create_filter::v3::Request>,
) -> Result<create_filter::v3::Response> {
    if req.body.user_id != req.auth.user_id {
        return Err(Error::forbidden("Cannot create filters for other users").into());
    }
    let id = filters::create(&hs, &req.auth.user_id, &req.body.filter).await?;
    Ok(create_filter::v3::Response::new(id))
}

/// `GET /_matrix/client/v3/user/{userId}/filter/{filterId}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3useruseridfilterfilterid>
pub async fn get(hs: Homeserver, req: Ruma<get_filter::v3::Request>) -> Result<get_filter::v3::Response> {
    if req.body.user_id != req.auth.user_id {
        return Err(Error::forbidden("Cannot read filters of other users").into());
    }
    let filter = filters::get(&hs, &req.auth.user_id, &req.body.filter_id).await?;
    Ok(get_filter::v3::Response::new(filter))
}
