//! Answers that come later. A `/sync` long-poll that has to wait hands the rest of its work to
//! the connection (Hearth's own client listener, `http1`), so that while it waits the request
//! no longer holds the router's and the middleware's futures, the extractor's state or the
//! request itself: only the wait (an idle long-poll must cost a few kilobytes at most).
//!
//! The listener marks each request it can finish later with [`CanDefer`]; a handler that would
//! wait answers with a placeholder carrying the [`Deferred`] rest. The listener then awaits it
//! and sends the answer it produces, with the headers the middleware put on the placeholder.
//! Elsewhere (the router called directly, in tests) the handler simply waits.

use std::{
    future::{Future, poll_fn},
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::{Arc, Mutex},
    task::Poll,
};

use axum::{
    extract::{FromRequest, Request},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use hearth_core::Homeserver;

use crate::error::ApiError;

/// In a request's extensions: whoever serves the request finishes [`Deferred`] answers.
#[derive(Clone, Copy, Debug)]
pub struct CanDefer;

/// The rest of an answer.
pub type Later = Pin<Box<dyn Future<Output = Response> + Send>>;

/// In a placeholder response's extensions: the answer still to come.
#[derive(Clone)]
pub struct Deferred(Arc<Mutex<Option<Later>>>);

impl Deferred {
    /// Takes the rest of the answer out of `response`, if it is a placeholder.
    pub fn take(response: &mut Response) -> Option<Later> {
        let deferred = response.extensions_mut().remove::<Deferred>()?;
        let mut later = deferred.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        later.take()
    }
}

/// An extractor: `E`, and whether the answer may be deferred.
pub struct Deferrable<E>(pub E, pub bool);

impl<E: FromRequest<Homeserver>> FromRequest<Homeserver> for Deferrable<E> {
    type Rejection = E::Rejection;

    async fn from_request(request: Request, hs: &Homeserver) -> Result<Self, Self::Rejection> {
        let can_defer = request.extensions().get::<CanDefer>().is_some();
        Ok(Deferrable(E::from_request(request, hs).await?, can_defer))
    }
}

/// Runs `answer` until it first has to wait; then, when `can_defer`, answers with a placeholder
/// carrying the rest of it, else waits for it. A plain function: `answer` is boxed at once, so
/// the returned future holds a pointer to it rather than a copy.
pub fn or_later<F>(can_defer: bool, answer: F) -> impl Future<Output = Response> + Send
where
    F: Future<Output: IntoResponse> + Send + 'static,
{
    placeholder_or_answer(can_defer, Box::pin(answer))
}

async fn placeholder_or_answer<F>(can_defer: bool, mut answer: Pin<Box<F>>) -> Response
where
    F: Future<Output: IntoResponse> + Send + 'static,
{
    if !can_defer {
        return answer.await.into_response();
    }
    match poll_fn(|cx| Poll::Ready(answer.as_mut().poll(cx))).await {
        Poll::Ready(response) => response.into_response(),
        Poll::Pending => {
            // Not an `async` block awaiting `answer`: that would hold it twice.
            let later: Later = Box::pin(poll_fn(move |cx| {
                // The rest runs outside the middleware, which answers 500 for a handler's panic.
                std::panic::catch_unwind(AssertUnwindSafe(|| answer.as_mut().poll(cx)))
                    .map(|poll| poll.map(IntoResponse::into_response))
                    .unwrap_or_else(|_| Poll::Ready(ApiError::panicked().into_response()))
            }));
            let mut placeholder = StatusCode::OK.into_response();
            placeholder.extensions_mut().insert(Deferred(Arc::new(Mutex::new(Some(later)))));
            placeholder
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn slow(panics: bool) -> Response {
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(!panics, "deliberately");
        StatusCode::ACCEPTED.into_response()
    }

    #[tokio::test]
    async fn an_answer_that_waits_is_deferred_only_where_it_may_be() {
        assert_eq!(or_later(false, slow(false)).await.status(), StatusCode::ACCEPTED);
        let mut placeholder = or_later(true, slow(false)).await;
        let later = Deferred::take(&mut placeholder).expect("deferred");
        assert_eq!(later.await.status(), StatusCode::ACCEPTED);
        assert!(Deferred::take(&mut placeholder).is_none(), "taken once");
    }

    #[tokio::test]
    async fn a_deferred_answer_that_panics_is_a_500() {
        let mut placeholder = or_later(true, slow(true)).await;
        let later = Deferred::take(&mut placeholder).expect("deferred");
        assert_eq!(later.await.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn an_answer_ready_at_once_is_not_deferred() {
        let mut response = or_later(true, async { StatusCode::CREATED }).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert!(Deferred::take(&mut response).is_none());
    }
}
