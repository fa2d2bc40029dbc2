//! Attestation: the cluster certificate chain and the signed key-attribute document.
//!
//! Chain: **cluster root** (self-signed, made at `tresor init`) → **node key** (signs audit
//! checkpoints and issues attestation certificates) → **partition attestation key** (one per
//! partition, made at partition creation). All three are ECDSA P-256; signatures are
//! ECDSA-SHA256 in DER.
//!
//! The document is the Securosys attestation XML (compat §3): root element `private_key`,
//! `secret_key` or `public_key` with `creation="generated|imported"`, the key's facts,
//! snake_case `<attributes>` and the `<policy>`. The signature covers the exact UTF-8 bytes of
//! the document as returned.

use base64::Engine as _;
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, PKeyRef, Private};
use openssl::sign::{Signer, Verifier};
use openssl::stack::Stack;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509Name, X509NameBuilder, X509StoreContext, X509};
use quick_xml::escape::escape;

use crate::crypto::{Curve, EdCurve, KeyAlg, MlDsaParam, MlKemParam, SlhDsaParam};
use crate::error::{Error, Result, Rv};
use crate::object::{ObjectClass, ObjectRecord, Origin};
use crate::policy::{Policy, Rule};

/// The attestation key's name as REST reports it (`attestationKeyName`).
pub const ATTESTATION_KEY_NAME: &str = "attestation-key";

/// A new ECDSA P-256 key.
pub fn new_p256_key() -> Result<PKey<Private>> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

fn name(cn: &str) -> Result<X509Name> {
    let mut b = X509NameBuilder::new()?;
    b.append_entry_by_nid(Nid::ORGANIZATIONNAME, "Tresor")?;
    b.append_entry_by_nid(Nid::COMMONNAME, cn)?;
    Ok(b.build())
}

fn serial() -> Result<Asn1Integer> {
    let mut bn = BigNum::new()?;
    bn.rand(127, MsbOption::MAYBE_ZERO, false)?;
    Ok(bn.to_asn1_integer()?)
}

/// Issue a certificate for `subject_key`, signed by `issuer` (self-signed when `issuer` is None).
pub fn issue_cert(
    cn: &str,
    subject_key: &PKeyRef<impl openssl::pkey::HasPublic>,
    issuer: Option<(&X509, &PKeyRef<Private>)>,
    self_key: Option<&PKeyRef<Private>>,
    ca: Option<u32>,
    days: u32,
) -> Result<X509> {
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let sn = serial()?;
    b.set_serial_number(&sn)?;
    let subject = name(cn)?;
    b.set_subject_name(&subject)?;
    b.set_pubkey(subject_key)?;
    let nb = Asn1Time::days_from_now(0)?;
    let na = Asn1Time::days_from_now(days)?;
    b.set_not_before(&nb)?;
    b.set_not_after(&na)?;
    match ca {
        Some(path) => {
            b.append_extension(
                BasicConstraints::new()
                    .critical()
                    .ca()
                    .pathlen(path)
                    .build()?,
            )?;
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .digital_signature()
                    .build()?,
            )?;
        }
        None => {
            b.append_extension(BasicConstraints::new().critical().build()?)?;
            b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
        }
    }
    let ctx = b.x509v3_context(issuer.map(|(c, _)| c.as_ref()), None);
    let ski = SubjectKeyIdentifier::new().build(&ctx)?;
    b.append_extension(ski)?;
    match (issuer, self_key) {
        (Some((ic, ik)), _) => {
            b.set_issuer_name(ic.subject_name())?;
            b.sign(ik, MessageDigest::sha256())?;
        }
        (None, Some(k)) => {
            b.set_issuer_name(&subject)?;
            b.sign(k, MessageDigest::sha256())?;
        }
        (None, None) => return Err(Error::new(Rv::GeneralError, "a certificate needs a signer")),
    }
    Ok(b.build())
}

/// Issue an end-entity TLS server certificate for `subject_key`, signed by `issuer`: subject
/// `O=Tresor, CN=cn`, one subjectAltName per entry of `sans` (an IP address if the entry parses
/// as one, else a DNS name), `basicConstraints` critical without CA, `keyUsage`
/// digitalSignature, `extendedKeyUsage` serverAuth, valid from `not_before` to `not_after`
/// (unix seconds). Accepted by rustls-webpki as a server leaf.
pub fn issue_server_cert(
    cn: &str,
    subject_key: &PKeyRef<impl openssl::pkey::HasPublic>,
    issuer: (&X509, &PKeyRef<Private>),
    sans: &[String],
    not_before: i64,
    not_after: i64,
) -> Result<X509> {
    if sans.is_empty() {
        return Err(Error::new(
            Rv::ArgumentsBad,
            "a server certificate needs at least one subject alternative name",
        ));
    }
    if not_after <= not_before {
        return Err(Error::new(
            Rv::ArgumentsBad,
            "a certificate's validity must end after it starts",
        ));
    }
    let (issuer_cert, issuer_key) = issuer;
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let sn = serial()?;
    b.set_serial_number(&sn)?;
    let subject = name(cn)?;
    b.set_subject_name(&subject)?;
    b.set_issuer_name(issuer_cert.subject_name())?;
    b.set_pubkey(subject_key)?;
    let nb = Asn1Time::from_unix(not_before)?;
    let na = Asn1Time::from_unix(not_after)?;
    b.set_not_before(&nb)?;
    b.set_not_after(&na)?;
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
    b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    let mut san = SubjectAlternativeName::new();
    for entry in sans {
        if entry.is_empty() {
            return Err(Error::new(
                Rv::ArgumentsBad,
                "a subject alternative name is empty",
            ));
        }
        if entry.parse::<std::net::IpAddr>().is_ok() {
            san.ip(entry);
        } else {
            san.dns(entry);
        }
    }
    let ctx = b.x509v3_context(Some(issuer_cert), None);
    let san = san.build(&ctx).map_err(|e| {
        Error::new(
            Rv::ArgumentsBad,
            format!("subject alternative names {sans:?}: {e}"),
        )
    })?;
    let ski = SubjectKeyIdentifier::new().build(&ctx)?;
    let aki = AuthorityKeyIdentifier::new().keyid(false).build(&ctx)?;
    b.append_extension(san)?;
    b.append_extension(ski)?;
    b.append_extension(aki)?;
    b.sign(issuer_key, MessageDigest::sha256())?;
    Ok(b.build())
}

/// Check that `cert` is signed by `issuer`'s key and that `issuer` is a CA.
pub fn verify_issued_by(cert: &X509, issuer: &X509) -> Result<()> {
    let key = issuer.public_key()?;
    if !cert.verify(&key)? {
        return Err(Error::new(
            Rv::SignatureInvalid,
            "certificate is not signed by the cluster root",
        ));
    }
    Ok(())
}

/// Verify an attestation: the chain (leaf first, PEM) up to the trusted `root`, then the
/// signature over the exact document bytes with the leaf's key.
pub fn verify_attestation(
    xml: &[u8],
    signature: &[u8],
    chain_pem: &[u8],
    root: &X509,
) -> Result<()> {
    let chain = X509::stack_from_pem(chain_pem)
        .map_err(|_| Error::new(Rv::ArgumentsBad, "chain is not PEM"))?;
    let leaf = chain
        .first()
        .ok_or_else(|| Error::new(Rv::ArgumentsBad, "chain is empty"))?;
    let mut store = X509StoreBuilder::new()?;
    store.add_cert(root.clone())?;
    let store = store.build();
    let mut untrusted = Stack::new()?;
    for c in chain.iter().skip(1) {
        untrusted.push(c.clone())?;
    }
    let mut ctx = X509StoreContext::new()?;
    let ok = ctx.init(&store, leaf, &untrusted, |c| {
        let ok = c.verify_cert()?;
        Ok(if ok {
            None
        } else {
            Some(c.error().to_string())
        })
    })?;
    if let Some(why) = ok {
        return Err(Error::new(
            Rv::SignatureInvalid,
            format!("certificate chain does not lead to the cluster root: {why}"),
        ));
    }
    let key = leaf.public_key()?;
    let mut v = Verifier::new(MessageDigest::sha256(), &key)?;
    if !v.verify_oneshot(signature, xml).unwrap_or(false) {
        return Err(Error::new(
            Rv::SignatureInvalid,
            "signature does not match the document",
        ));
    }
    Ok(())
}

/// Sign document bytes with an attestation key (ECDSA-SHA256, DER).
pub fn sign_document(key: &PKeyRef<Private>, doc: &[u8]) -> Result<Vec<u8>> {
    let mut s = Signer::new(MessageDigest::sha256(), key)?;
    Ok(s.sign_oneshot_to_vec(doc)?)
}

/// The algorithm facts REST and the attestation report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlgInfo {
    /// Securosys algorithm name (`RSA`, `EC`, `ED`, `AES`, `ML-DSA-65`, …).
    pub algorithm: &'static str,
    pub algorithm_oid: &'static str,
    pub curve_oid: Option<&'static str>,
    pub key_size: Option<u64>,
}

/// Dotted OID of a Weierstrass curve.
pub fn curve_oid(c: Curve) -> &'static str {
    match c {
        Curve::P256 => "1.2.840.10045.3.1.7",
        Curve::P384 => "1.3.132.0.34",
        Curve::P521 => "1.3.132.0.35",
        Curve::Secp256k1 => "1.3.132.0.10",
        Curve::BrainpoolP256r1 => "1.3.36.3.3.2.8.1.1.7",
        Curve::BrainpoolP384r1 => "1.3.36.3.3.2.8.1.1.11",
        Curve::BrainpoolP512r1 => "1.3.36.3.3.2.8.1.1.13",
    }
}

fn curve_bits(c: Curve) -> u64 {
    match c {
        Curve::P256 | Curve::Secp256k1 | Curve::BrainpoolP256r1 => 256,
        Curve::P384 | Curve::BrainpoolP384r1 => 384,
        Curve::BrainpoolP512r1 => 512,
        Curve::P521 => 521,
    }
}

/// Algorithm facts of a record.
pub fn alg_info(rec: &ObjectRecord) -> Option<AlgInfo> {
    let alg = rec.alg?;
    let rsa_bits = rec
        .public
        .as_ref()
        .and_then(|p| p.modulus_bits)
        .map(u64::from);
    let (algorithm, algorithm_oid, curve_oid, key_size) = match alg {
        KeyAlg::Rsa => ("RSA", "1.2.840.113549.1.1.1", None, rsa_bits),
        KeyAlg::Ec(c) => (
            "EC",
            "1.2.840.10045.2.1",
            Some(curve_oid(c)),
            Some(curve_bits(c)),
        ),
        KeyAlg::Ed(EdCurve::Ed25519) => ("ED", "1.3.101.112", Some("1.3.101.112"), Some(255)),
        KeyAlg::Ed(EdCurve::Ed448) => ("ED", "1.3.101.113", Some("1.3.101.113"), Some(448)),
        KeyAlg::Aes => (
            "AES",
            "2.16.840.1.101.3.4.1",
            None,
            rec.value_len.map(|l| l * 8),
        ),
        KeyAlg::ChaCha20 => ("ChaCha20", "1.2.840.113549.1.9.16.3.18", None, Some(256)),
        KeyAlg::GenericSecret => (
            "HMACSHA256",
            "1.2.840.113549.2.9",
            None,
            rec.value_len.map(|l| l * 8),
        ),
        KeyAlg::MlDsa(p) => match p {
            MlDsaParam::MlDsa44 => ("ML-DSA-44", "2.16.840.1.101.3.4.3.17", None, None),
            MlDsaParam::MlDsa65 => ("ML-DSA-65", "2.16.840.1.101.3.4.3.18", None, None),
            MlDsaParam::MlDsa87 => ("ML-DSA-87", "2.16.840.1.101.3.4.3.19", None, None),
        },
        KeyAlg::MlKem(p) => match p {
            MlKemParam::MlKem512 => ("ML-KEM-512", "2.16.840.1.101.3.4.4.1", None, None),
            MlKemParam::MlKem768 => ("ML-KEM-768", "2.16.840.1.101.3.4.4.2", None, None),
            MlKemParam::MlKem1024 => ("ML-KEM-1024", "2.16.840.1.101.3.4.4.3", None, None),
        },
        KeyAlg::SlhDsa(p) => match p {
            SlhDsaParam::Sha2_128s => ("SLH-DSA-SHA2-128s", "2.16.840.1.101.3.4.3.20", None, None),
            SlhDsaParam::Sha2_128f => ("SLH-DSA-SHA2-128f", "2.16.840.1.101.3.4.3.21", None, None),
            SlhDsaParam::Sha2_192s => ("SLH-DSA-SHA2-192s", "2.16.840.1.101.3.4.3.22", None, None),
            SlhDsaParam::Sha2_192f => ("SLH-DSA-SHA2-192f", "2.16.840.1.101.3.4.3.23", None, None),
            SlhDsaParam::Sha2_256s => ("SLH-DSA-SHA2-256s", "2.16.840.1.101.3.4.3.24", None, None),
            SlhDsaParam::Sha2_256f => ("SLH-DSA-SHA2-256f", "2.16.840.1.101.3.4.3.25", None, None),
            SlhDsaParam::Shake128s => ("SLH-DSA-SHAKE-128s", "2.16.840.1.101.3.4.3.26", None, None),
            SlhDsaParam::Shake128f => ("SLH-DSA-SHAKE-128f", "2.16.840.1.101.3.4.3.27", None, None),
            SlhDsaParam::Shake192s => ("SLH-DSA-SHAKE-192s", "2.16.840.1.101.3.4.3.28", None, None),
            SlhDsaParam::Shake192f => ("SLH-DSA-SHAKE-192f", "2.16.840.1.101.3.4.3.29", None, None),
            SlhDsaParam::Shake256s => ("SLH-DSA-SHAKE-256s", "2.16.840.1.101.3.4.3.30", None, None),
            SlhDsaParam::Shake256f => ("SLH-DSA-SHAKE-256f", "2.16.840.1.101.3.4.3.31", None, None),
        },
    };
    Some(AlgInfo {
        algorithm,
        algorithm_oid,
        curve_oid,
        key_size,
    })
}

/// ISO-8601 UTC with seconds, `Z` suffix.
pub fn iso8601(unix_s: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_s)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn elem(out: &mut String, tag: &str, value: &str) {
    out.push('<');
    out.push_str(tag);
    out.push('>');
    out.push_str(&escape(value));
    out.push_str("</");
    out.push_str(tag);
    out.push('>');
}

fn rule_xml(out: &mut String, tag: &str, rule: Option<&Rule>) {
    let Some(rule) = rule else {
        out.push_str(&format!("<{tag}/>"));
        return;
    };
    out.push_str(&format!("<{tag}>"));
    for t in &rule.tokens {
        out.push_str(&format!("<token name=\"{}\">", escape(&t.name)));
        elem(out, "timelock", &t.timelock.to_string());
        elem(out, "timeout", &t.timeout.to_string());
        for g in &t.groups {
            out.push_str(&format!("<group name=\"{}\">", escape(&g.name)));
            elem(out, "quorum", &g.quorum.to_string());
            for a in &g.approvals {
                let kind = match a.kind {
                    crate::policy::ApprovalType::PublicKey => "public_key",
                    crate::policy::ApprovalType::Certificate => "certificate",
                    crate::policy::ApprovalType::OnboardedApproverCertificate => {
                        "onboarded_approver_certificate"
                    }
                };
                out.push_str(&format!(
                    "<approval type=\"{kind}\" name=\"{}\">{}</approval>",
                    escape(a.name.as_deref().unwrap_or("")),
                    escape(&a.value)
                ));
            }
            out.push_str("</group>");
        }
        out.push_str("</token>");
    }
    out.push_str(&format!("</{tag}>"));
}

fn policy_xml(out: &mut String, p: &Policy) {
    out.push_str("<policy><key_status>");
    elem(
        out,
        "blocked",
        if p.key_status.blocked {
            "true"
        } else {
            "false"
        },
    );
    out.push_str("</key_status>");
    rule_xml(out, "rule_use", p.rule_use.as_ref());
    rule_xml(out, "rule_block", p.rule_block.as_ref());
    rule_xml(out, "rule_unblock", p.rule_unblock.as_ref());
    rule_xml(out, "rule_modify", p.rule_modify.as_ref());
    out.push_str("</policy>");
}

/// The attestation document of a key.
pub fn attestation_xml(rec: &ObjectRecord, usage_count: i64, attest_time: i64) -> String {
    let root = match rec.class {
        ObjectClass::PrivateKey => "private_key",
        ObjectClass::SecretKey => "secret_key",
        _ => "public_key",
    };
    let creation = if rec.origin == Origin::Generated {
        "generated"
    } else {
        "imported"
    };
    let mut x = String::with_capacity(2048);
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    x.push_str(&format!("<{root} creation=\"{creation}\">"));
    elem(&mut x, "uuid", &rec.uuid);
    elem(&mut x, "label", &rec.label);
    elem(&mut x, "id", &hex::encode(&rec.ckaid));
    elem(&mut x, "create_time", &iso8601(rec.created));
    elem(&mut x, "attest_time", &iso8601(attest_time));
    elem(&mut x, "key_use_count", &usage_count.to_string());
    if let Some(info) = alg_info(rec) {
        elem(&mut x, "algorithm", info.algorithm);
        elem(&mut x, "algorithm_oid", info.algorithm_oid);
        if let Some(c) = info.curve_oid {
            elem(&mut x, "curve_oid", c);
        }
        if let Some(s) = info.key_size {
            elem(&mut x, "key_size", &s.to_string());
        }
    }
    if let Some(p) = &rec.public {
        elem(
            &mut x,
            "public_key",
            &base64::engine::general_purpose::STANDARD.encode(&p.spki),
        );
    }
    let f = &rec.flags;
    x.push_str("<attributes>");
    for (tag, v) in [
        ("encrypt", f.encrypt),
        ("decrypt", f.decrypt),
        ("verify", f.verify),
        ("sign", f.sign),
        ("wrap", f.wrap),
        ("unwrap", f.unwrap),
        ("derive", f.derive),
        ("sensitive", f.sensitive),
        ("always_sensitive", f.always_sensitive),
        ("extractable", f.extractable),
        ("never_extractable", f.never_extractable),
        ("modifiable", f.modifiable),
        ("copyable", f.copyable),
        ("destroyable", f.destroyable),
        ("local", f.local),
        ("trusted", f.trusted),
        ("wrap_with_trusted", f.wrap_with_trusted),
    ] {
        elem(&mut x, tag, if v { "true" } else { "false" });
    }
    x.push_str("</attributes>");
    match &rec.policy {
        Some(p) => policy_xml(&mut x, p),
        None => x.push_str("<policy/>"),
    }
    x.push_str(&format!("</{root}>"));
    x
}

/// An attestation as returned to a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// The XML document (UTF-8).
    pub xml: String,
    /// ECDSA-SHA256 (DER) over `xml`'s bytes by the partition attestation key.
    pub signature: Vec<u8>,
    /// PEM chain: attestation certificate, node certificate (the root is not included).
    pub chain_pem: String,
    /// Always [`ATTESTATION_KEY_NAME`].
    pub attestation_key_name: &'static str,
}

/// PEM of a certificate.
pub fn pem(cert: &X509) -> Result<String> {
    String::from_utf8(cert.to_pem()?).map_err(|_| Error::new(Rv::GeneralError, "PEM is not UTF-8"))
}
