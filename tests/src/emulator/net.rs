//! Transport pieces below axum: a listener whose connections a handler can kill, the server thread,
//! and a scripted response body.
//!
//! Faults need two things axum's response path cannot express: closing a connection without
//! writing a single byte ([`ConnHandle::kill`]), and a body that stops short of its
//! `content-length` ([`ScriptedStream`] ending in [`Step::Fail`]).

use std::collections::VecDeque;
use std::future::{Future, IntoFuture};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use axum::Router;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::http::dispatch;
use super::state::Shared;

/// One accepted connection, as handlers see it through `ConnectInfo`.
#[derive(Debug, Clone)]
pub(crate) struct ConnHandle {
    killed: Arc<AtomicBool>,
}

impl ConnHandle {
    /// From now on every read and write of the connection fails, so hyper drops it without
    /// sending whatever response the handler returns.
    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A TCP listener whose connections can be killed from a handler.
pub(crate) struct KillableListener {
    inner: TcpListener,
}

impl Listener for KillableListener {
    type Io = KillableIo;
    type Addr = ConnHandle;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, _)) => {
                    // SSE events are small writes that must not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    let killed = Arc::new(AtomicBool::new(false));
                    let io = KillableIo {
                        inner: stream,
                        killed: Arc::clone(&killed),
                    };
                    return (io, ConnHandle { killed });
                }
                // Per-connection errors (reset before accept, ...) say nothing about the listener;
                // anything else (e.g. out of file descriptors) would spin, so back off.
                Err(err) if is_connection_error(&err) => continue,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()?;
        Ok(ConnHandle {
            killed: Arc::new(AtomicBool::new(false)),
        })
    }
}

fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// A TCP stream that fails every operation once its [`ConnHandle`] is killed.
pub(crate) struct KillableIo {
    inner: TcpStream,
    killed: Arc<AtomicBool>,
}

impl KillableIo {
    fn check(&self) -> io::Result<()> {
        if self.killed.load(Ordering::SeqCst) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection dropped by an injected fault",
            ))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for KillableIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Runs the server on a new thread with its own runtime; sending on (or dropping) the returned
/// sender stops it, and joining the thread waits until the port is free.
pub(crate) fn spawn_server(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
) -> io::Result<(oneshot::Sender<()>, JoinHandle<()>)> {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
    let thread = std::thread::Builder::new()
        .name("minimax-emulator".to_string())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    let _ = ready_tx.send(Err(err));
                    return;
                }
            };
            runtime.block_on(async move {
                let listener = match TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                        return;
                    }
                };
                let app = Router::new().fallback(dispatch).with_state(shared);
                let serve = axum::serve(
                    KillableListener { inner: listener },
                    app.into_make_service_with_connect_info::<ConnHandle>(),
                );
                let _ = ready_tx.send(Ok(()));
                // Not a graceful shutdown: a slow fault or an open stream must not keep a test
                // waiting. Dropping the runtime below cancels the connections still open.
                tokio::select! {
                    _ = serve.into_future() => {}
                    _ = stop_rx => {}
                }
            });
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok((stop_tx, thread)),
        Ok(Err(err)) => {
            let _ = thread.join();
            Err(err)
        }
        Err(_) => {
            let _ = thread.join();
            Err(io::Error::other(
                "the emulator thread exited during start-up",
            ))
        }
    }
}

/// One step of a [`ScriptedStream`].
pub(crate) enum Step {
    Data(Bytes),
    Delay(Duration),
    /// End the body with an error: hyper then closes the connection mid-response.
    Fail,
}

/// A response body played from a script of chunks, pauses and failures.
pub(crate) struct ScriptedStream {
    steps: VecDeque<Step>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl ScriptedStream {
    pub(crate) fn new(steps: impl IntoIterator<Item = Step>) -> ScriptedStream {
        ScriptedStream {
            steps: steps.into_iter().collect(),
            sleep: None,
        }
    }
}

impl futures_core::Stream for ScriptedStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(sleep) = self.sleep.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                self.sleep = None;
            }
            match self.steps.pop_front() {
                None => return Poll::Ready(None),
                Some(Step::Data(bytes)) => return Poll::Ready(Some(Ok(bytes))),
                Some(Step::Delay(d)) => self.sleep = Some(Box::pin(tokio::time::sleep(d))),
                Some(Step::Fail) => {
                    return Poll::Ready(Some(Err(io::Error::other(
                        "response cut short by an injected fault",
                    ))))
                }
            }
        }
    }
}
