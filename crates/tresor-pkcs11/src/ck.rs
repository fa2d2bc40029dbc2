//! The PKCS#11 numbers the safe layer matches on, as `u64` (the wire's width), and Tresor's
//! vendor attributes: the shared `tresor-ck` crate, the same numbers as the engine's. The ABI
//! converts `CK_ULONG` to and from `u64` at the boundary.

pub use tresor_ck::*;
