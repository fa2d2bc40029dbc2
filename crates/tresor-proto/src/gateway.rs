//! Phase one of the two-phase connection: the messages a client exchanges with the gateway
//! (inside the client ⇄ gateway TLS), and the ones the gateway exchanges with an HSM node
//! before it starts copying bytes. They use the same frame and header as [`crate::Request`]
//! (`version ‖ kind ‖ request_id ‖ body`), with kinds `0x40..=0x4f`, so one codec reads them.
//!
//! ```text
//! client → gateway   Hello      { service_user, password, partition, client_id }
//! gateway → client   Accepted   { node, session_id }      then raw bytes to/from the node
//!                    Refused    { code, message }          then close
//! gateway → node     Preamble   { service, service_user, partition, client_id, source, session_id }
//!                    then raw bytes to/from the client (the end-to-end TLS)
//! gateway → node     Probe      {}                         health check
//! node → gateway     ProbeReply { status, node }           then close
//! ```

use crate::codec::{wire_variants, Reader, Writer};
use crate::message::Message;
use crate::secret::Secret;

/// Status byte of [`GatewayMsg::ProbeReply`]: the node is unsealed and accepts sessions.
pub const NODE_READY: u8 = 0;
/// The node runs but is sealed (or not initialised): do not send clients to it.
pub const NODE_SEALED: u8 = 1;
/// The node is shutting down or at its connection limit.
pub const NODE_BUSY: u8 = 2;

/// Codes of [`GatewayMsg::Refused`]: Tresor vendor `CK_RV` values (the client reports them as
/// such). A wrong password and an unknown service user give the same code.
pub mod codes {
    /// Service user unknown or password wrong.
    pub const SERVICE_AUTH_FAILED: u32 = 0x8000_0110;
    /// The source address is not in the service's allowlist.
    pub const ADDRESS_NOT_ALLOWED: u32 = 0x8000_0111;
    /// The service user is locked out after repeated failures (until the lock expires or an
    /// operator resets it).
    pub const SERVICE_LOCKED: u32 = 0x8000_0112;
    /// Too many attempts from this address or for this user: try again later.
    pub const RATE_LIMITED: u32 = 0x8000_0113;
    /// The service may not reach that partition.
    pub const PARTITION_NOT_ALLOWED: u32 = 0x8000_0114;
    /// No healthy HSM node is available for the service.
    pub const NO_NODE: u32 = 0x8000_0115;
    /// The gateway is at its connection limit (Securosys "max connections").
    pub const MAX_CONNECTIONS: u32 = 0x8000_0018;
    /// The client sent something other than a valid `Hello`.
    pub const BAD_HELLO: u32 = 0x8000_0116;
}

wire_variants! {
    /// Phase-one messages (client ⇄ gateway, gateway ⇄ node).
    pub enum GatewayMsg {
        /// Client → gateway: the service user's credentials and the partition to reach.
        Hello = 0x40 {
            /// Service user name (`proxy_user`).
            service_user: String,
            /// Service user password (`proxy_password`).
            password: Secret,
            /// The partition (HSM user name) the client will open.
            partition: String,
            /// The client's id (`client_id`), for logs.
            client_id: String,
        },
        /// Gateway → client: authenticated; every following byte goes to / comes from the node.
        Accepted = 0x41 {
            /// The node's name.
            node: String,
            /// The gateway's id for this connection (in both sides' logs).
            session_id: u64,
        },
        /// Gateway → client: refused (see [`codes`]); the gateway closes the connection.
        Refused = 0x42 {
            /// A [`codes`] value.
            code: u32,
            /// What was wrong (never a secret).
            message: String,
        },
        /// Gateway → node: who is coming; then the client's bytes follow.
        Preamble = 0x43 {
            /// Service (tenant) name.
            service: String,
            /// Authenticated service user.
            service_user: String,
            /// The partition the gateway allowed.
            partition: String,
            /// Client id as the client gave it.
            client_id: String,
            /// Client source address `ip:port`.
            source: String,
            /// Gateway connection id.
            session_id: u64,
        },
        /// Gateway → node: health check.
        Probe = 0x44 {},
        /// Node → gateway: health status ([`NODE_READY`], [`NODE_SEALED`], [`NODE_BUSY`]).
        ProbeReply = 0x45 {
            /// Status.
            status: u8,
            /// The node's name.
            node: String,
        },
    }
}

impl Message for GatewayMsg {
    const DIRECTION: &'static str = "gateway message";
    fn kind(&self) -> u8 {
        self.code()
    }
    fn put_body(&self, w: &mut Writer) -> crate::Result<()> {
        self.put_fields(w)
    }
    fn get_body(kind: u8, r: &mut Reader<'_>) -> crate::Result<Option<Self>> {
        GatewayMsg::get_fields(kind, r)
    }
}

/// Phase-one messages are small: frames above this are refused.
pub const MAX_GATEWAY_FRAME: usize = 16 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Envelope;

    #[test]
    fn hello_golden_and_roundtrip() {
        let m = GatewayMsg::Hello {
            service_user: "svc".into(),
            password: Secret::from_slice(b"pw"),
            partition: "P1".into(),
            client_id: "app".into(),
        };
        let bytes = Envelope::new(7, m.clone()).encode().unwrap();
        assert_eq!(
            hex::encode(&bytes),
            concat!(
                "0140",
                "0000000000000007",
                "00000003737663",
                "000000027077",
                "000000025031",
                "00000003617070"
            )
        );
        let back = Envelope::<GatewayMsg>::decode(&bytes).unwrap();
        assert_eq!(back.body, m);
        assert_eq!(back.request_id, 7);
    }

    #[test]
    fn request_kinds_are_not_gateway_messages() {
        let ping = Envelope::new(1, crate::Request::Ping {}).encode().unwrap();
        assert!(Envelope::<GatewayMsg>::decode(&ping).is_err());
    }

    #[test]
    fn password_is_not_printed() {
        let m = GatewayMsg::Hello {
            service_user: "svc".into(),
            password: Secret::from_slice(b"hunter2"),
            partition: "P1".into(),
            client_id: "app".into(),
        };
        assert!(!format!("{m:?}").contains("hunter2"));
    }
}
