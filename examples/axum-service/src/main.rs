//! `DATABASE_URL=postgres://… [DATABASE_REPLICA_URLS=postgres://…,…]
//! [BIND_ADDR=127.0.0.1:3000] cargo run -p axum-service`
//!
//! Connects (checking every URL at start-up), runs the migrations, serves
//! until SIGINT or SIGTERM, then finishes the requests in flight.

use std::process::ExitCode;

use diesel::PgConnection;
use diesel_facade::Facade;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // diesel-facade's errors name URLs with their passwords redacted.
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    let bind = std::env::var("BIND_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    // Connecting and migrating block: keep them off the async workers.
    let db = tokio::task::spawn_blocking(|| -> Result<_, BoxError> {
        let db = Facade::<PgConnection>::from_env()?;
        axum_service::migrate(&db)?;
        Ok(db)
    })
    .await??;
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    tracing::info!(
        address = %listener.local_addr()?,
        writer = db.writer_url(),
        replicas = db.replica_count(),
        "listening"
    );
    axum_service::serve(listener, axum_service::router(db), shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// SIGINT (Ctrl-C) or, on Unix, SIGTERM (what container runtimes send).
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {err}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!("cannot listen for SIGTERM: {err}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing the requests in flight");
}
