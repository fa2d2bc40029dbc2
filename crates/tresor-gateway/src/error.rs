//! The crate's one error type.

/// Errors of the gateway: starting it, talking to the directory, or one connection's I/O.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A socket operation failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A frame or message could not be read or written.
    #[error("protocol: {0}")]
    Proto(#[from] tresor_proto::ProtoError),
    /// A TLS configuration could not be built.
    #[error("TLS: {0}")]
    Tls(#[from] tresor_proto::tls::TlsError),
    /// The directory (service records) could not be read or updated.
    #[error("directory: {0}")]
    Directory(String),
    /// The configuration is not usable.
    #[error("configuration: {0}")]
    Config(String),
    /// An operation did not finish in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
}

impl From<tresor_store::StoreError> for GatewayError {
    fn from(e: tresor_store::StoreError) -> Self {
        GatewayError::Directory(e.to_string())
    }
}

impl From<tresor_core::Error> for GatewayError {
    fn from(e: tresor_core::Error) -> Self {
        GatewayError::Directory(e.to_string())
    }
}

/// Result with [`GatewayError`].
pub type Result<T> = std::result::Result<T, GatewayError>;
