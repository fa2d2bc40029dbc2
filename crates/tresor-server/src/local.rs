//! [`LocalTransport`]: the engine in the same process, reached through the node's own
//! [`dispatch`](crate::dispatch::dispatch), so an in-process face (the REST API inside
//! `tresor dev`) speaks exactly the messages it would send to a remote node and gets exactly
//! the answers a node would give. It holds an engine context, never key material of its own.

use std::sync::Arc;

use tokio::runtime::Handle;
use tresor_client::transport::{node_result, AsyncTransport, CallFuture, Transport};
use tresor_client::Error;
use tresor_core::{Context, Engine};
use tresor_proto::{Request, Response};

/// One partition's context on an in-process engine.
pub struct LocalTransport {
    ctx: Arc<Context>,
    handle: Handle,
}

impl std::fmt::Debug for LocalTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTransport")
            .field("partition", &self.ctx.partition_name())
            .field("context", &self.ctx.id())
            .finish()
    }
}

impl LocalTransport {
    /// Open a context on `partition` (not logged in: send `Request::Login` through it). Must
    /// be called inside the runtime the engine runs on; calls are later run on that runtime.
    pub async fn open(engine: &Arc<Engine>, partition: &str) -> tresor_core::Result<Self> {
        let ctx = engine.open_context(partition).await?;
        Ok(LocalTransport {
            ctx: Arc::new(ctx),
            handle: Handle::current(),
        })
    }

    fn refuse(request: &Request) -> Option<Error> {
        matches!(
            request,
            Request::OpenSession { .. }
                | Request::AttachSession { .. }
                | Request::RegisterClient { .. }
                | Request::CloseSession {}
        )
        .then(|| Error::Node {
            rv: 0x0000_0005, // CKR_GENERAL_ERROR
            message: "an in-process transport is bound to one context".into(),
        })
    }
}

impl AsyncTransport for LocalTransport {
    fn call_async<'a>(&'a self, request: &'a Request) -> CallFuture<'a> {
        Box::pin(async move {
            if let Some(e) = Self::refuse(request) {
                return Err(e);
            }
            node_result(crate::dispatch::dispatch(&self.ctx, request).await)
        })
    }
}

impl Transport for LocalTransport {
    /// Blocks the calling thread until the engine answers; call it from a blocking thread
    /// (`spawn_blocking`), never from an async task.
    fn call(&self, request: &Request) -> Result<Response, Error> {
        if let Some(e) = Self::refuse(request) {
            return Err(e);
        }
        let r = self
            .handle
            .block_on(crate::dispatch::dispatch(&self.ctx, request));
        node_result(r)
    }
}
