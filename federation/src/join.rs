//! Joining a room this server is not in (spec: Server-Server API › Joining Rooms): `make_join`
//! to a resident server for a template, our signature on it, `send_join` (v2), then the
//! returned state and auth chain verified and stored with the join (`rooms::remote_join`).
//! Installed into core as its [`RemoteRooms`] port.

use hearth_core::{
    Error, Result,
    remote_rooms::{BoxFuture, RemoteRooms},
    rooms::{Pdu, head::ROOM_VERSIONS, remote_join},
};
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, OwnedEventId, OwnedServerName, RoomId, RoomVersionId,
    ServerName, UserId,
    api::federation::membership::{
        create_join_event, create_knock_event, create_leave_event, prepare_join_event, prepare_knock_event,
        prepare_leave_event,
    },
};
use serde_json::{Map, Value};

use crate::{Federation, WeakFederation, ingest, membership::to_raw};

/// Core's [`RemoteRooms`] port, holding the federation handle weakly (the homeserver holds it).
pub struct Joiner(pub WeakFederation);

impl RemoteRooms for Joiner {
    fn join<'a>(
        &'a self,
        user: &'a UserId,
        room_id: &'a RoomId,
        via: &'a [OwnedServerName],
        content: Map<String, Value>,
    ) -> BoxFuture<'a, Result<OwnedEventId>> {
        Box::pin(async move { join(&self.federation()?, user, room_id, via, content).await })
    }

    fn invite<'a>(
        &'a self,
        invite: &'a CanonicalJsonObject,
        version: &'a RoomVersionId,
        stripped_state: Vec<CanonicalJsonObject>,
    ) -> BoxFuture<'a, Result<CanonicalJsonObject>> {
        Box::pin(async move {
            crate::invite::countersign(&self.federation()?, invite, version, stripped_state).await
        })
    }

    fn knock<'a>(
        &'a self,
        user: &'a UserId,
        room_id: &'a RoomId,
        via: &'a [OwnedServerName],
        content: Map<String, Value>,
    ) -> BoxFuture<'a, Result<(RoomVersionId, Pdu, Vec<Value>)>> {
        Box::pin(async move { knock(&self.federation()?, user, room_id, via, &content).await })
    }

    fn reject_invite<'a>(
        &'a self,
        user: &'a UserId,
        room_id: &'a RoomId,
        via: &'a [OwnedServerName],
    ) -> BoxFuture<'a, Result<(RoomVersionId, Pdu)>> {
        Box::pin(async move { leave(&self.federation()?, user, room_id, via).await })
    }

    fn backfill<'a>(
        &'a self,
        room_id: &'a RoomId,
        servers: &'a [OwnedServerName],
        from: &'a [OwnedEventId],
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Pdu>>> {
        Box::pin(
            async move { crate::backfill::fetch(&self.federation()?, room_id, servers, from, limit).await },
        )
    }
}

impl Joiner {
    fn federation(&self) -> Result<Federation> {
        self.0.upgrade().ok_or_else(|| Error::Internal(anyhow::anyhow!("federation stopped")))
    }
}

/// Leaves `room_id` (rejects an invite) through the first server of `via` that takes it:
/// make_leave, our signature, send_leave (v2). The room's version and the leave event.
pub async fn leave(
    fed: &Federation,
    user: &UserId,
    room_id: &RoomId,
    via: &[OwnedServerName],
) -> Result<(RoomVersionId, Pdu)> {
    through(via, room_id, "leave", |server| async move {
        let request = prepare_leave_event::v1::Request::new(room_id.to_owned(), user.to_owned());
        let template = fed.client().send(server, request).await?;
        let (version, leave) = signed(fed, template.room_version, &template.event, &Map::new())?;
        let raw = to_raw(&leave.json)?;
        fed.client()
            .send(
                server,
                create_leave_event::v2::Request::new(room_id.to_owned(), leave.event_id.clone(), raw),
            )
            .await?;
        Ok((version, leave))
    })
    .await
}

/// Knocks on `room_id` through the first server of `via` that takes it: make_knock, `content`
/// added, our signature, send_knock. The room's version, the knock and the stripped state.
pub async fn knock(
    fed: &Federation,
    user: &UserId,
    room_id: &RoomId,
    via: &[OwnedServerName],
    content: &Map<String, Value>,
) -> Result<(RoomVersionId, Pdu, Vec<Value>)> {
    through(via, room_id, "knock", |server| async move {
        let mut request = prepare_knock_event::v1::Request::new(room_id.to_owned(), user.to_owned());
        request.ver = ROOM_VERSIONS.to_vec();
        let template = fed.client().send(server, request).await?;
        let (version, knock) = signed(fed, Some(template.room_version), &template.event, content)?;
        let raw = to_raw(&knock.json)?;
        let request = create_knock_event::v1::Request::new(room_id.to_owned(), knock.event_id.clone(), raw);
        let answer = fed.client().send(server, request).await?;
        let stripped = answer.knock_room_state.iter().filter_map(crate::invite::stripped_event).collect();
        Ok((version, knock, stripped))
    })
    .await
}

/// Joins `user` to `room_id` through the first server of `via` that lets them in.
pub async fn join(
    fed: &Federation,
    user: &UserId,
    room_id: &RoomId,
    via: &[OwnedServerName],
    content: Map<String, Value>,
) -> Result<OwnedEventId> {
    through(via, room_id, "join", |server| join_through(fed, server, user, room_id, &content)).await
}

/// Tries `attempt` with each server of `via` in turn; the first success, else the last error.
pub(crate) async fn through<'a, T, F, Fut>(
    via: &'a [OwnedServerName],
    room_id: &RoomId,
    what: &str,
    attempt: F,
) -> Result<T>
where
    F: Fn(&'a ServerName) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut last = Error::not_found(format!("No server in the room could be reached to {what} it"));
    for server in via {
        match attempt(server).await {
            Ok(done) => return Ok(done),
            Err(e) => {
                tracing::info!(%server, %room_id, error = %e, "{what} through a server failed");
                last = e;
            }
        }
    }
    Err(last)
}

/// A template a resident server handed out, in a version we support, with `content` added to
/// its content (`membership` aside), signed by us.
fn signed(
    fed: &Federation,
    version: Option<RoomVersionId>,
    template: &serde_json::value::RawValue,
    content: &Map<String, Value>,
) -> Result<(RoomVersionId, Pdu)> {
    let version = version.unwrap_or(RoomVersionId::V1);
    if !ROOM_VERSIONS.contains(&version) {
        return Err(Error::bad_request(format!("Room version {version} is not supported")));
    }
    let mut object: CanonicalJsonObject = serde_json::from_str(template.get())
        .map_err(|e| Error::bad_json(format!("The event template is not canonical JSON: {e}")))?;
    if let Some(CanonicalJsonValue::Object(template_content)) = object.get_mut("content") {
        for (key, value) in content {
            if key != "membership"
                && let Ok(value) = CanonicalJsonValue::try_from(value.clone())
            {
                template_content.insert(key.clone(), value);
            }
        }
    }
    let pdu = remote_join::sign_template(fed.hs(), &version, object)?;
    Ok((version, pdu))
}

async fn join_through(
    fed: &Federation,
    server: &ServerName,
    user: &UserId,
    room_id: &RoomId,
    content: &Map<String, Value>,
) -> Result<OwnedEventId> {
    let mut request = prepare_join_event::v1::Request::new(room_id.to_owned(), user.to_owned());
    request.ver = ROOM_VERSIONS.to_vec();
    let template = fed.client().send(server, request).await?;
    let (version, join) = signed(fed, template.room_version, &template.event, content)?;
    let request =
        create_join_event::v2::Request::new(room_id.to_owned(), join.event_id.clone(), to_raw(&join.json)?);
    let answer = fed.client().send(server, request).await?.room_state;

    let rules = hearth_core::rooms::head::rules_for(&version)?;
    let state = ingest::verified_all(fed, &answer.state, &rules).await;
    let auth_chain = ingest::verified_all(fed, &answer.auth_chain, &rules).await;
    // A resident server may return the join with its own signature added (restricted rooms).
    let join = match &answer.event {
        Some(raw) => match ingest::verified_all(fed, std::slice::from_ref(raw), &rules).await.pop() {
            Some(signed) if signed.event_id == join.event_id => signed,
            _ => join,
        },
        None => join,
    };
    remote_join::persist_join(fed.hs(), server, &version, &join, &state, &auth_chain).await?;
    Ok(join.event_id)
}
