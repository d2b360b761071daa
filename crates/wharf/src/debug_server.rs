//! The operations side of `wharf serve`: wraps the API router with metrics and the health gate,
//! and serves `http.debug.addr` (`/debug/health`, and the Prometheus text at
//! `http.debug.prometheus.path`) on a listener of its own, so scrapes never queue behind pushes.

use std::sync::Arc;

use anyhow::Context;
use axum::middleware;

use crate::config::Config;
use crate::health::{self, Health};
use crate::metrics::{self, Metrics};
use crate::registry::Registry;

/// Instruments `app` as the config asks and spawns the debug listener when `http.debug.addr`
/// is set; returns the router to serve on the main port. `sources` add their series (storage,
/// notifications) to the scrape.
pub async fn start(
    app: axum::Router,
    registry: &Registry,
    config: &Config,
    sources: Vec<Arc<dyn metrics::Source>>,
) -> anyhow::Result<axum::Router> {
    let debug = &config.http.debug;
    let health = Health::start(&config.health, registry.driver().clone());
    let metrics = (debug.prometheus.enabled && !debug.addr.is_empty())
        .then(|| Arc::new(Metrics::new(&config.http.prefix).with_sources(sources)));
    let mut app = app;
    if let Some(h) = &health {
        app = app.layer(middleware::from_fn_with_state(h.clone(), health::gate));
    }
    if let Some(m) = &metrics {
        app = app.layer(middleware::from_fn_with_state(m.clone(), metrics::track));
    }
    if debug.addr.is_empty() {
        return Ok(app);
    }
    let addr = if debug.addr.starts_with(':') {
        format!("0.0.0.0{}", debug.addr)
    } else {
        debug.addr.clone()
    };
    let mut router = axum::Router::new().route(
        "/debug/health",
        axum::routing::get(move || {
            let health = health.clone();
            async move { health::status(health.as_deref()) }
        }),
    );
    if let Some(m) = metrics {
        let path = match debug.prometheus.path.as_str() {
            "" => "/metrics".to_owned(),
            p => p.to_owned(),
        };
        router = router.route(
            &path,
            axum::routing::get(move || {
                let m = m.clone();
                async move {
                    (
                        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        m.render(),
                    )
                }
            }),
        );
    }
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("http.debug.addr: cannot listen on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "debug server listening");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "debug server stopped");
        }
    });
    Ok(app)
}
