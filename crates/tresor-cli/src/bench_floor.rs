//! The reference beside `tresor bench network`: the same two hops (client → relay → signer and
//! back) built as plainly as possible, with nothing of Tresor's network path in it.
//!
//! Each client thread has a TCP connection (Nagle off) of its own to a relay; the relay gives
//! every accepted connection a connection of its own to a signer and two threads that copy
//! bytes (blocking `read`, `write_all`), one per direction; the signer serves each connection
//! on a thread of its own and signs with the same engine contexts as the in-process side. No
//! TLS on either hop, no framing beyond a fixed 33-byte request and a 2-byte length before the
//! answer, no multiplexing, no authentication, no request ids.
//!
//! Any design with a gateway hop and a node hop does at least what this does per operation
//! when requests do not queue behind each other: four system-call pairs and, when the
//! receiving thread sleeps, four thread wake-ups. Under load a design that batches several
//! requests per system call (Tresor's pipelined links) can do better, and one that polls
//! instead of sleeping can answer a lone client sooner; elsewhere the distance between the two
//! is what Tresor's channel, framing and dispatch cost.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use tokio::runtime::Handle;
use tresor_core::crypto::{HashAlg, Mechanism};
use tresor_core::Context;

use crate::bench::{thread_cpu_ns, with_backpressure, Worker};

/// Request: one byte naming the operation, then the 32-byte digest.
const REQUEST: usize = 33;

pub(crate) const OP_NOOP: u8 = 0;
pub(crate) const OP_P256: u8 = 1;
pub(crate) const OP_RSA: u8 = 2;

/// Prefix of the signer's thread names (`tresor bench network` counts their CPU time).
pub(crate) const FLOOR_SIGNER_THREAD: &str = "floor-signer";
/// Prefix of the relay's thread names.
pub(crate) const FLOOR_RELAY_THREAD: &str = "floor-relay";

/// The CPU time of the signer's and the relay's connection threads that have ended, which
/// `/proc/self/task` no longer lists (`tresor bench network` adds it to what it reads there).
#[derive(Debug, Default)]
pub(crate) struct Exited {
    /// Thread ids of ended connection threads: a reader holding the lock skips them (an ended
    /// thread can still be listed for a moment after it counted itself here).
    pub tids: HashSet<String>,
    pub signer_ns: u64,
    pub relay_ns: u64,
}

static EXITED: Mutex<Option<Exited>> = Mutex::new(None);

/// The ended threads' CPU time; hold the guard while reading the live threads' times.
pub(crate) fn exited() -> MutexGuard<'static, Option<Exited>> {
    EXITED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// This thread's id, from `/proc/thread-self`.
fn thread_id() -> Option<String> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    Some(link.file_name()?.to_str()?.to_owned())
}

/// Runs `f` on the current (connection) thread and adds its CPU time to [`Exited`] at the end.
fn counted(part: &'static str, f: impl FnOnce()) {
    if let Some(tid) = thread_id() {
        // A new thread may get the id of one that ended long ago.
        if let Some(e) = exited().as_mut() {
            e.tids.remove(&tid);
        }
    }
    f();
    if let Some(tid) = thread_id() {
        let ns = thread_cpu_ns();
        let mut g = exited();
        let e = g.get_or_insert_with(Exited::default);
        if part == FLOOR_SIGNER_THREAD {
            e.signer_ns += ns;
        } else {
            e.relay_ns += ns;
        }
        e.tids.insert(tid);
    }
}

/// The relay and the signer, listening on 127.0.0.1 until dropped.
pub(crate) struct Floor {
    relay: SocketAddr,
    signer: SocketAddr,
    stop: Arc<AtomicBool>,
}

/// The keys the signer uses, by operation.
#[derive(Clone, Copy)]
pub(crate) struct FloorKeys {
    pub p256: i64,
    pub rsa: i64,
}

/// Accepts connections on `listener` until `stop`, handing each to `serve` on a new thread.
fn accept_loop(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    part: &'static str,
    serve: impl Fn(TcpStream) + Send + Sync + Clone + 'static,
) -> Result<()> {
    std::thread::Builder::new()
        .name(format!("{part}-accept"))
        .spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Acquire) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let serve = serve.clone();
                // A connection the machine cannot give a thread to is dropped: its client fails.
                let _ = std::thread::Builder::new()
                    .name(part.to_owned())
                    .spawn(move || counted(part, || serve(conn)));
            }
        })?;
    Ok(())
}

/// Copies `r` to `w` until end of stream or an error, then shuts `w`'s sending side.
fn copy(mut r: TcpStream, mut w: TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let Some(chunk) = buf.get(..n) else { break };
                if w.write_all(chunk).is_err() {
                    break;
                }
            }
        }
    }
    let _ = w.shutdown(Shutdown::Write);
}

fn sign(op: u8, digest: &[u8], ctx: &Context, keys: FloorKeys, h: &Handle) -> Result<Vec<u8>> {
    match op {
        OP_NOOP => Ok(Vec::new()),
        OP_P256 => with_backpressure(h, || ctx.sign(keys.p256, &Mechanism::Ecdsa, digest)),
        OP_RSA => with_backpressure(h, || {
            ctx.sign(keys.rsa, &Mechanism::RsaPkcsHash(HashAlg::Sha256), digest)
        }),
        other => bail!("unknown operation {other}"),
    }
}

/// Serves one signer connection: request in, length and signature out, until end of stream.
fn serve_signer(mut conn: TcpStream, ctx: Arc<Context>, keys: FloorKeys, h: Handle) {
    let _ = conn.set_nodelay(true);
    let mut req = [0u8; REQUEST];
    while conn.read_exact(&mut req).is_ok() {
        let (op, digest) = req.split_at(1);
        let Ok(sig) = sign(
            op.first().copied().unwrap_or(u8::MAX),
            digest,
            &ctx,
            keys,
            &h,
        ) else {
            break;
        };
        let Ok(len) = u16::try_from(sig.len()) else {
            break;
        };
        let mut out = Vec::with_capacity(2 + sig.len());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&sig);
        if conn.write_all(&out).is_err() {
            break;
        }
    }
}

impl Floor {
    /// Starts the signer (signing with `ctxs`, round robin over connections) and the relay.
    pub(crate) fn start(ctxs: Vec<Arc<Context>>, keys: FloorKeys, h: Handle) -> Result<Floor> {
        if ctxs.is_empty() {
            bail!("the floor measurement needs at least one context");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let signer_l = TcpListener::bind("127.0.0.1:0")?;
        let signer = signer_l.local_addr()?;
        let ctxs = Arc::new(ctxs);
        let next = Arc::new(AtomicUsize::new(0));
        accept_loop(signer_l, stop.clone(), FLOOR_SIGNER_THREAD, move |conn| {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if let Some(ctx) = ctxs.get(i % ctxs.len()) {
                serve_signer(conn, ctx.clone(), keys, h.clone());
            }
        })?;
        let relay_l = TcpListener::bind("127.0.0.1:0")?;
        let relay = relay_l.local_addr()?;
        accept_loop(relay_l, stop.clone(), FLOOR_RELAY_THREAD, move |client| {
            let _ = client.set_nodelay(true);
            let Ok(up) = TcpStream::connect(signer) else {
                return;
            };
            let _ = up.set_nodelay(true);
            let (Ok(client2), Ok(up2)) = (client.try_clone(), up.try_clone()) else {
                return;
            };
            let down = std::thread::Builder::new()
                .name(format!("{FLOOR_RELAY_THREAD}-down"))
                .spawn(move || counted(FLOOR_RELAY_THREAD, || copy(up2, client2)));
            copy(client, up);
            if let Ok(d) = down {
                let _ = d.join();
            }
        })?;
        Ok(Floor {
            relay,
            signer,
            stop,
        })
    }

    /// A client thread's worker for operation `op` (`OP_*`), on a connection of its own.
    pub(crate) fn worker<'a>(&self, op: u8) -> Result<Worker<'a>> {
        let mut conn = TcpStream::connect(self.relay).context("connecting to the floor relay")?;
        conn.set_nodelay(true)?;
        conn.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut req = [0u8; REQUEST];
        req[0] = op;
        for (i, b) in req.iter_mut().skip(1).enumerate() {
            *b = u8::try_from(i).unwrap_or(0);
        }
        let mut sig = vec![0u8; 1024];
        Ok(Box::new(move || {
            conn.write_all(&req)?;
            let mut len = [0u8; 2];
            conn.read_exact(&mut len)?;
            let n = usize::from(u16::from_be_bytes(len));
            let Some(out) = sig.get_mut(..n) else {
                bail!("the floor signer answered {n} bytes");
            };
            conn.read_exact(out)?;
            Ok(Duration::ZERO)
        }))
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake both accept loops so that they see the flag.
        let _ = TcpStream::connect(self.relay);
        let _ = TcpStream::connect(self.signer);
    }
}
