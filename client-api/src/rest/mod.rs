//! The REST facade, `/api/v1/**` (docs/hearth-api-v1.openapi.yaml): a small JSON API for bots
//! and simple apps — conversations, their messages, media uploads, a user's conversations and
//! status. It is a thin layer over the core functions the Matrix API calls (room creation and
//! invites, history, media upload, memberships, presence), with the same authentication (the
//! access token, as `Authorization: Bearer` or `access_token`), the same rate limits and the same
//! Matrix error bodies. Its messages have the WebSocket vocabulary's `new_message` fields.
//!
//! Not being ruma endpoints, the handlers take the extractors below, which turn every malformed
//! path, query or body into a Matrix error instead of axum's plain-text rejections.

pub mod conversations;
pub mod media;
pub mod users;

use axum::{
    Router,
    body::Body,
    extract::{FromRequest, FromRequestParts, Path, Query, Request},
    http::request::Parts,
    routing::{get, post, put},
};
use hearth_core::{Error, Homeserver, accounts::User};
use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId, api::auth_scheme::AccessToken};
use serde::de::DeserializeOwned;

use crate::{
    error::{ApiError, Result},
    json,
    ruma_wrapper::Authenticate,
};

/// Every route of the facade, as `(method, path)` in the OpenAPI file's notation; [`router`]
/// serves exactly these, and a test holds them equal to the documented ones.
pub const ROUTES: [(&str, &str); 5] = [
    ("post", "/api/v1/conversations"),
    ("get", "/api/v1/conversations/{conversation_id}/messages"),
    ("post", "/api/v1/media/upload"),
    ("get", "/api/v1/users/{user_id}/conversations"),
    ("put", "/api/v1/users/{user_id}/status"),
];

/// The facade's routes.
pub fn router() -> Router<Homeserver> {
    let [create, messages, upload, user_conversations, status] = ROUTES.map(|(_, path)| path);
    Router::new()
        .route(create, post(conversations::create))
        .route(messages, get(conversations::messages))
        .route(upload, post(media::upload))
        .route(user_conversations, get(users::conversations))
        .route(status, put(users::set_status))
}

/// The authenticated caller: the access token's user, or 401 `M_MISSING_TOKEN` /
/// `M_UNKNOWN_TOKEN`, as on every Matrix endpoint that needs one.
pub struct Caller(pub User);

impl FromRequestParts<Homeserver> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, hs: &Homeserver) -> Result<Self> {
        Ok(Caller(AccessToken::authenticate(hs, parts).await?))
    }
}

/// The path's one parameter, as text (percent-decoded).
pub struct PathParam(pub String);

impl FromRequestParts<Homeserver> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, hs: &Homeserver) -> Result<Self> {
        let Path(value) = Path::<String>::from_request_parts(parts, hs)
            .await
            .map_err(|e| Error::invalid_param(e.body_text()))?;
        Ok(PathParam(value))
    }
}

impl PathParam {
    /// The parameter as a room ID (400 `M_INVALID_PARAM` otherwise).
    pub fn room_id(&self) -> Result<OwnedRoomId> {
        RoomId::parse(&self.0).map_err(|_| Error::invalid_param("Not a conversation ID").into())
    }

    /// The parameter as a user ID (400 `M_INVALID_PARAM` otherwise).
    pub fn user_id(&self) -> Result<OwnedUserId> {
        UserId::parse(&self.0).map_err(|_| Error::invalid_param("Not a user ID").into())
    }
}

/// The query string, parsed; unknown parameters (`access_token`) are ignored, bad values are
/// 400 `M_INVALID_PARAM`.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts<Homeserver> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &Homeserver) -> Result<Self> {
        let Query(value) =
            Query::<T>::try_from_uri(&parts.uri).map_err(|e| Error::invalid_param(e.body_text()))?;
        Ok(QueryParams(value))
    }
}

/// A JSON body, read within `limits.max_request_bytes` (else 413 `M_TOO_LARGE`): not JSON is
/// 400 `M_NOT_JSON`, JSON of the wrong shape 400 `M_BAD_JSON`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Homeserver> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, hs: &Homeserver) -> Result<Self> {
        let body: Body = request.into_body();
        Ok(JsonBody(json::parse(&json::read_body(hs, body).await?)?))
    }
}

/// 403 `M_FORBIDDEN` unless the path's user is the caller: a user reads and sets only their own.
fn ensure_self(caller: &User, user_id: &UserId, what: &str) -> Result<()> {
    if caller.user_id != user_id {
        return Err(Error::forbidden(format!("You may only access your own {what}")).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::ROUTES;

    const OPENAPI: &str = include_str!("../../../docs/hearth-api-v1.openapi.yaml");

    #[test]
    fn the_openapi_file_documents_exactly_the_routes_served() {
        let doc: Value = serde_norway::from_str(OPENAPI).expect("the OpenAPI file is YAML");
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "an OpenAPI 3 document");
        let methods = ["get", "put", "post", "delete", "patch"];
        let paths = doc["paths"].as_object().expect("paths");
        let documented: BTreeSet<(String, String)> = paths
            .iter()
            .flat_map(|(path, item)| {
                let item = item.as_object().cloned().unwrap_or_default();
                item.into_iter()
                    .filter(|(method, _)| methods.contains(&method.as_str()))
                    .map(move |(method, _)| (method, path.clone()))
            })
            .collect();
        let served: BTreeSet<(String, String)> =
            ROUTES.iter().map(|(method, path)| ((*method).to_owned(), (*path).to_owned())).collect();
        assert_eq!(documented, served);
    }
}
