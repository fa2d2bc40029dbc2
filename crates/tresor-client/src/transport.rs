//! [`Transport`]: how a face (the REST API, tools) sends one `tresor-proto` request to the
//! engine and gets its answer, without knowing whether the engine is behind a gateway
//! ([`SlotClient`]) or in the same process (`tresor_server::local::LocalTransport`).
//!
//! Calls block: async callers run them on a blocking thread. A node's error answer is
//! returned as [`Error::Node`], never as `Ok(Response::Error { .. })`.

use std::future::Future;
use std::pin::Pin;

use tresor_proto::{Request, Response};

use crate::connect::SlotClient;
use crate::Error;

/// One partition's way to the engine.
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// Send `request`; the node's answer, or the failure ([`Error::Node`] for an engine error).
    fn call(&self, request: &Request) -> Result<Response, Error>;
}

/// The future of [`AsyncTransport::call_async`].
pub type CallFuture<'a> = Pin<Box<dyn Future<Output = Result<Response, Error>> + Send + 'a>>;

/// A transport that can answer without blocking a thread (the engine in the same process):
/// async callers use it directly instead of moving a blocking call to another thread.
pub trait AsyncTransport: Send + Sync + std::fmt::Debug {
    /// As [`Transport::call`], as a future.
    fn call_async<'a>(&'a self, request: &'a Request) -> CallFuture<'a>;
}

impl Transport for SlotClient {
    fn call(&self, request: &Request) -> Result<Response, Error> {
        SlotClient::call(self, request)
    }
}

/// `Ok` for a success answer, [`Error::Node`] for [`Response::Error`].
pub fn node_result(response: Response) -> Result<Response, Error> {
    match response {
        Response::Error { rv, message } => Err(Error::Node { rv, message }),
        other => Ok(other),
    }
}
