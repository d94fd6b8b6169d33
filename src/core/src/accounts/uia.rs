//! User-interactive authentication (spec: Client-Server API › User-Interactive Authentication
//! API). Sessions live in the database; a request succeeds once every stage of one offered flow
//! has been completed.

use ruma::{
    UserId,
    api::{
        client::uiaa::{AuthData, AuthFlow, AuthType, UiaaInfo, UserIdentifier},
        error::{ErrorKind, StandardErrorBody},
    },
};

use super::{localpart, sessions};
use crate::{Error, Homeserver, Result, storage::uia, time::now_ms};

/// How long an unfinished session stays valid.
const SESSION_LIFETIME_MS: i64 = 30 * 60 * 1000;

/// Runs one step of UIA for a request guarded by `flows`.
///
/// `user` is the account the request acts on: `m.login.password` must prove that account's
/// password. Returns `Ok(())` when a flow is complete; otherwise [`Error::Uiaa`] (401) with the
/// flows, the completed stages and, after a failed stage, the reason.
pub async fn check(
    hs: &Homeserver,
    auth: Option<&AuthData>,
    flows: &[AuthFlow],
    user: Option<&UserId>,
) -> Result<()> {
    let now = now_ms();
    let Some(auth) = auth else {
        let session = new_session(hs, user, now).await?;
        return Err(challenge(flows, Vec::new(), session, None));
    };
    let (session_id, mut completed) = match auth.session() {
        Some(id) => match uia::get(hs.db().pool(), id).await? {
            Some(s) if s.created_ts + SESSION_LIFETIME_MS > now => (id.to_owned(), s.completed),
            _ => return Err(Error::bad_request("Unknown or expired UIA session")),
        },
        None => (new_session(hs, user, now).await?, Vec::new()),
    };

    let stage = auth.auth_type().filter(|t| flows.iter().any(|f| f.stages.contains(t)));
    let Some(stage) = stage else {
        let error = StandardErrorBody::new(ErrorKind::Unrecognized, "This stage is not offered".into());
        return Err(challenge(flows, parse_types(&completed), session_id, Some(error)));
    };
    if let Err(error) = complete_stage(hs, auth, user).await {
        let Error::Matrix { kind, message, .. } = error else { return Err(error) };
        let error = StandardErrorBody::new(kind, message);
        return Err(challenge(flows, parse_types(&completed), session_id, Some(error)));
    }
    if !completed.contains(&stage.to_string()) {
        completed.push(stage.to_string());
    }

    let done = flows.iter().any(|f| f.stages.iter().all(|s| completed.contains(&s.to_string())));
    if done {
        uia::delete(hs.db().pool(), &session_id, now - SESSION_LIFETIME_MS).await?;
        Ok(())
    } else {
        uia::update(hs.db().pool(), &session_id, user, &completed).await?;
        Err(challenge(flows, parse_types(&completed), session_id, None))
    }
}

/// The flows of endpoints that need the user's password (password change, device deletion,
/// deactivation).
pub fn password_flows() -> Vec<AuthFlow> {
    vec![AuthFlow::new(vec![AuthType::Password])]
}

async fn complete_stage(hs: &Homeserver, auth: &AuthData, user: Option<&UserId>) -> Result<()> {
    match auth {
        AuthData::Dummy(_) => Ok(()),
        AuthData::Password(p) => {
            let UserIdentifier::Matrix(id) = &p.identifier else {
                return Err(Error::forbidden("Only m.id.user identifiers are supported"));
            };
            let claimed = localpart::user_id_for_login(&id.user, hs.server_name());
            if user.is_none() || claimed.as_deref() != user {
                return Err(Error::forbidden("The password must be that of the authenticated user"));
            }
            sessions::check_password(hs, &id.user, &p.password).await.map(drop)
        }
        AuthData::RegistrationToken(t) => {
            if hs.config().registration.tokens.iter().any(|valid| valid == &t.token) {
                Ok(())
            } else {
                Err(Error::matrix(
                    http::StatusCode::UNAUTHORIZED,
                    ErrorKind::Forbidden,
                    "Invalid registration token",
                ))
            }
        }
        _ => Err(Error::forbidden("Unsupported authentication stage")),
    }
}

async fn new_session(hs: &Homeserver, user: Option<&UserId>, now: i64) -> Result<String> {
    let id = localpart::random();
    uia::create(hs.db().pool(), &id, user, now).await?;
    Ok(id)
}

fn challenge(
    flows: &[AuthFlow],
    completed: Vec<AuthType>,
    session: String,
    auth_error: Option<StandardErrorBody>,
) -> Error {
    let mut info = UiaaInfo::new(flows.to_vec());
    info.completed = completed;
    info.session = Some(session);
    info.auth_error = auth_error.map(Box::new);
    Error::Uiaa(Box::new(info))
}

fn parse_types(completed: &[String]) -> Vec<AuthType> {
    completed.iter().map(|s| AuthType::from(s.as_str())).collect()
}
