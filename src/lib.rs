//! The composition root: builds a [`Homeserver`] from a [`Config`], merges the client and
//! federation routers under one set of middleware, and runs the listener until shutdown. The
//! only place that knows every crate.

use std::net::SocketAddr;

use anyhow::Context;
use axum::{
    Router,
    extract::Request,
    http::{HeaderName, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use hearth_client_api::{error, observe};
pub use hearth_core::{Config, Homeserver};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tower_http::{
    catch_panic::CatchPanicLayer,
    cors::{AllowOrigin, CorsLayer},
};

/// Every route of one homeserver with its middleware, ready to serve.
pub fn app(hs: Homeserver) -> Router {
    Router::new()
        .merge(hearth_client_api::router(&hs))
        .merge(hearth_federation::router())
        .route_layer(middleware::from_fn(observe::tag_route))
        .fallback(error::unrecognized)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(middleware::from_fn(answer_options))
        .layer(cors())
        .layer(CatchPanicLayer::custom(|_| {
            error::ApiError(hearth_core::Error::Internal(anyhow::anyhow!("handler panicked"))).into_response()
        }))
        .layer(middleware::from_fn_with_state(hs.clone(), observe::observe))
        .with_state(hs)
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

/// Answers every `OPTIONS` request itself (the CORS layer adds the headers), also those that are
/// not browser preflights.
async fn answer_options(request: Request, next: Next) -> Response {
    if request.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    }
}

/// A running homeserver.
pub struct Server {
    hs: Homeserver,
    client_addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Opens the database, binds the client listener and starts serving in the background.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        let listen = config.listen.client;
        let hs = Homeserver::open(config).await?;
        let listener = TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
        let client_addr = listener.local_addr()?;
        let (shutdown, signal) = oneshot::channel::<()>();
        let service = app(hs.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let task = tokio::spawn(async move {
            axum::serve(listener, service)
                .with_graceful_shutdown(async {
                    let _ = signal.await;
                })
                .await
        });
        tracing::info!(server_name = %hs.server_name(), address = %client_addr, "serving the client API");
        Ok(Server { hs, client_addr, shutdown, task })
    }

    /// The homeserver handle.
    pub fn homeserver(&self) -> &Homeserver {
        &self.hs
    }

    /// The address the client API listens on (the real port when configured with port 0).
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// Stops accepting connections, lets in-flight requests finish, then closes the database.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.hs.begin_shutdown();
        let _ = self.shutdown.send(());
        finish(&self.hs, self.task).await
    }

    /// Serves until `signal` resolves, then stops gracefully. Fails if serving fails first.
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        let Server { hs, shutdown, mut task, .. } = self;
        tokio::select! {
            () = signal => {}
            result = &mut task => {
                result.context("server task")?.context("serving")?;
                anyhow::bail!("the listener stopped unexpectedly");
            }
        }
        tracing::info!("shutting down");
        hs.begin_shutdown();
        let _ = shutdown.send(());
        finish(&hs, task).await
    }
}

async fn finish(hs: &Homeserver, task: JoinHandle<std::io::Result<()>>) -> anyhow::Result<()> {
    task.await.context("server task")?.context("serving")?;
    hs.db().close().await;
    Ok(())
}
