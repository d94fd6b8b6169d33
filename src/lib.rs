//! The composition root: builds a [`Homeserver`] from a [`Config`], puts the client and
//! federation routers under one set of middleware, and runs the client listener and (when
//! enabled) the federation TLS listener until shutdown. The only place that knows every crate.

pub mod http1;

use std::net::SocketAddr;

use anyhow::Context;
use axum::{
    Extension, Router,
    http::{HeaderName, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use hearth_client_api::{error::ApiError, observe};
pub use hearth_core::{Config, Homeserver};
pub use hearth_federation::Federation;
use hearth_federation::listener::TlsListener;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    cors::{AllowOrigin, CorsLayer},
};

/// The client listener's routes (the Client-Server API, and our key for compatibility) with
/// their middleware, ready to serve.
pub fn app(fed: Federation) -> Router {
    let hs = fed.hs().clone();
    let routes = Router::new()
        .merge(hearth_client_api::router(&hs))
        .merge(hearth_federation::key_routes().with_state(fed.clone()));
    // Client handlers that ask other servers take the handle from here (`ruma_fed`).
    with_middleware(routes, hs, Some(fed))
}

/// The federation listener's routes (the Server-Server API) with their middleware.
pub fn federation_app(fed: Federation) -> Router {
    let hs = fed.hs().clone();
    with_middleware(hearth_federation::router().with_state(fed), hs, None)
}

/// Observation, panic catching, CORS, `OPTIONS` and the Matrix 404/405 fallbacks around `routes`
/// (and `fed` in every request's extensions, when given).
///
/// The layers wrap the router once, as its fallback service, rather than each route
/// (`Router::layer`), which boxes every layer's future again for each request: a request in
/// flight (10 000 waiting long-polls) then holds fewer and smaller allocations.
fn with_middleware(routes: Router<Homeserver>, hs: Homeserver, fed: Option<Federation>) -> Router {
    let routes = routes
        .route_layer(observe::TagRoute)
        .fallback(|method: Method| answer(method, ApiError::unrecognized()))
        .method_not_allowed_fallback(|method: Method| answer(method, ApiError::method_not_allowed()))
        .with_state(hs.clone());
    let service = ServiceBuilder::new()
        .layer(observe::Observe(hs))
        .layer(CatchPanicLayer::custom(|_| ApiError::panicked().into_response()))
        .layer(cors())
        .option_layer(fed.map(Extension))
        .service(routes);
    Router::new().fallback_service(service)
}

/// CORS as the spec requires on every route, so browser clients on any origin can connect.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("x-requested-with"),
        ])
}

/// The answer for a path no route serves with this method: `error`, except for `OPTIONS`, which
/// is answered for every path (the CORS layer adds the headers), also when it is not a browser
/// preflight.
async fn answer(method: Method, error: ApiError) -> Response {
    if method == Method::OPTIONS { StatusCode::NO_CONTENT.into_response() } else { error.into_response() }
}

/// A running homeserver.
pub struct Server {
    fed: Federation,
    client_addr: SocketAddr,
    federation_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Opens the database, binds the client listener (and the federation listener when
    /// `federation.enabled`) and starts serving in the background.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        let listen = config.listen.client;
        let hs = Homeserver::open(config).await?;
        let fed = Federation::new(hs.clone())?;
        let listener = TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
        let client_addr = listener.local_addr()?;
        let (shutdown, signal) = watch::channel(false);
        let stopped = |mut signal: watch::Receiver<bool>| async move {
            let _ = signal.wait_for(|stop| *stop).await;
        };
        // Our own HTTP/1.1 server: a waiting long-poll holds no buffer (see `http1`).
        let client =
            http1::serve(listener, app(fed.clone()), stopped(signal.clone()), http1::Options::default());
        tracing::info!(server_name = %hs.server_name(), address = %client_addr, "serving the client API");
        let federation = &hs.config().federation;
        let (federation_addr, task) = if federation.enabled {
            let tls = hearth_federation::tls::server_config(federation, hs.server_name())?;
            let listener = TlsListener::bind(federation.listen, tls)
                .await
                .with_context(|| format!("binding the federation listener {}", federation.listen))?;
            let address = axum::serve::Listener::local_addr(&listener)?;
            tracing::info!(%address, "serving the federation API");
            let serving = axum::serve(listener, federation_app(fed.clone()).into_make_service())
                .with_graceful_shutdown(stopped(signal));
            // Joining rooms of other servers; sending the outbox until shutdown begins.
            hs.set_remote_rooms(Box::new(hearth_federation::join::Joiner(fed.downgrade())));
            let sender = hearth_federation::sender::run(fed.clone());
            let task = tokio::spawn(async move {
                let sending = async {
                    sender.await;
                    Ok(())
                };
                tokio::try_join!(client, serving.into_future(), sending).map(|_| ())
            });
            (Some(address), task)
        } else {
            (None, tokio::spawn(client))
        };
        Ok(Server { fed, client_addr, federation_addr, shutdown, task })
    }

    /// The homeserver handle.
    pub fn homeserver(&self) -> &Homeserver {
        self.fed.hs()
    }

    /// The federation handle.
    pub fn federation(&self) -> &Federation {
        &self.fed
    }

    /// The address the client API listens on (the real port when configured with port 0).
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// The address the federation TLS listener listens on, when federation is enabled.
    pub fn federation_addr(&self) -> Option<SocketAddr> {
        self.federation_addr
    }

    /// Stops accepting connections, lets in-flight requests finish, then closes the database.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.fed.hs().begin_shutdown();
        self.shutdown.send_replace(true);
        finish(self.fed.hs(), self.task).await
    }

    /// Serves until `signal` resolves, then stops gracefully. Fails if serving fails first.
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        let Server { fed, shutdown, mut task, .. } = self;
        tokio::select! {
            () = signal => {}
            result = &mut task => {
                result.context("server task")?.context("serving")?;
                anyhow::bail!("the listener stopped unexpectedly");
            }
        }
        tracing::info!("shutting down");
        fed.hs().begin_shutdown();
        shutdown.send_replace(true);
        finish(fed.hs(), task).await
    }
}

async fn finish(hs: &Homeserver, task: JoinHandle<std::io::Result<()>>) -> anyhow::Result<()> {
    task.await.context("server task")?.context("serving")?;
    hs.db().close().await;
    Ok(())
}
