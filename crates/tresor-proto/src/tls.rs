//! The two TLS layers, built on rustls with the aws-lc-rs provider.
//!
//! * **Gateway hop** (client ⇄ gateway): TLS 1.3 only; the gateway's certificate chains to the
//!   cluster root and names the host the client dialled (DNS or IP SAN).
//! * **End-to-end channel** (client ⇄ HSM node, through the gateway's byte copy): TLS 1.3 with
//!   exactly one cipher suite, `TLS13_AES_256_GCM_SHA384`. The node presents
//!   `leaf (SAN DNS tresor-node) → node certificate → cluster root`; the client verifies it
//!   against the root it was given, with server name [`NODE_SERVER_NAME`]. The client presents
//!   a self-signed certificate of its permanent key (or none, to register that key). The node's
//!   verifier checks only that the handshake signature is valid for the presented key; which
//!   keys may open which partition is the engine's decision (registered SPKI fingerprints).
//!
//! The record layer (sequence-numbered AEAD records) gives confidentiality, integrity and
//! replay protection; nothing here invents a handshake.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{aws_lc_rs as provider, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig};
use sha2::Digest;
use zeroize::Zeroizing;

/// The server name every node's end-to-end certificate carries and every client checks.
pub const NODE_SERVER_NAME: &str = "tresor-node";

/// ALPN protocol id of the end-to-end channel.
pub const E2E_ALPN: &[u8] = b"tresor-e2e/1";
/// ALPN protocol id of the gateway hop.
pub const GATEWAY_ALPN: &[u8] = b"tresor-gw/1";

/// Errors building TLS configurations or handling certificates.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rustls refused a configuration, certificate or key.
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    /// A certificate or key could not be read.
    #[error("{0}")]
    Invalid(String),
}

/// A certificate chain (leaf first) and its private key (PKCS#8 DER, zeroized on drop).
pub struct Identity {
    /// Leaf first, then intermediates (the root may be included; it is not needed).
    pub chain: Vec<Vec<u8>>,
    /// PKCS#8 DER of the leaf's private key.
    pub key_pkcs8: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("chain_len", &self.chain.len())
            .field("key", &"[REDACTED]")
            .finish()
    }
}

impl Identity {
    /// Read a PEM certificate chain and a PEM PKCS#8 key.
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Identity, TlsError> {
        use rustls::pki_types::pem::PemObject;
        let chain = CertificateDer::pem_slice_iter(chain_pem)
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Invalid(format!("certificate PEM: {e}")))?;
        if chain.is_empty() {
            return Err(TlsError::Invalid("no certificate in the PEM".into()));
        }
        let key = PrivatePkcs8KeyDer::from_pem_slice(key_pem)
            .map_err(|e| TlsError::Invalid(format!("private key PEM (PKCS#8 expected): {e}")))?;
        Ok(Identity {
            chain,
            key_pkcs8: Zeroizing::new(key.secret_pkcs8_der().to_vec()),
        })
    }

    fn parts(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let chain = self
            .chain
            .iter()
            .map(|c| CertificateDer::from(c.clone()))
            .collect();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.to_vec()));
        (chain, key)
    }
}

/// The provider for the gateway hop: aws-lc-rs defaults (TLS 1.3 suites only are used).
fn gateway_provider() -> Arc<CryptoProvider> {
    Arc::new(provider::default_provider())
}

/// The provider for the end-to-end channel: `TLS13_AES_256_GCM_SHA384` only.
pub fn e2e_provider() -> Arc<CryptoProvider> {
    let mut p = provider::default_provider();
    p.cipher_suites = vec![provider::cipher_suite::TLS13_AES_256_GCM_SHA384];
    Arc::new(p)
}

fn roots(root_der: &[u8]) -> Result<Arc<RootCertStore>, TlsError> {
    let mut store = RootCertStore::empty();
    store
        .add(CertificateDer::from(root_der.to_vec()))
        .map_err(|e| TlsError::Invalid(format!("root certificate: {e}")))?;
    Ok(Arc::new(store))
}

/// Client side of the gateway hop: TLS 1.3, the gateway's chain verified against `root_der`.
pub fn gateway_client_config(root_der: &[u8]) -> Result<Arc<ClientConfig>, TlsError> {
    let mut c = ClientConfig::builder_with_provider(gateway_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(root_der)?)
        .with_no_client_auth();
    c.alpn_protocols = vec![GATEWAY_ALPN.to_vec()];
    c.resumption = rustls::client::Resumption::in_memory_sessions(64);
    Ok(Arc::new(c))
}

/// Server side of the gateway hop.
pub fn gateway_server_config(identity: &Identity) -> Result<Arc<ServerConfig>, TlsError> {
    let (chain, key) = identity.parts();
    let mut c = ServerConfig::builder_with_provider(gateway_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    c.alpn_protocols = vec![GATEWAY_ALPN.to_vec()];
    Ok(Arc::new(c))
}

/// Client side of the end-to-end channel. `client` is the permanent-key certificate, or
/// `None` to register a key (`ppin -a`).
pub fn e2e_client_config(
    root_der: &[u8],
    client: Option<&Identity>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let p = e2e_provider();
    let verifier = WebPkiServerVerifier::builder_with_provider(roots(root_der)?, p.clone())
        .build()
        .map_err(|e| TlsError::Invalid(format!("server verifier: {e}")))?;
    let b = ClientConfig::builder_with_provider(p)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_webpki_verifier(verifier);
    let mut c = match client {
        Some(id) => {
            let (chain, key) = id.parts();
            b.with_client_auth_cert(chain, key)?
        }
        None => b.with_no_client_auth(),
    };
    c.alpn_protocols = vec![E2E_ALPN.to_vec()];
    // Every connection proves the permanent key afresh: no resumption on this layer.
    c.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(c))
}

/// Server side of the end-to-end channel (the HSM node).
pub fn e2e_server_config(identity: &Identity) -> Result<Arc<ServerConfig>, TlsError> {
    let p = e2e_provider();
    let verifier = Arc::new(AnyClientKey {
        algs: p.signature_verification_algorithms,
    });
    let (chain, key) = identity.parts();
    let mut c = ServerConfig::builder_with_provider(p)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    c.alpn_protocols = vec![E2E_ALPN.to_vec()];
    c.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    c.send_tls13_tickets = 0;
    Ok(Arc::new(c))
}

/// Accepts any well-formed client certificate whose key signs the handshake: identity is a
/// registered key, checked by the engine after the handshake.
#[derive(Debug)]
struct AnyClientKey {
    algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientKey {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        spki_of_cert(end_entity.as_ref()).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// A fresh P-256 key pair for a client's permanent secret: PKCS#8 DER.
pub fn generate_client_key() -> Result<Zeroizing<Vec<u8>>, TlsError> {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| TlsError::Invalid(format!("key generation: {e}")))?;
    Ok(Zeroizing::new(kp.serialize_der()))
}

/// The client identity for a permanent key: a self-signed certificate (CN = `label`) over the
/// key, and the key. The certificate carries no authority: only its key matters.
pub fn client_identity(key_pkcs8: &[u8], label: &str) -> Result<Identity, TlsError> {
    let der = PrivatePkcs8KeyDer::from(key_pkcs8.to_vec());
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| TlsError::Invalid(format!("permanent secret is not a P-256 key: {e}")))?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| TlsError::Invalid(format!("certificate parameters: {e}")))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let cn: String = label.chars().filter(|c| !c.is_control()).take(64).collect();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        if cn.is_empty() {
            "tresor-client".into()
        } else {
            cn
        },
    );
    let cert = params
        .self_signed(&kp)
        .map_err(|e| TlsError::Invalid(format!("self-signed certificate: {e}")))?;
    Ok(Identity {
        chain: vec![cert.der().to_vec()],
        key_pkcs8: Zeroizing::new(key_pkcs8.to_vec()),
    })
}

/// SubjectPublicKeyInfo DER of a PKCS#8 P-256 key.
pub fn spki_of_key(key_pkcs8: &[u8]) -> Result<Vec<u8>, TlsError> {
    let der = PrivatePkcs8KeyDer::from(key_pkcs8.to_vec());
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| TlsError::Invalid(format!("permanent secret is not a P-256 key: {e}")))?;
    Ok(rcgen::PublicKeyData::subject_public_key_info(&kp))
}

/// SubjectPublicKeyInfo DER of a certificate.
pub fn spki_of_cert(cert_der: &[u8]) -> Result<Vec<u8>, TlsError> {
    let (rest, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| TlsError::Invalid(format!("certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(TlsError::Invalid("trailing bytes after certificate".into()));
    }
    Ok(cert.tbs_certificate.subject_pki.raw.to_vec())
}

/// Lowercase hex SHA-256 of a SubjectPublicKeyInfo: how credentials are named.
pub fn fingerprint(spki_der: &[u8]) -> String {
    hex_lower(&sha2::Sha256::digest(spki_der))
}

fn hex_lower(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(char::from(H[usize::from(x >> 4)]));
        s.push(char::from(H[usize::from(x & 15)]));
    }
    s
}

/// The `ServerName` a client uses for the end-to-end channel.
pub fn node_server_name() -> Result<ServerName<'static>, TlsError> {
    gateway_server_name(NODE_SERVER_NAME)
}

/// The `ServerName` for dialling a gateway at `host` (an IP address or a DNS name).
pub fn gateway_server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(host.to_owned())
        .map_err(|e| TlsError::Invalid(format!("gateway host {host:?} is not a valid name: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_identity_has_the_key() {
        let key = generate_client_key().unwrap();
        let id = client_identity(&key, "app1").unwrap();
        let spki = spki_of_key(&key).unwrap();
        assert_eq!(spki_of_cert(&id.chain[0]).unwrap(), spki);
        assert_eq!(fingerprint(&spki).len(), 64);
        assert!(!format!("{id:?}").contains("key_pkcs8: ["));
    }

    #[test]
    fn e2e_has_one_suite() {
        let p = e2e_provider();
        assert_eq!(p.cipher_suites.len(), 1);
        assert_eq!(
            p.cipher_suites[0].suite(),
            rustls::CipherSuite::TLS13_AES_256_GCM_SHA384
        );
    }
}
