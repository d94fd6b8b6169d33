//! The bridge between axum and ruma: [`Ruma<T>`] extracts a typed ruma request (authenticating
//! it according to the endpoint's metadata), [`RumaResponse`] sends a typed response, and
//! [`RouterExt::ruma`] registers a handler under every path version ruma knows for its endpoint.

use std::{future::Future, net::SocketAddr};

use axum::{
    Extension, Router,
    body::{Body, Bytes},
    extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request, State},
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
    routing::{MethodFilter, on},
};
use hearth_core::{
    Homeserver,
    accounts::{User, sessions},
};
use hearth_federation::Federation;
use ruma::api::{
    IncomingRequest, Metadata, OutgoingResponse,
    auth_scheme::{
        AccessToken, AccessTokenOptional, AppserviceToken, AppserviceTokenOptional, NoAccessToken,
        NoAuthentication,
    },
    error::ErrorKind,
};

use crate::{
    defer::Deferrable,
    error::{ApiError, Result},
    json,
};

/// A ruma request, parsed and authenticated.
pub struct Ruma<T: IncomingRequest>
where
    T::Authentication: Authenticate,
{
    /// The typed request.
    pub body: T,
    /// Who sent it: a [`User`] for access-token endpoints, `()` for open ones.
    pub auth: <T::Authentication as Authenticate>::Identity,
    /// The body as received, for the few endpoints that keep fields ruma does not model.
    pub raw_body: Bytes,
}

/// What an authentication scheme proves about the caller.
pub trait Authenticate {
    /// The proven identity handed to the handler.
    type Identity: Send;

    /// Checks the request's credentials.
    fn authenticate(hs: &Homeserver, parts: &Parts) -> impl Future<Output = Result<Self::Identity>> + Send;

    /// The user the identity proves, which rate limits are keyed by.
    fn user(_identity: &Self::Identity) -> Option<&User> {
        None
    }
}

impl Authenticate for AccessToken {
    type Identity = User;

    async fn authenticate(hs: &Homeserver, parts: &Parts) -> Result<User> {
        let token = access_token(parts)?.ok_or_else(|| {
            ApiError::new(StatusCode::UNAUTHORIZED, ErrorKind::MissingToken, "Missing access token")
        })?;
        let user = sessions::authenticate(hs, token).await?;
        tracing::Span::current().record("user", user.user_id.as_str());
        Ok(user)
    }

    fn user(identity: &User) -> Option<&User> {
        Some(identity)
    }
}

impl Authenticate for AccessTokenOptional {
    type Identity = Option<User>;

    async fn authenticate(hs: &Homeserver, parts: &Parts) -> Result<Option<User>> {
        match access_token(parts)? {
            Some(_) => AccessToken::authenticate(hs, parts).await.map(Some),
            None => Ok(None),
        }
    }

    fn user(identity: &Option<User>) -> Option<&User> {
        identity.as_ref()
    }
}

/// For endpoints where the spec makes the token optional but Hearth needs it: the user, or
/// 401 `M_MISSING_TOKEN`.
pub fn require_user(user: Option<User>) -> Result<User> {
    user.ok_or_else(|| {
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorKind::MissingToken, "Missing access token")
    })
}

/// Endpoints that take no credentials at all (or ignore the ones sent).
macro_rules! open_endpoint {
    ($($scheme:ty),*) => {$(
        impl Authenticate for $scheme {
            type Identity = ();

            async fn authenticate(_: &Homeserver, _: &Parts) -> Result<()> {
                Ok(())
            }
        }
    )*};
}
// `/register` and `/login` accept an optional application-service token; application services
// are not supported yet, so such a token is ignored and the request treated as a user's own.
open_endpoint!(NoAuthentication, NoAccessToken, AppserviceTokenOptional);

/// Application services are not supported yet: endpoints only they may call are refused.
impl Authenticate for AppserviceToken {
    type Identity = ();

    async fn authenticate(_: &Homeserver, _: &Parts) -> Result<()> {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorKind::UnknownToken(Default::default()),
            "Application services are not supported",
        ))
    }
}

/// The bearer token from the `Authorization` header, else the deprecated `access_token` query
/// parameter.
pub(crate) fn access_token(parts: &Parts) -> Result<Option<&str>> {
    if let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let token = header.to_str().ok().and_then(|h| h.strip_prefix("Bearer ")).ok_or_else(|| {
            ApiError::new(StatusCode::UNAUTHORIZED, ErrorKind::MissingToken, "Malformed Authorization header")
        })?;
        return Ok(Some(token.trim()));
    }
    Ok(parts.uri.query().and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("access_token="))))
}

/// Takes a token from `user`'s bucket when the ruma endpoint `T` is rate-limited: for the
/// surfaces that act like an endpoint without going through [`Ruma`] (the WebSocket commands,
/// the REST facade), so they are limited alike.
pub(crate) fn rate_limit<T: Metadata>(hs: &Homeserver, user: &User) -> Result<()> {
    if T::RATE_LIMITED {
        hs.rate_limiter().check(user.user_id.as_str())?;
    }
    Ok(())
}

/// The client's IP address, if the server was started with connection info.
pub fn client_ip(parts: &Parts) -> Option<String> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip().to_string())
}

impl<T> FromRequest<Homeserver> for Ruma<T>
where
    T: IncomingRequest + Send,
    T::Authentication: Authenticate,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, hs: &Homeserver) -> Result<Self> {
        // Boxed: axum's handler future is as large as its largest state for as long as the
        // handler runs (a `/sync` long-poll waits for minutes), and extracting is the largest.
        Box::pin(Self::extract(request, hs)).await
    }
}

impl<T> Ruma<T>
where
    T: IncomingRequest + Send,
    T::Authentication: Authenticate,
{
    /// Reads the body (an empty JSON body means `{}`), then [`parse`](Self::parse)s.
    async fn extract(request: Request, hs: &Homeserver) -> Result<Self> {
        let (parts, body) = request.into_parts();
        let mut bytes = json::read_body(hs, body).await?;
        // Clients (matrix-nio among them) POST with no body at all to endpoints whose body fields
        // are all optional, such as `/join`; an empty JSON body means `{}`.
        let json_body = parts
            .headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|ct| ct.contains("json"));
        if bytes.is_empty() && json_body && parts.method != axum::http::Method::GET {
            bytes = Bytes::from_static(b"{}");
        }
        Self::parse(hs, parts, bytes).await
    }

    /// Authenticates, rate-limits and parses a request whose body is `bytes`.
    async fn parse(hs: &Homeserver, mut parts: Parts, bytes: Bytes) -> Result<Self> {
        let Path(path_args): Path<Vec<String>> = Path::from_request_parts(&mut parts, hs)
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, ErrorKind::InvalidParam, e.body_text()))?;
        let auth = T::Authentication::authenticate(hs, &parts).await?;
        if T::RATE_LIMITED {
            let key = match T::Authentication::user(&auth) {
                Some(user) => user.user_id.to_string(),
                None => client_ip(&parts).unwrap_or_default(),
            };
            hs.rate_limiter().check(&key)?;
        }
        let path_refs: Vec<&str> = path_args.iter().map(String::as_str).collect();
        let request = axum::http::Request::from_parts(parts, &bytes[..]);
        let body = hearth_core::http_api::parse_request(request, &path_refs)?;
        Ok(Ruma { body, auth, raw_body: bytes })
    }
}

/// A ruma request whose body is left unread, for uploads: the typed request is parsed (and
/// authenticated) with an empty body, and the bytes stream from [`body`](Self::body), however
/// large, without the JSON body limit.
pub struct RumaStreamed<T: IncomingRequest>
where
    T::Authentication: Authenticate,
{
    /// Everything but the body.
    pub request: Ruma<T>,
    /// The body, unread.
    pub body: Body,
}

impl<T> FromRequest<Homeserver> for RumaStreamed<T>
where
    T: IncomingRequest + Send,
    T::Authentication: Authenticate,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, hs: &Homeserver) -> Result<Self> {
        let (parts, body) = request.into_parts();
        // Boxed, as in `Ruma::from_request`.
        Ok(RumaStreamed { request: Box::pin(Ruma::parse(hs, parts, Bytes::new())).await?, body })
    }
}

/// The method and every path (r0, v3, unstable…) of an endpoint, from its ruma metadata.
fn endpoint<Req: IncomingRequest>() -> (MethodFilter, Vec<&'static str>) {
    let filter = MethodFilter::try_from(Req::METHOD).expect("ruma endpoints use standard methods");
    (filter, hearth_core::http_api::endpoint_paths::<Req>())
}

/// A ruma response on its way out.
pub struct RumaResponse<T>(pub T);

impl<T: OutgoingResponse> IntoResponse for RumaResponse<T> {
    fn into_response(self) -> Response {
        hearth_core::http_api::response(self.0).map(Body::from).into_response()
    }
}

/// A function that can serve a ruma endpoint: `async fn(Homeserver, Ruma<Req>) -> Result<Resp>`.
pub trait RumaHandler<Req>: Clone + Send + Sync + 'static {
    /// Adds this handler to `router` under every path of the endpoint.
    fn register(self, router: Router<Homeserver>) -> Router<Homeserver>;
}

impl<Req, F, Fut> RumaHandler<Req> for F
where
    Req: IncomingRequest + Send + 'static,
    Req::Authentication: Authenticate,
    Req::OutgoingResponse: Send,
    F: Fn(Homeserver, Ruma<Req>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Req::OutgoingResponse>> + Send,
{
    fn register(self, mut router: Router<Homeserver>) -> Router<Homeserver> {
        let (filter, paths) = endpoint::<Req>();
        // The spec lets a trailing state key be empty, which a path parameter cannot match:
        // serve those paths with the parameter left out as well.
        let empty_key: Vec<String> = paths
            .iter()
            .filter_map(|p| p.strip_suffix("/{state_key}"))
            .flat_map(|base| [base.to_owned(), format!("{base}/")])
            .collect();
        let paths = paths.into_iter().map(str::to_owned).chain(empty_key);
        for path in paths {
            let handler = self.clone();
            router = router.route(
                &path,
                on(filter, move |State(hs): State<Homeserver>, request: Ruma<Req>| async move {
                    handler(hs, request).await.map(RumaResponse)
                }),
            );
        }
        router
    }
}

/// One-line registration of ruma handlers.
pub trait RouterExt {
    /// Serves `handler` at every path (r0, v3, unstable…) of its endpoint.
    fn ruma<Req, H: RumaHandler<Req>>(self, handler: H) -> Self;

    /// Like [`RouterExt::ruma`], for the rare endpoint whose answer ruma's response type cannot
    /// express (it leaves out fields equal to their default that clients still look for): the
    /// handler takes the typed request and returns any response.
    fn ruma_raw<Req, F, Fut, R>(self, handler: F) -> Self
    where
        Req: IncomingRequest + Send + 'static,
        Req::Authentication: Authenticate,
        F: Fn(Homeserver, Ruma<Req>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<R>> + Send,
        R: IntoResponse;

    /// Like [`RouterExt::ruma_raw`], for a long-poll that may hand its wait to the connection
    /// (see [`defer`](crate::defer)).
    fn ruma_deferrable<Req, F, Fut, R>(self, handler: F) -> Self
    where
        Req: IncomingRequest + Send + 'static,
        Req::Authentication: Authenticate,
        F: Fn(Homeserver, Deferrable<Ruma<Req>>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<R>> + Send,
        R: IntoResponse;

    /// Like [`RouterExt::ruma_raw`], for uploads: the handler takes a [`RumaStreamed`] request.
    fn ruma_streamed<Req, F, Fut, R>(self, handler: F) -> Self
    where
        Req: IncomingRequest + Send + 'static,
        Req::Authentication: Authenticate,
        F: Fn(Homeserver, RumaStreamed<Req>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<R>> + Send,
        R: IntoResponse;

    /// Like [`RouterExt::ruma`], for handlers that may ask other servers: they take the
    /// [`Federation`] handle (which the composition root puts in every request's extensions)
    /// instead of the [`Homeserver`].
    fn ruma_fed<Req, F, Fut>(self, handler: F) -> Self
    where
        Req: IncomingRequest + Send + 'static,
        Req::Authentication: Authenticate,
        Req::OutgoingResponse: Send,
        F: Fn(Federation, Ruma<Req>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Req::OutgoingResponse>> + Send;

    /// [`RouterExt::ruma_fed`] and [`RouterExt::ruma_raw`] together: a handler that may ask other
    /// servers and returns any response.
    fn ruma_raw_fed<Req, F, Fut, R>(self, handler: F) -> Self
    where
        Req: IncomingRequest + Send + 'static,
        Req::Authentication: Authenticate,
        F: Fn(Federation, Ruma<Req>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<R>> + Send,
        R: IntoResponse;
}

impl RouterExt for Router<Homeserver> {
    fn ruma<Req, H: RumaHandler<Req>>(self, handler: H) -> Self {
        handler.register(self)
    }

    fn ruma_raw<Req, F, Fut, R>(self, handler: F) -> Self
    where
        Req: IncomingRequest + Send + 'static,
        Req::Authentication: Authenticate,
        F: Fn(Homeserver, Ruma<Req>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<R>> + Send,
        R: IntoResponse,
    {
        route_endpoint::<Req, Ruma<Req>, F, Fut, R>(self, handler)
    }

    fn ruma_deferrable<Req, F, Fut, R>(self, handler: F) -> Self
    where
        Req: IncomingRequest + Send + 'static,
        Req::Authentication: Authenticate,
        F: Fn(Homeserver, Deferrable<Ruma<Req>>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<R>> + Send,
        R: IntoResponse,
    {
        route_endpoint::<Req, Deferrable<Ruma<Req>>, F, Fut, R>(self, handler)
    }

    fn ruma_streamed<Req, F, Fut, R>(self, handler: F) -> Self
    where
        Req: IncomingRequest + Send + 'static,
        Req::Authentication: Authenticate,
        F: Fn(Homeserver, RumaStreamed<Req>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<R>> + Send,
        R: IntoResponse,
    {
        route_endpoint::<Req, RumaStreamed<Req>, F, Fut, R>(self, handler)
    }

    fn ruma_fed<Req, F, Fut>(self, handler: F) -> Self
    where
        Req: IncomingRequest + Send + 'static,
        Req::Authentication: Authenticate,
        Req::OutgoingResponse: Send,
        F: Fn(Federation, Ruma<Req>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Req::OutgoingResponse>> + Send,
    {
        self.ruma_raw_fed(move |fed, request: Ruma<Req>| {
            let response = handler(fed, request);
            async move { response.await.map(RumaResponse) }
        })
    }

    fn ruma_raw_fed<Req, F, Fut, R>(self, handler: F) -> Self
    where
        Req: IncomingRequest + Send + 'static,
        Req::Authentication: Authenticate,
        F: Fn(Federation, Ruma<Req>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<R>> + Send,
        R: IntoResponse,
    {
        let (filter, paths) = endpoint::<Req>();
        let mut router = self;
        for path in paths {
            let handler = handler.clone();
            router = router.route(
                path,
                on(filter, move |Extension(fed): Extension<Federation>, request: Ruma<Req>| {
                    handler(fed, request)
                }),
            );
        }
        router
    }
}

/// Routes every path and method of `Req` to `handler`, which takes the request as `E`.
fn route_endpoint<Req, E, F, Fut, R>(mut router: Router<Homeserver>, handler: F) -> Router<Homeserver>
where
    Req: IncomingRequest + Send + 'static,
    E: FromRequest<Homeserver> + Send + 'static,
    F: Fn(Homeserver, E) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<R>> + Send,
    R: IntoResponse,
{
    let (filter, paths) = endpoint::<Req>();
    for path in paths {
        let handler = handler.clone();
        router = router
            .route(path, on(filter, move |State(hs): State<Homeserver>, request: E| handler(hs, request)));
    }
    router
}
