//! One established end-to-end channel shared by many threads: requests are pipelined and
//! answered out of order (matched by request id).
//!
//! Writing: a caller appends its encoded frame to a queue and tries the send lock. Whoever
//! holds it encrypts everything queued (both TLS layers), sends it in one write, and looks at
//! the queue again after releasing the lock; a caller that finds the lock taken leaves its
//! frame to the holder. So callers never wait for each other's system calls, and under load
//! several requests share one pair of TLS records and one system call.
//!
//! Reading: there is no reader thread. A waiting caller becomes the reader if nobody is; it
//! reads what the socket has, decrypts, hands every complete answer to its caller (waking them
//! after it let go of the state lock), and gives up the role when its own answer is in
//! (leader/followers). A lone caller therefore reads its own answer directly, with no thread
//! hand-off on the latency path; while answers come fast and few requests are out, it polls
//! the socket for a short while before sleeping in the kernel (see [`Link::poll`]).
//!
//! A link that fails (I/O error, timeout, end of stream, TLS or framing error) is dead for
//! good: every waiting caller gets the error, and the pool opens another link.

use parking_lot::{Mutex, MutexGuard};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::Thread;
use std::time::{Duration, Instant};

use rustls::ClientConnection;
use tresor_proto::{Envelope, Response};
use zeroize::{Zeroize, Zeroizing};

use crate::Error;

/// The reader polls (see [`Link::poll`]) only while at most this many requests are out.
const SPIN_MAX_IN_FLIGHT: usize = 2;

/// The reader polls only while the smoothed wait for answers is at most this many times the
/// spin time. A wait measured while the reader slept includes the wake-ups that polling avoids
/// (on a VM with idle vCPUs halting, two hand-offs of 20–30 µs each), so comparing it with the
/// spin time alone would stop polling for good once a few slow answers came in: the link would
/// stay in a slow mode (about half the throughput of a single caller for ECDSA P-256) that its
/// own sleeping sustains. Answers that truly take longer (RSA-2048 signatures) stay above it.
const SPIN_GATE_FACTOR: u64 = 3;

/// Read size per system call.
const READ_CHUNK: usize = 32 * 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
}

/// Why a link died; turned into an [`Error`] for each caller it affects.
#[derive(Clone, Debug)]
enum Death {
    Network(String),
    Protocol(String),
}

/// A caller's entry while its request is out.
struct Slot {
    /// The expected response kind (request kind | 0x80).
    code: u8,
    /// The caller, woken when its answer is in or when it is to read.
    thread: Thread,
    answer: Option<Response>,
}

struct State {
    /// A caller is reading the socket.
    reading: bool,
    pending: HashMap<u64, Slot>,
    dead: Option<Death>,
    /// When the last request was registered or answer delivered.
    last_activity: Instant,
}

/// Both TLS layers and the plaintext not yet framed.
struct Tls {
    /// Client ⇄ gateway.
    outer: ClientConnection,
    /// Client ⇄ node, carried in `outer`'s plaintext.
    inner: ClientConnection,
    /// The node's plaintext: frames, possibly a partial last one.
    app: Zeroizing<Vec<u8>>,
    /// The gateway layer's plaintext (the node's records), reused between reads.
    mid: Zeroizing<Vec<u8>>,
}

/// A failed call on a link: whether its request may have been sent.
pub(crate) struct LinkFailure {
    pub(crate) written: bool,
    pub(crate) error: Error,
}

/// A multiplexed end-to-end channel.
pub(crate) struct Link {
    target: String,
    node: String,
    sock: TcpStream,
    max_frame: usize,
    io_timeout: Duration,
    /// Longest poll of the socket before a blocking read (see [`ConnectOptions::spin`]).
    ///
    /// [`ConnectOptions::spin`]: crate::connect::ConnectOptions::spin
    spin: Duration,
    /// Smoothed time (µs) the reader waited for data recently: polling is only worth it
    /// while answers come within `spin`.
    wait_us: AtomicU64,
    in_flight: AtomicUsize,
    /// Frames waiting to be encrypted and sent.
    queue: Mutex<Zeroizing<Vec<u8>>>,
    /// Held while a batch is encrypted and written (records leave in encryption order).
    send: Mutex<()>,
    tls: Mutex<Tls>,
    /// The reader's ciphertext buffer (only the reading caller touches it).
    rbuf: Mutex<Vec<u8>>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("target", &self.target)
            .field("node", &self.node)
            .field("in_flight", &self.in_flight.load(Ordering::Relaxed))
            .finish()
    }
}

impl Link {
    /// Takes over an established channel (handshakes done, nothing buffered).
    pub(crate) fn new(
        target: String,
        node: String,
        sock: TcpStream,
        (mut outer, mut inner): (ClientConnection, ClientConnection),
        max_frame: usize,
        io_timeout: Duration,
        spin: Duration,
    ) -> Self {
        // Batches may exceed rustls's default plaintext buffer; the queue bounds them anyway.
        outer.set_buffer_limit(None);
        inner.set_buffer_limit(None);
        Self {
            target,
            node,
            sock,
            max_frame,
            io_timeout,
            spin,
            wait_us: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            queue: Mutex::new(Zeroizing::new(Vec::new())),
            send: Mutex::new(()),
            tls: Mutex::new(Tls {
                outer,
                inner,
                app: Zeroizing::new(Vec::new()),
                mid: Zeroizing::new(Vec::new()),
            }),
            rbuf: Mutex::new(vec![0u8; READ_CHUNK]),
            state: Mutex::new(State {
                reading: false,
                pending: HashMap::new(),
                dead: None,
                last_activity: Instant::now(),
            }),
        }
    }

    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn is_dead(&self) -> bool {
        lock(&self.state).dead.is_some()
    }

    /// For a link nobody is using that has been quiet for `quiet`: whether the peer has closed
    /// it meanwhile (checked without blocking). Links in use, or used recently, count as alive.
    pub(crate) fn check_idle(&self, quiet: Duration) -> bool {
        let mut st = lock(&self.state);
        if st.dead.is_some() {
            return false;
        }
        if !st.pending.is_empty() || st.reading || st.last_activity.elapsed() < quiet {
            return true;
        }
        // Holding the state lock with nothing pending: nobody reads or writes this socket
        // now, so switching it to non-blocking for one peek disturbs no one.
        let alive = (|| {
            self.sock.set_nonblocking(true).ok()?;
            let mut b = [0u8; 1];
            let r = self.sock.peek(&mut b);
            self.sock.set_nonblocking(false).ok()?;
            Some(matches!(r, Err(e) if e.kind() == ErrorKind::WouldBlock))
        })()
        .unwrap_or(false);
        if !alive {
            st.dead = Some(Death::Network("closed by the peer while idle".into()));
        }
        alive
    }

    fn error(&self, d: &Death) -> Error {
        match d {
            Death::Network(m) => Error::Network {
                target: self.target.clone(),
                message: m.clone(),
            },
            Death::Protocol(m) => Error::Protocol {
                target: self.target.clone(),
                message: m.clone(),
            },
        }
    }

    /// Sends the encoded request `frame_payload` (id `id`, kind `kind`) and waits for its answer.
    pub(crate) fn call(
        &self,
        id: u64,
        kind: u8,
        frame_payload: &[u8],
    ) -> Result<Response, LinkFailure> {
        let len = u32::try_from(frame_payload.len())
            .ok()
            .filter(|l| (*l as usize) <= self.max_frame)
            .ok_or_else(|| LinkFailure {
                written: false,
                error: Error::Protocol {
                    target: self.target.clone(),
                    message: format!(
                        "request of {} bytes exceeds the frame limit of {}",
                        frame_payload.len(),
                        self.max_frame
                    ),
                },
            })?;
        {
            let mut st = lock(&self.state);
            if let Some(d) = &st.dead {
                return Err(LinkFailure {
                    written: false,
                    error: self.error(d),
                });
            }
            st.pending.insert(
                id,
                Slot {
                    code: kind | 0x80,
                    thread: std::thread::current(),
                    answer: None,
                },
            );
            st.last_activity = Instant::now();
        }
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let r = self
            .send_frame(len, frame_payload)
            .and_then(|()| self.wait(id));
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        if r.is_err() {
            lock(&self.state).pending.remove(&id);
        }
        r
    }

    fn kill(&self, d: Death) {
        let mut st = lock(&self.state);
        if st.dead.is_none() {
            st.dead = Some(d);
        }
        let wake: Vec<Thread> = st.pending.values().map(|s| s.thread.clone()).collect();
        drop(st);
        wake_all(wake);
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }

    /// Queues the frame and sends everything queued, unless another caller is sending: that
    /// caller looks at the queue again after its write and takes this frame along (so callers
    /// never wait for each other's system calls, and frames queued meanwhile share one write).
    fn send_frame(&self, len: u32, payload: &[u8]) -> Result<(), LinkFailure> {
        {
            let mut q = lock(&self.queue);
            q.extend_from_slice(&len.to_be_bytes());
            q.extend_from_slice(payload);
        }
        self.send_frame_queued()
    }

    /// Sends what is queued (see [`Link::send_frame`]).
    fn send_frame_queued(&self) -> Result<(), LinkFailure> {
        loop {
            let Some(s) = self.send.try_lock() else {
                // The sender checks the queue after releasing the lock (below), so it sees
                // this frame, which was queued before the lock was tried.
                return Ok(());
            };
            let batch = {
                let mut q = lock(&self.queue);
                if q.is_empty() {
                    return Ok(());
                }
                std::mem::replace(&mut *q, Zeroizing::new(Vec::new()))
            };
            let wire = self.encrypt(&batch).map_err(|d| {
                self.kill(d.clone());
                LinkFailure {
                    written: false,
                    error: self.error(&d),
                }
            })?;
            if let Err(e) = write_fully(&self.sock, &wire) {
                let d = Death::Network(io_message("sending", &e, self.io_timeout));
                self.kill(d.clone());
                return Err(LinkFailure {
                    written: true,
                    error: self.error(&d),
                });
            }
            drop(s);
            if lock(&self.queue).is_empty() {
                return Ok(());
            }
        }
    }

    /// Both layers' records for `plain` (may be empty: pending TLS messages only).
    fn encrypt(&self, plain: &[u8]) -> Result<Vec<u8>, Death> {
        let mut t = lock(&self.tls);
        let t = &mut *t;
        let tls = |e: std::io::Error| Death::Protocol(format!("TLS: {e}"));
        if !plain.is_empty() {
            t.inner.writer().write_all(plain).map_err(tls)?;
        }
        let mut mid = Vec::with_capacity(plain.len() + 64);
        while t.inner.wants_write() {
            t.inner.write_tls(&mut mid).map_err(tls)?;
        }
        if !mid.is_empty() {
            t.outer.writer().write_all(&mid).map_err(tls)?;
        }
        let mut wire = Vec::with_capacity(mid.len() + 64);
        while t.outer.wants_write() {
            t.outer.write_tls(&mut wire).map_err(tls)?;
        }
        Ok(wire)
    }

    fn wait(&self, id: u64) -> Result<Response, LinkFailure> {
        let written = |error| LinkFailure {
            written: true,
            error,
        };
        let mut st = lock(&self.state);
        loop {
            match st.pending.get_mut(&id) {
                Some(Slot {
                    answer: a @ Some(_),
                    ..
                }) => {
                    let answer = a.take();
                    st.pending.remove(&id);
                    if let Some(r) = answer {
                        return Ok(r);
                    }
                }
                Some(_) => {}
                None => {
                    return Err(written(Error::Protocol {
                        target: self.target.clone(),
                        message: format!("request {id} is not pending"),
                    }))
                }
            }
            if let Some(d) = &st.dead {
                return Err(written(self.error(d)));
            }
            if st.reading {
                // The reader wakes this thread when its answer is in, or hands it the role.
                drop(st);
                std::thread::park();
                st = lock(&self.state);
                continue;
            }
            st.reading = true;
            drop(st);
            let got = self.read_some();
            st = lock(&self.state);
            st.reading = false;
            let mut wake = Vec::new();
            match got {
                Ok((answers, end)) => {
                    for env in answers {
                        self.deliver(&mut st, env, &mut wake);
                    }
                    st.last_activity = Instant::now();
                    if let (Some(d), None) = (end, &st.dead) {
                        st.dead = Some(d);
                    }
                }
                Err(d) => {
                    if st.dead.is_none() {
                        st.dead = Some(d);
                    }
                    let _ = self.sock.shutdown(std::net::Shutdown::Both);
                }
            }
            if st.dead.is_some() {
                wake = st.pending.values().map(|s| s.thread.clone()).collect();
            } else if st.pending.get(&id).is_some_and(|s| s.answer.is_some()) {
                // Done: pass the reader role to a caller still waiting.
                if let Some(next) = st
                    .pending
                    .iter()
                    .find(|(k, s)| **k != id && s.answer.is_none())
                {
                    wake.push(next.1.thread.clone());
                }
            }
            if !wake.is_empty() {
                // Woken outside the lock, so that they do not wake into a held lock.
                drop(st);
                wake_all(wake);
                st = lock(&self.state);
            }
        }
    }

    fn deliver(&self, st: &mut State, env: Envelope<Response>, wake: &mut Vec<Thread>) {
        let code = env.body.code();
        match st.pending.get_mut(&env.request_id) {
            Some(slot) if slot.answer.is_none() => {
                if code == slot.code || code == 0xff {
                    slot.answer = Some(env.body);
                    if slot.thread.id() != std::thread::current().id() {
                        wake.push(slot.thread.clone());
                    }
                } else {
                    st.dead = Some(Death::Protocol(format!(
                        "answer of kind {code:#04x} to request {} does not match",
                        env.request_id
                    )));
                }
            }
            _ => {
                // Request id 0: the node could not read a request (it says why, then closes).
                let why = match env.body {
                    Response::Error { message, .. } => message,
                    other => format!("unexpected answer {}", other.name()),
                };
                st.dead = Some(Death::Protocol(format!(
                    "answer to unknown request {}: {why}",
                    env.request_id
                )));
            }
        }
    }

    /// One read from the socket, decrypted and framed, and whether the peer ended the channel
    /// after them; also flushes any TLS message the read made due (key update, alert).
    fn read_some(&self) -> Result<(Vec<Envelope<Response>>, Option<Death>), Death> {
        let mut buf = lock(&self.rbuf);
        let waited = Instant::now();
        let polled = self.poll(buf.as_mut_slice())?;
        let n = loop {
            if let Some(n) = polled {
                break n;
            }
            match (&self.sock).read(buf.as_mut_slice()) {
                Ok(0) => {
                    return Err(Death::Network(
                        "the connection was closed before the answer came".into(),
                    ))
                }
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Death::Network(io_message(
                        "reading the answer",
                        &e,
                        self.io_timeout,
                    )))
                }
            }
        };
        let us = u64::try_from(waited.elapsed().as_micros()).unwrap_or(u64::MAX);
        let avg = self.wait_us.load(Ordering::Relaxed);
        self.wait_us.store(
            (avg.saturating_mul(7).saturating_add(us)) / 8,
            Ordering::Relaxed,
        );
        let (answers, end, flush) = {
            let mut t = lock(&self.tls);
            let (answers, end) = feed(&mut t, buf.get(..n).unwrap_or_default(), self.max_frame)?;
            let flush = end.is_none() && (t.outer.wants_write() || t.inner.wants_write());
            (answers, end, flush)
        };
        if flush {
            // TLS messages the read made due (key update): sent with whatever is queued; a
            // frame queued meanwhile by a caller that found the lock held is sent after.
            let s = lock(&self.send);
            let batch = std::mem::replace(&mut *lock(&self.queue), Zeroizing::new(Vec::new()));
            let wire = self.encrypt(&batch)?;
            write_fully(&self.sock, &wire)
                .map_err(|e| Death::Network(io_message("sending", &e, self.io_timeout)))?;
            drop(s);
            if !lock(&self.queue).is_empty() {
                self.send_frame_queued()
                    .map_err(|f| Death::Network(format!("{}", f.error)))?;
            }
        }
        Ok((answers, end))
    }
}

impl Link {
    /// Polls the socket for up to `spin` without sleeping, if answers recently came that
    /// fast; `Some(n)` when bytes arrived. The socket is non-blocking meanwhile; a sender
    /// that meets "would block" then switches it back (see [`write_fully`]), and the reader
    /// switches it back before it sleeps in a blocking read.
    fn poll(&self, buf: &mut [u8]) -> Result<Option<usize>, Death> {
        let spin_us = u64::try_from(self.spin.as_micros()).unwrap_or(u64::MAX);
        // With several requests out, the CPU is better left to whoever computes them (on a
        // shared machine) and the wake-up is shared by several answers anyway.
        if spin_us == 0
            || self.in_flight.load(Ordering::Relaxed) > SPIN_MAX_IN_FLIGHT
            || self.wait_us.load(Ordering::Relaxed) > spin_us.saturating_mul(SPIN_GATE_FACTOR)
        {
            return Ok(None);
        }
        if self.sock.set_nonblocking(true).is_err() {
            return Ok(None);
        }
        let t0 = Instant::now();
        let got = loop {
            match (&self.sock).read(buf) {
                Ok(0) => {
                    break Err(Death::Network(
                        "the connection was closed before the answer came".into(),
                    ))
                }
                Ok(n) => break Ok(Some(n)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if t0.elapsed() >= self.spin {
                        break Ok(None);
                    }
                    std::thread::yield_now();
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    break Err(Death::Network(io_message(
                        "reading the answer",
                        &e,
                        self.io_timeout,
                    )))
                }
            }
        };
        let back = self.sock.set_nonblocking(false);
        match (got, back) {
            (Ok(r), Ok(())) => Ok(r),
            (Ok(Some(n)), Err(_)) => Ok(Some(n)),
            (Ok(None), Err(e)) => Err(Death::Network(format!("socket: {e}"))),
            (Err(d), _) => Err(d),
        }
    }
}

/// `write_all` that tolerates the reader's polling: "would block" on a socket the reader made
/// non-blocking switches it back to blocking and goes on.
fn write_fully(sock: &TcpStream, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        match (&*sock).write(data) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => data = data.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == ErrorKind::WouldBlock => sock.set_nonblocking(false)?,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn wake_all(threads: Vec<Thread>) {
    for t in threads {
        t.unpark();
    }
}

fn io_message(what: &str, e: &std::io::Error, timeout: Duration) -> String {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => {
            format!("{what}: timed out after {} ms", timeout.as_millis())
        }
        _ => format!("{what}: {e}"),
    }
}

/// Feeds ciphertext through both layers and cuts complete frames off the plaintext; also says
/// whether a layer was closed (the frames before the close are still returned).
type Fed = (Vec<Envelope<Response>>, Option<Death>);

fn feed(t: &mut Tls, mut data: &[u8], max_frame: usize) -> Result<Fed, Death> {
    let tls = |e: &dyn std::fmt::Display| Death::Protocol(format!("TLS: {e}"));
    let mut end = None;
    let Tls {
        outer,
        inner,
        app,
        mid,
    } = t;
    mid.clear();
    while !data.is_empty() && end.is_none() {
        outer.read_tls(&mut data).map_err(|e| tls(&e))?;
        outer.process_new_packets().map_err(|e| tls(&e))?;
        end = drain(outer, mid)?;
    }
    let mut m: &[u8] = mid;
    while !m.is_empty() {
        inner.read_tls(&mut m).map_err(|e| tls(&e))?;
        inner.process_new_packets().map_err(|e| tls(&e))?;
        if let Some(d) = drain(inner, app)? {
            end = Some(d);
            break;
        }
    }
    mid.zeroize();
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(head) = app.get(at..at + 4) {
        let mut len = [0u8; 4];
        len.copy_from_slice(head);
        let len = u32::from_be_bytes(len) as usize;
        if len > max_frame {
            return Err(Death::Protocol(format!(
                "answer frame of {len} bytes exceeds the limit of {max_frame}"
            )));
        }
        let Some(body) = app.get(at + 4..at + 4 + len) else {
            break;
        };
        let env = Envelope::<Response>::decode(body)
            .map_err(|e| Death::Protocol(format!("malformed answer: {e}")))?;
        out.push(env);
        at += 4 + len;
    }
    if at > 0 {
        app.drain(..at);
    }
    Ok((out, end))
}

/// Appends all readable plaintext of `c` to `into`; `Some` if the peer closed the layer.
fn drain(c: &mut ClientConnection, into: &mut Vec<u8>) -> Result<Option<Death>, Death> {
    // `read_to_end` keeps what it read when it stops at "would block".
    match c.reader().read_to_end(into) {
        Ok(_) => Ok(Some(Death::Network("the peer closed the channel".into()))),
        Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(Death::Network(format!("TLS: {e}"))),
    }
}
