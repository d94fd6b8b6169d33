//! Synapse-compatible admin endpoints that operator tools and test suites rely on.

use axum::{Json, body::Body, extract::State};
use hearth_core::{
    Homeserver,
    accounts::admin_register::{self, AdminRegistration},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    error::Result,
    json::{parse, read_body},
};

/// `GET /_synapse/admin/v1/register`: a one-shot nonce for shared-secret registration.
pub async fn register_nonce(State(hs): State<Homeserver>) -> Result<Json<Value>> {
    let nonce = admin_register::new_nonce(&hs).await?;
    Ok(Json(json!({ "nonce": nonce })))
}

#[derive(Deserialize)]
struct RegisterBody {
    nonce: String,
    username: String,
    password: String,
    displayname: Option<String>,
    #[serde(default)]
    admin: bool,
    mac: String,
}

/// `POST /_synapse/admin/v1/register`: creates an account authorised by the shared secret.
pub async fn register(State(hs): State<Homeserver>, body: Body) -> Result<Json<Value>> {
    let body: RegisterBody = parse(&read_body(&hs, body).await?)?;
    let registered = admin_register::register(
        &hs,
        AdminRegistration {
            nonce: body.nonce,
            username: body.username,
            password: body.password,
            displayname: body.displayname,
            admin: body.admin,
            mac: body.mac,
        },
    )
    .await?;
    let session = registered.session.expect("admin registration always logs in");
    Ok(Json(json!({
        "user_id": registered.user_id,
        "access_token": session.access_token,
        "device_id": session.device_id,
        "home_server": hs.server_name(),
    })))
}
