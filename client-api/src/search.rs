//! Server-side search (spec: Client-Server API › Server Side Search).

use std::collections::BTreeMap;

use hearth_core::{
    Error, Homeserver,
    search::room_events::{self, FoundContext, Request},
};
use ruma::{
    OwnedMxcUri, UInt,
    api::client::search::search_events::{
        self,
        v3::{EventContextResult, ResultCategories, ResultRoomEvents, SearchResult, UserProfile},
    },
};
use serde_json::Value;

use crate::{convert::raw, error::Result, ruma_wrapper::Ruma};

/// The one search category the spec defines.
const ROOM_EVENTS: &str = "room_events";

/// `POST /_matrix/client/v3/search`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3search>
///
/// ruma drops what it does not model, so the raw body answers two questions: whether another
/// category was asked for (400 `M_INVALID_PARAM`), and whether `event_context` was given at all
/// (ruma fills in its defaults, but context is returned only when asked for).
pub async fn search_events(
    hs: Homeserver,
    req: Ruma<search_events::v3::Request>,
) -> Result<search_events::v3::Response> {
    let (body, user) = (req.body, req.auth);
    let raw_body: Value = serde_json::from_slice(&req.raw_body).unwrap_or(Value::Null);
    let categories = &raw_body["search_categories"];
    if let Some(unknown) = categories.as_object().and_then(|c| c.keys().find(|k| *k != ROOM_EVENTS)) {
        return Err(Error::invalid_param(format!("Unknown search category {unknown}")).into());
    }
    let mut response = ResultCategories::new();
    let Some(criteria) = &body.search_categories.room_events else {
        return Ok(search_events::v3::Response::new(response));
    };
    let context_asked = categories[ROOM_EVENTS].get("event_context").is_some();
    let request = Request {
        criteria,
        context: context_asked.then_some(&criteria.event_context),
        next_batch: body.next_batch.as_deref(),
    };
    let found = room_events::search(&hs, &user.user_id, &user.device_id, request).await?;

    let mut room_events = ResultRoomEvents::new();
    room_events.count = Some(UInt::try_from(found.count).unwrap_or(UInt::MAX));
    room_events.highlights = found.highlights;
    room_events.next_batch = found.next_batch;
    room_events.groups = found.groups;
    room_events.state = found
        .state
        .into_iter()
        .map(|(room_id, events)| (room_id, events.iter().map(raw).collect()))
        .collect();
    room_events.results = found
        .results
        .into_iter()
        .map(|found| {
            let mut result = SearchResult::new();
            result.rank = Some(found.rank);
            result.result = Some(raw(&found.event));
            if let Some(context) = found.context {
                result.context = context_result(context);
            }
            result
        })
        .collect();
    response.room_events = room_events;
    Ok(search_events::v3::Response::new(response))
}

fn context_result(context: FoundContext) -> EventContextResult {
    let mut result = EventContextResult::new();
    result.start = Some(context.start);
    result.end = Some(context.end);
    result.events_before = context.before.iter().map(raw).collect();
    result.events_after = context.after.iter().map(raw).collect();
    result.profile_info = context
        .profiles
        .into_iter()
        .map(|(user_id, profile)| {
            let mut served = UserProfile::new();
            served.displayname = profile.displayname;
            served.avatar_url = profile.avatar_url.map(OwnedMxcUri::from);
            (user_id, served)
        })
        .collect::<BTreeMap<_, _>>();
    result
}
