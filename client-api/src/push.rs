//! Push rules (spec: Client-Server API › Push Rules: API): a user's rule set, kept by core as
//! their `m.push_rules` account data. Pushers are in `pushers`, the notification list in
//! `notifications`.

use hearth_core::{Homeserver, push::rules};
use ruma::api::client::push::{
    PushRule, delete_pushrule, get_pushrule, get_pushrule_actions, get_pushrule_enabled, get_pushrules_all,
    get_pushrules_global_scope, set_pushrule, set_pushrule_actions, set_pushrule_enabled,
};

use crate::{error::Result, ruma_wrapper::Ruma};

/// `GET /_matrix/client/v3/pushrules/`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3pushrules>
pub async fn get_all(
    hs: Homeserver,
    req: Ruma<get_pushrules_all::v3::Request>,
) -> Result<get_pushrules_all::v3::Response> {
    let ruleset = rules::ruleset(&hs, &req.auth.user_id).await?;
    Ok(get_pushrules_all::v3::Response::new(ruleset))
}

/// `GET /_matrix/client/v3/pushrules/global/`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3pushrulesglobal>
pub async fn get_global(
    hs: Homeserver,
    req: Ruma<get_pushrules_global_scope::v3::Request>,
) -> Result<get_pushrules_global_scope::v3::Response> {
    let ruleset = rules::ruleset(&hs, &req.auth.user_id).await?;
    Ok(get_pushrules_global_scope::v3::Response::new(ruleset))
}

/// `GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3pushrulesglobalkindruleid>
pub async fn get(hs: Homeserver, req: Ruma<get_pushrule::v3::Request>) -> Result<get_pushrule::v3::Response> {
    let rule = rules::rule(&hs, &req.auth.user_id, &req.body.kind, &req.body.rule_id).await?;
    Ok(get_pushrule::v3::Response::new(PushRule::from(rule)))
}

/// `PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3pushrulesglobalkindruleid>
pub async fn set(hs: Homeserver, req: Ruma<set_pushrule::v3::Request>) -> Result<set_pushrule::v3::Response> {
    let body = req.body;
    rules::set_rule(&hs, &req.auth.user_id, body.rule, body.before.as_deref(), body.after.as_deref()).await?;
    Ok(set_pushrule::v3::Response::new())
}

/// `DELETE /_matrix/client/v3/pushrules/global/{kind}/{ruleId}`
/// <https://spec.matrix.org/latest/client-server-api/#delete_matrixclientv3pushrulesglobalkindruleid>
pub async fn delete(
    hs: Homeserver,
    req: Ruma<delete_pushrule::v3::Request>,
) -> Result<delete_pushrule::v3::Response> {
    rules::delete_rule(&hs, &req.auth.user_id, &req.body.kind, &req.body.rule_id).await?;
    Ok(delete_pushrule::v3::Response::new())
}

/// `GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3pushrulesglobalkindruleidenabled>
pub async fn get_enabled(
    hs: Homeserver,
    req: Ruma<get_pushrule_enabled::v3::Request>,
) -> Result<get_pushrule_enabled::v3::Response> {
    let rule = rules::rule(&hs, &req.auth.user_id, &req.body.kind, &req.body.rule_id).await?;
    Ok(get_pushrule_enabled::v3::Response::new(rule.enabled()))
}

/// `PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3pushrulesglobalkindruleidenabled>
pub async fn set_enabled(
    hs: Homeserver,
    req: Ruma<set_pushrule_enabled::v3::Request>,
) -> Result<set_pushrule_enabled::v3::Response> {
    let body = req.body;
    rules::set_enabled(&hs, &req.auth.user_id, &body.kind, &body.rule_id, body.enabled).await?;
    Ok(set_pushrule_enabled::v3::Response::new())
}

/// `GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3pushrulesglobalkindruleidactions>
pub async fn get_actions(
    hs: Homeserver,
    req: Ruma<get_pushrule_actions::v3::Request>,
) -> Result<get_pushrule_actions::v3::Response> {
    let rule = rules::rule(&hs, &req.auth.user_id, &req.body.kind, &req.body.rule_id).await?;
    Ok(get_pushrule_actions::v3::Response::new(rule.actions().to_vec()))
}

/// `PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3pushrulesglobalkindruleidactions>
pub async fn set_actions(
    hs: Homeserver,
    req: Ruma<set_pushrule_actions::v3::Request>,
) -> Result<set_pushrule_actions::v3::Response> {
    let body = req.body;
    rules::set_actions(&hs, &req.auth.user_id, &body.kind, &body.rule_id, body.actions).await?;
    Ok(set_pushrule_actions::v3::Response::new())
}
