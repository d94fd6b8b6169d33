//! Login and logout (spec: Client-Server API › Login, Logout).

use hearth_core::{Error, Homeserver, accounts::sessions};
use ruma::api::client::{
    session::{
        get_login_types::{
            self,
            v3::{LoginType, PasswordLoginType},
        },
        login::{self, v3::LoginInfo},
        logout, logout_all,
    },
    uiaa::UserIdentifier,
};

use crate::{error::Result, ruma_wrapper::Ruma};

/// `GET /_matrix/client/v3/login`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3login>
pub async fn login_types(
    _hs: Homeserver,
    _req: Ruma<get_login_types::v3::Request>,
) -> Result<get_login_types::v3::Response> {
    Ok(get_login_types::v3::Response::new(vec![LoginType::Password(PasswordLoginType::new())]))
}

/// `POST /_matrix/client/v3/login`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3login>
pub async fn login(hs: Homeserver, req: Ruma<login::v3::Request>) -> Result<login::v3::Response> {
    let body = req.body;
    let LoginInfo::Password(password) = &body.login_info else {
        return Err(Error::matrix(
            http::StatusCode::BAD_REQUEST,
            ruma::api::error::ErrorKind::Unknown,
            "Only m.login.password is supported",
        )
        .into());
    };
    #[allow(deprecated)] // `user` predates `identifier`; older clients still send it.
    let identifier = match (&password.identifier, &password.user) {
        (Some(UserIdentifier::Matrix(id)), _) => id.user.as_str(),
        (None, Some(user)) => user.as_str(),
        _ => return Err(Error::forbidden("Only m.id.user identifiers are supported").into()),
    };
    let user_id = sessions::check_password(&hs, identifier, &password.password).await?;
    let session =
        sessions::start(&hs, &user_id, body.device_id, body.initial_device_display_name.as_deref()).await?;
    let mut response = login::v3::Response::new(user_id, session.access_token, session.device_id);
    #[allow(deprecated)]
    {
        response.home_server = Some(hs.server_name().to_owned());
    }
    Ok(response)
}

/// `POST /_matrix/client/v3/logout`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3logout>
pub async fn logout(hs: Homeserver, req: Ruma<logout::v3::Request>) -> Result<logout::v3::Response> {
    sessions::logout(&hs, &req.auth).await?;
    Ok(logout::v3::Response::new())
}

/// `POST /_matrix/client/v3/logout/all`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3logoutall>
pub async fn logout_all(
    hs: Homeserver,
    req: Ruma<logout_all::v3::Request>,
) -> Result<logout_all::v3::Response> {
    sessions::logout_all(&hs, &req.auth).await?;
    Ok(logout_all::v3::Response::new())
}
