//! Running a sandbox on its own port: in-process for tests ([`Sandbox::spawn`]) or as
//! the foreground server behind `ivpay-app sandbox` ([`serve`]).

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Deref;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::SandboxConfig;
use crate::error::SandboxError;
use crate::state::Sandbox;

impl Sandbox {
    /// Starts a sandbox on `127.0.0.1` and a free port, in the background. The one-line
    /// helper for tests: point the client at [`SandboxServer::base_url`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ivpay_sandbox::SandboxError> {
    /// use ivpay_sandbox::{Sandbox, SandboxConfig};
    ///
    /// let sb = Sandbox::spawn(SandboxConfig::default()).await?;
    /// assert!(sb.base_url().starts_with("http://127.0.0.1:"));
    /// assert!(sb.payments().is_empty());
    /// sb.shutdown().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Sandbox::new`], and [`SandboxError::Bind`] if no port can be had.
    pub async fn spawn(config: SandboxConfig) -> Result<SandboxServer, SandboxError> {
        Self::spawn_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Starts a sandbox on `addr` (port 0 picks a free one), in the background.
    ///
    /// # Errors
    ///
    /// As [`Sandbox::new`], and [`SandboxError::Bind`] if `addr` cannot be bound.
    pub async fn spawn_on(
        addr: SocketAddr,
        config: SandboxConfig,
    ) -> Result<SandboxServer, SandboxError> {
        let sandbox = Sandbox::new(config)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| SandboxError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| SandboxError::Bind { addr, source })?;
        let (tx, mut rx) = watch::channel(false);
        let app = sandbox.router();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // A dropped sender (the server handle is gone) also means stop.
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await
        });
        tracing::debug!(%local, "ivpay sandbox listening");
        Ok(SandboxServer {
            base_url: format!("http://{local}{}", sandbox.prefix()),
            sandbox,
            addr: local,
            shutdown: ShutdownHandle(Arc::new(tx)),
            task: Some(task),
        })
    }
}

/// A sandbox running on its own port. Derefs to [`Sandbox`] for the control methods
/// (`sb.payments()`, `sb.set_faults(..)`); stops when dropped or on [`shutdown`].
///
/// [`shutdown`]: SandboxServer::shutdown
#[derive(Debug)]
pub struct SandboxServer {
    sandbox: Sandbox,
    addr: SocketAddr,
    base_url: String,
    shutdown: ShutdownHandle,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl SandboxServer {
    /// `http://127.0.0.1:PORT` plus the prefix: the base URL to give an IVPAY client.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The sandbox behind the server (also reachable through `Deref`).
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// A handle that stops the server from elsewhere (a signal handler, another task).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the server.
    ///
    /// # Errors
    ///
    /// [`SandboxError::Serve`] if the server failed, [`SandboxError::Join`] if its task
    /// panicked.
    pub async fn shutdown(mut self) -> Result<(), SandboxError> {
        self.shutdown.shutdown();
        self.wait().await
    }

    /// Waits until the server stops (after a [`ShutdownHandle::shutdown`]).
    ///
    /// # Errors
    ///
    /// As [`SandboxServer::shutdown`].
    pub async fn wait(&mut self) -> Result<(), SandboxError> {
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(SandboxError::Join)?
                .map_err(SandboxError::Serve),
            None => Ok(()),
        }
    }
}

impl Deref for SandboxServer {
    type Target = Sandbox;
    fn deref(&self) -> &Sandbox {
        &self.sandbox
    }
}

impl Drop for SandboxServer {
    fn drop(&mut self) {
        self.shutdown.shutdown();
    }
}

/// Stops a [`SandboxServer`] gracefully. Clones stop the same server.
#[derive(Clone, Debug)]
pub struct ShutdownHandle(Arc<watch::Sender<bool>>);

impl ShutdownHandle {
    /// Asks the server to stop; returns at once.
    pub fn shutdown(&self) {
        self.0.send_replace(true);
    }
}

/// Runs a sandbox on `addr` in the foreground until `signal` resolves (`ivpay-app sandbox`
/// passes Ctrl-C or SIGTERM), then shuts down gracefully.
///
/// # Errors
///
/// As [`Sandbox::spawn_on`] and [`SandboxServer::shutdown`].
pub async fn serve_until(
    addr: SocketAddr,
    config: SandboxConfig,
    signal: impl Future<Output = ()> + Send,
) -> Result<(), SandboxError> {
    let mut server = Sandbox::spawn_on(addr, config).await?;
    tracing::info!(base_url = %server.base_url(), "ivpay sandbox listening");
    let stopped = tokio::select! {
        () = signal => None,
        stopped = server.wait() => Some(stopped),
    };
    match stopped {
        Some(result) => result,
        None => server.shutdown().await,
    }
}
