//! Account management: registration, availability, whoami, password change, deactivation
//! (spec: Client-Server API › Account registration and management).

use hearth_core::{
    Error, Homeserver,
    accounts::{
        devices,
        registration::{self, NewAccount},
        uia,
    },
};
use ruma::api::client::account::{
    ThirdPartyIdRemovalStatus, change_password, check_registration_token_validity, deactivate,
    get_username_availability,
    register::{self, RegistrationKind},
    whoami,
};

use crate::{
    error::Result,
    ruma_wrapper::{Ruma, require_user},
};

/// `POST /_matrix/client/v3/register`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3register>
pub async fn register(hs: Homeserver, req: Ruma<register::v3::Request>) -> Result<register::v3::Response> {
    let body = req.body;
    if body.kind == RegistrationKind::Guest {
        return Err(Error::forbidden("Guest access is not enabled").into());
    }
    registration::ensure_enabled(&hs)?;
    // A taken or invalid name fails before the client goes through any auth stage.
    if let Some(username) = &body.username {
        registration::check_available(&hs, username).await?;
    }
    uia::check(&hs, body.auth.as_ref(), &registration::flows(&hs), None).await?;
    let registered = registration::register(
        &hs,
        NewAccount {
            username: body.username,
            password: body.password,
            device_id: body.device_id,
            device_display_name: body.initial_device_display_name,
            inhibit_login: body.inhibit_login,
            ..NewAccount::default()
        },
    )
    .await?;
    let mut response = register::v3::Response::new(registered.user_id);
    if let Some(session) = registered.session {
        response.access_token = Some(session.access_token);
        response.device_id = Some(session.device_id);
    }
    Ok(response)
}

/// `GET /_matrix/client/v3/register/available`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3registeravailable>
pub async fn username_available(
    hs: Homeserver,
    req: Ruma<get_username_availability::v3::Request>,
) -> Result<get_username_availability::v3::Response> {
    registration::check_available(&hs, &req.body.username).await?;
    Ok(get_username_availability::v3::Response::new(true))
}

/// `GET /_matrix/client/v1/register/m.login.registration_token/validity`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv1registermloginregistration_tokenvalidity>
pub async fn registration_token_validity(
    hs: Homeserver,
    req: Ruma<check_registration_token_validity::v1::Request>,
) -> Result<check_registration_token_validity::v1::Response> {
    registration::ensure_enabled(&hs)?;
    let valid = hs.config().registration.tokens.contains(&req.body.token);
    Ok(check_registration_token_validity::v1::Response::new(valid))
}

/// `GET /_matrix/client/v3/account/whoami`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3accountwhoami>
pub async fn whoami(_hs: Homeserver, req: Ruma<whoami::v3::Request>) -> Result<whoami::v3::Response> {
    let mut response = whoami::v3::Response::new(req.auth.user_id, false);
    response.device_id = Some(req.auth.device_id);
    Ok(response)
}

/// `POST /_matrix/client/v3/account/password`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3accountpassword>
pub async fn change_password(
    hs: Homeserver,
    req: Ruma<change_password::v3::Request>,
) -> Result<change_password::v3::Response> {
    // Password reset without a token needs email verification, which Hearth does not offer.
    let (body, user) = (req.body, require_user(req.auth)?);
    uia::check(&hs, body.auth.as_ref(), &uia::password_flows(), Some(&user.user_id)).await?;
    devices::change_password(&hs, &user, &body.new_password, body.logout_devices).await?;
    Ok(change_password::v3::Response::new())
}

/// `POST /_matrix/client/v3/account/deactivate`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3accountdeactivate>
pub async fn deactivate(
    hs: Homeserver,
    req: Ruma<deactivate::v3::Request>,
) -> Result<deactivate::v3::Response> {
    let user = require_user(req.auth)?;
    uia::check(&hs, req.body.auth.as_ref(), &uia::password_flows(), Some(&user.user_id)).await?;
    devices::deactivate(&hs, &user.user_id).await?;
    Ok(deactivate::v3::Response::new(ThirdPartyIdRemovalStatus::NoSupport))
}
