//! Reading and writing phase-one frames on async streams.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tresor_proto::gateway::{GatewayMsg, MAX_GATEWAY_FRAME};
use tresor_proto::{Envelope, ProtoError};

use crate::error::{GatewayError, Result};

/// Read exactly one frame (no read-ahead: bytes after it stay in the stream) and decode it.
pub(crate) async fn read_msg<R: AsyncRead + Unpin>(r: &mut R) -> Result<Envelope<GatewayMsg>> {
    let mut prefix = [0u8; 4];
    r.read_exact(&mut prefix).await?;
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_GATEWAY_FRAME {
        return Err(ProtoError::FrameTooLarge {
            len: len as u64,
            max: MAX_GATEWAY_FRAME,
        }
        .into());
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    let msg = Envelope::<GatewayMsg>::decode(&body);
    zeroize::Zeroize::zeroize(&mut body);
    Ok(msg?)
}

/// Encode and write one frame, then flush.
pub(crate) async fn write_msg<W: AsyncWrite + Unpin>(
    w: &mut W,
    request_id: u64,
    msg: GatewayMsg,
) -> Result<()> {
    let payload = Envelope::new(request_id, msg).encode()?;
    let len = u32::try_from(payload.len())
        .map_err(|_| GatewayError::Config("message too large".into()))?;
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&payload);
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}
