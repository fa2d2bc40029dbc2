//! Copying bytes both ways with an idle timeout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelayEnd {
    /// Both sides closed (or one closed and the other followed).
    Closed,
    /// A read or write failed.
    Error,
    /// No byte either way for the idle timeout.
    Idle,
    /// The directory no longer admits the connection (see `gateway::withdrawn`).
    Withdrawn,
}

const BUF: usize = 16 * 1024;

async fn copy_one<R, W>(
    mut r: R,
    mut w: W,
    start: Instant,
    last: &AtomicU64,
    bytes: &AtomicU64,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF];
    loop {
        let n = r.read(&mut buf).await?;
        touch(start, last);
        let chunk = match buf.get(..n) {
            Some(c) if n > 0 => c,
            _ => {
                let _ = w.shutdown().await;
                return Ok(());
            }
        };
        w.write_all(chunk).await?;
        w.flush().await?;
        bytes.fetch_add(n as u64, Ordering::Relaxed);
        touch(start, last);
    }
}

fn touch(start: Instant, last: &AtomicU64) {
    let ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    last.store(ms, Ordering::Relaxed);
}

/// Copy `a → b` and `b → a` until both directions ended (an end of stream on one side is
/// passed on as a shutdown of the other), an error, or `idle` without a byte either way.
/// `up` counts bytes `a → b`, `down` bytes `b → a`.
pub(crate) async fn relay<A, B>(
    a: A,
    b: B,
    idle: Duration,
    up: &AtomicU64,
    down: &AtomicU64,
) -> RelayEnd
where
    A: AsyncRead + AsyncWrite,
    B: AsyncRead + AsyncWrite,
{
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let copies = async {
        tokio::try_join!(
            copy_one(ar, bw, start, &last, up),
            copy_one(br, aw, start, &last, down)
        )
    };
    let watchdog = async {
        loop {
            let deadline = start + Duration::from_millis(last.load(Ordering::Relaxed)) + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    };
    tokio::select! {
        r = copies => match r {
            Ok(_) => RelayEnd::Closed,
            Err(_) => RelayEnd::Error,
        },
        () = watchdog => RelayEnd::Idle,
    }
}
