//! The user directory (spec: Client-Server API › User Directory).

use hearth_core::{Homeserver, search::user_directory};
use ruma::api::client::user_directory::search_users;

use crate::{error::Result, ruma_wrapper::Ruma};

/// `POST /_matrix/client/v3/user_directory/search`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3user_directorysearch>
pub async fn search_users(
    hs: Homeserver,
    req: Ruma<search_users::v3::Request>,
) -> Result<search_users::v3::Response> {
    let (body, user) = (req.body, req.auth);
    let (results, limited) =
        user_directory::search(&hs, &user.user_id, &body.search_term, u64::from(body.limit)).await?;
    Ok(search_users::v3::Response::new(results, limited))
}
