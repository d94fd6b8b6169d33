//! The bridge between axum and ruma for the Server-Server API: [`FedRuma<R>`] extracts a typed
//! request after checking its X-Matrix signature (for endpoints that require one),
//! [`FedResponse`] sends a typed response, and [`FedRouterExt::ruma`] registers a handler under
//! its endpoint's path.

use std::future::Future;

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{FromRequest, FromRequestParts, Path, Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{MethodFilter, on},
};
use ruma::{
    OwnedServerName,
    api::{
        IncomingRequest, OutgoingResponse,
        auth_scheme::{AuthScheme, NoAuthentication},
        error::ErrorKind,
        federation::authentication::{ServerSignatures, XMatrix},
    },
    signatures::{PublicKeyMap, PublicKeySet},
};

use crate::{FedApiError, FedResult, Federation};

/// The largest body a federation request may have (a `/send` transaction of 50 PDUs of up to
/// 64 KiB each, plus EDUs, must fit), unless `limits.max_request_bytes` is larger.
const MAX_BODY_BYTES: usize = 16 << 20;

/// A federation request, authenticated and parsed.
pub struct FedRuma<R: IncomingRequest>
where
    R::Authentication: FedAuth,
{
    /// The server that sent it, proven by its X-Matrix signature (`()` for the key API, which
    /// needs no signature).
    pub origin: <R::Authentication as FedAuth>::Origin,
    /// The typed request.
    pub body: R,
}

/// What a federation authentication scheme proves about the sender.
pub trait FedAuth: AuthScheme {
    /// The proven origin handed to the handler.
    type Origin: Send;

    /// Checks the request's credentials.
    fn authenticate(
        fed: &Federation,
        request: &http::Request<&[u8]>,
    ) -> impl Future<Output = FedResult<Self::Origin>> + Send;
}

impl FedAuth for NoAuthentication {
    type Origin = ();

    async fn authenticate(_: &Federation, _: &http::Request<&[u8]>) -> FedResult<()> {
        Ok(())
    }
}

impl FedAuth for ServerSignatures {
    type Origin = OwnedServerName;

    /// Verifies the X-Matrix `Authorization` header: well-formed, meant for us, signed with a key
    /// the origin publishes. Anything else is 401 `M_UNAUTHORIZED`.
    async fn authenticate(fed: &Federation, request: &http::Request<&[u8]>) -> FedResult<OwnedServerName> {
        let x_matrix = XMatrix::extract_from_http_headers(request.headers()).map_err(|e| {
            FedApiError::unauthorized(format!("Missing or malformed X-Matrix authorization: {e}"))
        })?;
        let us = fed.hs().server_name();
        if let Some(destination) = x_matrix.destination.as_deref().filter(|d| *d != us) {
            return Err(FedApiError::unauthorized(format!("The request is for {destination}, not {us}")));
        }
        if x_matrix.origin == us {
            return Err(FedApiError::unauthorized("The request claims to come from this server"));
        }
        let key = fed
            .keys()
            .public_key(&x_matrix.origin, x_matrix.key.as_str())
            .await
            .map_err(|e| FedApiError::unauthorized(format!("Unknown signing key: {e}")))?;
        let keys = PublicKeyMap::from([(
            x_matrix.origin.to_string(),
            PublicKeySet::from([(x_matrix.key.to_string(), key)]),
        )]);
        x_matrix
            .verify_http_request(request, us, &keys)
            .map_err(|e| FedApiError::unauthorized(format!("Bad X-Matrix signature: {e}")))?;
        Ok(x_matrix.origin)
    }
}

impl<R> FromRequest<Federation> for FedRuma<R>
where
    R: IncomingRequest + Send,
    R::Authentication: FedAuth,
{
    type Rejection = FedApiError;

    async fn from_request(request: Request, fed: &Federation) -> FedResult<Self> {
        let (mut parts, body) = request.into_parts();
        let limit = MAX_BODY_BYTES.max(fed.hs().config().limits.max_request_bytes);
        let bytes: Bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
            hearth_core::Error::matrix(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorKind::TooLarge,
                format!("Request bodies are limited to {limit} bytes"),
            )
        })?;
        let Path(path_args): Path<Vec<String>> = Path::from_request_parts(&mut parts, fed)
            .await
            .map_err(|e| hearth_core::Error::invalid_param(e.body_text()))?;
        let request = http::Request::from_parts(parts, &bytes[..]);
        let origin = R::Authentication::authenticate(fed, &request).await?;
        let path_refs: Vec<&str> = path_args.iter().map(String::as_str).collect();
        let body = hearth_core::http_api::parse_request(request, &path_refs)?;
        Ok(FedRuma { origin, body })
    }
}

/// A ruma response on its way out.
pub struct FedResponse<T>(pub T);

impl<T: OutgoingResponse> IntoResponse for FedResponse<T> {
    fn into_response(self) -> Response {
        hearth_core::http_api::response(self.0).map(Body::from).into_response()
    }
}

/// One-line registration of federation handlers.
pub trait FedRouterExt {
    /// Serves `handler` (`async fn(Federation, FedRuma<R>) -> FedResult<R::OutgoingResponse>`)
    /// at every path of its endpoint.
    fn ruma<R, F, Fut>(self, handler: F) -> Self
    where
        R: IncomingRequest + Send + 'static,
        R::Authentication: FedAuth,
        R::OutgoingResponse: Send,
        F: Fn(Federation, FedRuma<R>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = FedResult<R::OutgoingResponse>> + Send;
}

impl FedRouterExt for Router<Federation> {
    fn ruma<R, F, Fut>(mut self, handler: F) -> Self
    where
        R: IncomingRequest + Send + 'static,
        R::Authentication: FedAuth,
        R::OutgoingResponse: Send,
        F: Fn(Federation, FedRuma<R>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = FedResult<R::OutgoingResponse>> + Send,
    {
        let filter = MethodFilter::try_from(R::METHOD).expect("ruma endpoints use standard methods");
        for path in hearth_core::http_api::endpoint_paths::<R>() {
            let handler = handler.clone();
            self = self.route(
                path,
                on(filter, move |State(fed): State<Federation>, request: FedRuma<R>| async move {
                    handler(fed, request).await.map(FedResponse)
                }),
            );
        }
        self
    }
}
