//! Certificates: CSRs, self-signed certificates and certificates issued from a CSR, built
//! with rcgen around a remote signer (every signature is a `Sign` request to the engine: the
//! key never leaves it), and the certificate object stored under a key's name (import, get,
//! delete).

use std::sync::Arc;

use axum::extract::Path;
use axum::Json;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
    PublicKeyData, SignatureAlgorithm as RcAlg, SigningKey,
};
use tresor_client::transport::Transport;
use tresor_proto::{Mechanism, Request, Response, Secret, Template};
use x509_parser::prelude::FromDer;

use crate::auth::Caller;
use crate::dto::{
    CertificateBody, CsrRequest, CsrResponse, ExtendedKeyUsage, KeyUsage, SelfSignRequest,
    SignCertificateRequest, SignatureAlgorithm,
};
use crate::error::{code, ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::handlers::{check_label, strip_pem};
use crate::mech;
use crate::tenant::{b64, bytes_of, ck, unb64, unexpected, KeyKind, KeyRef, Tenant};

/// A signer whose private key is in the HSM.
struct RemoteKey {
    transport: Arc<dyn Transport>,
    handle: i64,
    /// The key's password, presented with every signature (none: plain requests).
    password: Vec<tresor_proto::KeyPassword>,
    /// Why the last signature failed (the engine's answer), for the error of the endpoint.
    failure: Failure,
    mechanism: Mechanism,
    der_ecdsa: bool,
    public_raw: Vec<u8>,
    alg: &'static RcAlg,
}

impl PublicKeyData for RemoteKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public_raw
    }
    fn algorithm(&self) -> &'static RcAlg {
        self.alg
    }
}

impl SigningKey for RemoteKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let sign = Request::Sign {
            key: self.handle,
            mechanism: self.mechanism.clone(),
            data: Secret::from_slice(msg),
        };
        let req = if self.password.is_empty() {
            sign
        } else {
            Request::WithKeyPasswords {
                passwords: self.password.clone(),
                request: Box::new(sign),
            }
        };
        let r = self.transport.call(&req).map_err(|e| {
            tracing::warn!(error = %e, "remote signature for a certificate failed");
            *self.failure.lock() = Some(e);
            rcgen::Error::RemoteKeyError
        })?;
        let r = match r {
            Response::WithKeyPasswords { response } => *response,
            other => other,
        };
        match r {
            Response::Signature { signature } if self.der_ecdsa => {
                Ok(mech::ecdsa_raw_to_der(&signature))
            }
            Response::Signature { signature } => Ok(signature),
            _ => Err(rcgen::Error::RemoteKeyError),
        }
    }
}

/// The engine's refusal of a remote signature, kept for the endpoint's answer.
type Failure = Arc<parking_lot::Mutex<Option<tresor_client::Error>>>;

/// The rcgen algorithm, engine mechanism and DER flag for a key and signature algorithm.
fn signer_alg(
    alg: SignatureAlgorithm,
    kind: KeyKind,
) -> ApiResult<(&'static RcAlg, Mechanism, bool)> {
    use SignatureAlgorithm as S;
    let (rc, data_alg, der): (&'static RcAlg, SignatureAlgorithm, bool) = match (alg, kind) {
        (S::Sha256Rsa, KeyKind::Rsa(_)) => (&rcgen::PKCS_RSA_SHA256, alg, false),
        (S::Sha384Rsa, KeyKind::Rsa(_)) => (&rcgen::PKCS_RSA_SHA384, alg, false),
        (S::Sha512Rsa, KeyKind::Rsa(_)) => (&rcgen::PKCS_RSA_SHA512, alg, false),
        (S::Sha256Ecdsa, KeyKind::Ec(32)) => (&rcgen::PKCS_ECDSA_P256_SHA256, alg, true),
        (S::Sha384Ecdsa, KeyKind::Ec(48)) => (&rcgen::PKCS_ECDSA_P384_SHA384, alg, true),
        (S::Sha512Ecdsa, KeyKind::Ec(66)) => (&rcgen::PKCS_ECDSA_P521_SHA512, alg, true),
        (S::EdDsa, KeyKind::Ed) => (&rcgen::PKCS_ED25519, alg, false),
        _ => {
            return Err(ApiError::new(
                code::ALGORITHM_NOT_SUPPORTED_BY_KEY,
                format!(
                    "{} cannot sign certificates with this key (SHA256/384/512_WITH_RSA, \
                     SHA256/384/512_WITH_ECDSA on the matching curve, EDDSA)",
                    alg.as_str()
                ),
            ))
        }
    };
    let (m, _) = mech::sign_mechanism(data_alg, kind, &[])?;
    Ok((rc, m, der))
}

async fn remote_key(
    t: &Tenant,
    k: &KeyRef,
    alg: SignatureAlgorithm,
    password: &crate::dto::Password,
) -> ApiResult<RemoteKey> {
    let handle = k.private_side()?;
    let (rc, mechanism, der_ecdsa) = signer_alg(alg, k.kind)?;
    let (rec, _) = t.record(handle).await?;
    let spki = bytes_of(rec.pointer("/public/spki"))
        .ok_or_else(|| ApiError::new(code::INVALID_KEY_TYPE, "the key has no public half"))?;
    let (_, info) =
        x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki).map_err(ApiError::internal)?;
    Ok(RemoteKey {
        transport: t.transport().clone(),
        handle,
        password: crate::tenant::unlock(k, password)?,
        failure: Failure::default(),
        mechanism,
        der_ecdsa,
        public_raw: info.subject_public_key.data.to_vec(),
        alg: rc,
    })
}

fn usages(
    p: &mut CertificateParams,
    ku: &Option<Vec<KeyUsage>>,
    eku: &Option<Vec<ExtendedKeyUsage>>,
) {
    for u in ku.iter().flatten() {
        p.key_usages.push(match u {
            KeyUsage::DigitalSignature => KeyUsagePurpose::DigitalSignature,
            KeyUsage::ContentCommitment => KeyUsagePurpose::ContentCommitment,
            KeyUsage::KeyEncipherment => KeyUsagePurpose::KeyEncipherment,
            KeyUsage::DataEncipherment => KeyUsagePurpose::DataEncipherment,
            KeyUsage::KeyAgreement => KeyUsagePurpose::KeyAgreement,
            KeyUsage::KeyCertSign => KeyUsagePurpose::KeyCertSign,
            KeyUsage::CrlSign => KeyUsagePurpose::CrlSign,
            KeyUsage::EncipherOnly => KeyUsagePurpose::EncipherOnly,
            KeyUsage::DecipherOnly => KeyUsagePurpose::DecipherOnly,
        });
    }
    for u in eku.iter().flatten() {
        p.extended_key_usages.push(match u {
            ExtendedKeyUsage::Any => ExtendedKeyUsagePurpose::Any,
            ExtendedKeyUsage::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsage::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsage::CodeSigning => ExtendedKeyUsagePurpose::CodeSigning,
            ExtendedKeyUsage::EmailProtection => ExtendedKeyUsagePurpose::EmailProtection,
            ExtendedKeyUsage::TimeStamping => ExtendedKeyUsagePurpose::TimeStamping,
            ExtendedKeyUsage::OcspSigning => ExtendedKeyUsagePurpose::OcspSigning,
        });
    }
}

fn validity(p: &mut CertificateParams, days: Option<u32>) -> ApiResult<()> {
    let days = days.unwrap_or(365);
    if !(1..=36_500).contains(&days) {
        return Err(ApiError::new(
            code::INVALID_NUMBER_RANGE,
            "validity is 1 to 36500 days",
        ));
    }
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::minutes(5);
    p.not_after = now + time::Duration::days(i64::from(days));
    Ok(())
}

fn non_empty(field: &str, s: &str) -> ApiResult<()> {
    if s.trim().is_empty() || s.len() > 1024 {
        return Err(ApiError::invalid(format!(
            "{field} must be 1 to 1024 characters"
        )));
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    failure: Failure,
    f: impl FnOnce() -> Result<T, rcgen::Error> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| match e {
            rcgen::Error::RemoteKeyError => match failure.lock().take() {
                Some(e) => ApiError::from_client(&e),
                None => ApiError::new(
                    code::OPERATION_FORBIDDEN_FOR_KEY,
                    "the HSM refused to sign with this key",
                ),
            },
            other => ApiError::new(
                code::INVALID_CERTIFICATE_REQUEST,
                format!("cannot build the certificate: {other}"),
            ),
        })
}

/// Store `der` as the certificate of `label`, replacing any existing one.
pub async fn store_certificate(t: &Tenant, label: &str, der: &[u8]) -> ApiResult<()> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der).map_err(|_| {
        ApiError::new(
            code::CERTIFICATE_INVALID_ENCODING,
            "certificate is not a DER X.509 certificate",
        )
    })?;
    if !rest.is_empty() {
        return Err(ApiError::new(
            code::CERTIFICATE_INVALID_ENCODING,
            "trailing bytes after the certificate",
        ));
    }
    t.forget(label);
    let old = match t.key(label).await {
        Ok(k) => k.cert,
        Err(e) if e.code == code::KEY_NOT_EXISTENT => None,
        Err(e) => return Err(e),
    };
    let tm = Template::new()
        .with_ulong(ck::CKA_CLASS, ck::CKO_CERTIFICATE)
        .with_ulong(ck::CKA_CERTIFICATE_TYPE, ck::CKC_X_509)
        .with_bool(ck::CKA_TOKEN, true)
        .with_bytes(ck::CKA_LABEL, label.as_bytes())
        .with_bytes(ck::CKA_SUBJECT, cert.subject().as_raw())
        .with_bytes(ck::CKA_VALUE, der);
    match t.call(Request::CreateObject { template: tm }).await? {
        Response::ObjectCreated { .. } => {}
        other => return Err(unexpected(&other)),
    }
    if let Some(h) = old {
        t.call(Request::DestroyObject { object: h }).await?;
    }
    t.forget(label);
    Ok(())
}

/// A CSR for a key; the key then holds a self-signed certificate of the same subject (stored
/// under its name, replacing any, as `selfsign` does).
#[utoipa::path(post, path = "/v1/certificate/synchronous/request", tag = "certificates",
    request_body = CsrRequest,
    responses((status = 200, body = CsrResponse), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn csr(c: Caller, ApiJson(r): ApiJson<CsrRequest>) -> ApiResult<Json<CsrResponse>> {
    check_label(&r.sign_key_name)?;
    let t = &c.tenant;
    let k = t.key(&r.sign_key_name).await?;
    let key = remote_key(t, &k, r.signature_algorithm, &r.key_password).await?;
    let failure = key.failure.clone();
    let a = &r.standard_certificate_attributes;
    let mut dn = DistinguishedName::new();
    let mut any = false;
    for (ty, v) in [
        (DnType::CommonName, &a.common_name),
        (DnType::CountryName, &a.country),
        (DnType::StateOrProvinceName, &a.state_or_province_name),
        (DnType::LocalityName, &a.locality),
        (DnType::OrganizationName, &a.organization_name),
        (DnType::OrganizationalUnitName, &a.organization_unit_name),
        (
            DnType::CustomDnType(vec![2, 5, 4, 97]),
            &a.organization_identifier,
        ),
        (
            DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
            &a.email,
        ),
        (DnType::CustomDnType(vec![2, 5, 4, 12]), &a.title),
        (DnType::CustomDnType(vec![2, 5, 4, 4]), &a.surname),
        (DnType::CustomDnType(vec![2, 5, 4, 42]), &a.given_name),
        (DnType::CustomDnType(vec![2, 5, 4, 43]), &a.initials),
        (DnType::CustomDnType(vec![2, 5, 4, 65]), &a.pseudonym),
        (
            DnType::CustomDnType(vec![2, 5, 4, 44]),
            &a.generation_qualifier,
        ),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            non_empty("standardCertificateAttributes", v)?;
            dn.push(ty, v);
            any = true;
        }
    }
    if !any {
        return Err(ApiError::invalid(
            "standardCertificateAttributes needs at least one attribute (e.g. commonName)",
        ));
    }
    let mut p = CertificateParams::default();
    p.distinguished_name = dn;
    usages(&mut p, &r.key_usage, &r.extended_key_usage);
    if p.key_usages.is_empty() {
        // The key's certificate always states its usage (critical, as rcgen writes it).
        p.key_usages.push(KeyUsagePurpose::DigitalSignature);
    }
    validity(&mut p, r.validity)?;
    // The CSR, and the self-signed certificate the key holds from now on (compat §1.10), with
    // the same subject, usages and validity.
    let (pem, cert_der) = blocking(failure, move || {
        let pem = p.serialize_request(&key)?.pem()?;
        let cert = p.self_signed(&key)?;
        Ok((pem, cert.der().to_vec()))
    })
    .await?;
    store_certificate(t, &r.sign_key_name, &cert_der).await?;
    Ok(Json(CsrResponse {
        label: r.sign_key_name,
        certificate_signing_request: pem,
    }))
}

/// A self-signed certificate for a key (stored under the key's name).
#[utoipa::path(post, path = "/v1/certificate/synchronous/selfsign", tag = "certificates",
    request_body = SelfSignRequest,
    responses((status = 200, body = CertificateBody), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn self_sign(
    c: Caller,
    ApiJson(r): ApiJson<SelfSignRequest>,
) -> ApiResult<Json<CertificateBody>> {
    check_label(&r.sign_key_name)?;
    non_empty("commonName", &r.common_name)?;
    let t = &c.tenant;
    let k = t.key(&r.sign_key_name).await?;
    let key = remote_key(t, &k, r.signature_algorithm, &r.key_password).await?;
    let failure = key.failure.clone();
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name
        .push(DnType::CommonName, r.common_name.as_str());
    if r.certificate_authority == Some(true) {
        p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    usages(&mut p, &r.key_usage, &r.extended_key_usage);
    validity(&mut p, r.validity)?;
    let cert = blocking(failure, move || p.self_signed(&key)).await?;
    store_certificate(t, &r.sign_key_name, cert.der()).await?;
    Ok(Json(CertificateBody {
        label: r.sign_key_name,
        certificate: cert.pem(),
    }))
}

/// Issue a certificate from a CSR with a key that has a certificate.
#[utoipa::path(post, path = "/v1/certificate/synchronous/sign", tag = "certificates",
    request_body = SignCertificateRequest,
    responses((status = 200, body = CertificateBody), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn sign_csr(
    c: Caller,
    ApiJson(r): ApiJson<SignCertificateRequest>,
) -> ApiResult<Json<CertificateBody>> {
    check_label(&r.sign_key_name)?;
    let t = &c.tenant;
    let mut csr = rcgen::CertificateSigningRequestParams::from_pem(&r.certificate_signing_request)
        .map_err(|e| {
            ApiError::new(
                code::CSR_INVALID_FORMAT,
                format!("certificateSigningRequest: {e}"),
            )
        })?;
    let k = t.key(&r.sign_key_name).await?;
    let Some(ch) = k.cert else {
        return Err(ApiError::new(
            code::INVALID_KEY_TYPE,
            "the issuing key has no certificate (create one with selfsign or import it)",
        ));
    };
    let issuer_der = read_value(t, ch).await?;
    let key = remote_key(t, &k, r.signature_algorithm, &r.key_password).await?;
    let failure = key.failure.clone();
    if r.certificate_authority == Some(true) {
        csr.params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    usages(&mut csr.params, &r.key_usage, &r.extended_key_usage);
    validity(&mut csr.params, r.validity)?;
    let cert = blocking(failure, move || {
        let issuer = rcgen::Issuer::from_ca_cert_der(&issuer_der.into(), key)?;
        csr.signed_by(&issuer)
    })
    .await?;
    Ok(Json(CertificateBody {
        label: r.sign_key_name,
        certificate: cert.pem(),
    }))
}

async fn read_value(t: &Tenant, h: i64) -> ApiResult<Vec<u8>> {
    match t
        .call(Request::GetAttributes {
            object: h,
            types: vec![ck::CKA_VALUE],
        })
        .await?
    {
        Response::Attributes { values } => match values.into_iter().next() {
            Some(tresor_proto::AttrRead::Value(v)) => Ok(v.expose().to_vec()),
            _ => Err(ApiError::internal("a certificate without a value")),
        },
        other => Err(unexpected(&other)),
    }
}

/// Import a certificate (base64 DER) under a name, replacing any existing one.
#[utoipa::path(post, path = "/v1/certificate/import/plain", tag = "certificates",
    request_body = CertificateBody,
    responses((status = 200), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn import(c: Caller, ApiJson(r): ApiJson<CertificateBody>) -> ApiResult<()> {
    check_label(&r.label)?;
    let der = unb64("certificate", &strip_pem(&r.certificate))?;
    store_certificate(&c.tenant, &r.label, &der).await
}

/// The certificate stored under a name (base64 DER).
#[utoipa::path(get, path = "/v1/certificate/{keyName}", tag = "certificates",
    params(("keyName" = String, Path, description = "key name")),
    responses((status = 200, body = CertificateBody), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn get(c: Caller, Path(name): Path<String>) -> ApiResult<Json<CertificateBody>> {
    check_label(&name)?;
    let t = &c.tenant;
    t.forget(&name);
    let k = t.key(&name).await?;
    let h = k.cert.ok_or_else(|| {
        ApiError::new(
            code::KEY_NOT_EXISTENT,
            format!("no certificate named {name:?}"),
        )
    })?;
    let der = read_value(t, h).await?;
    Ok(Json(CertificateBody {
        label: name,
        certificate: b64(&der),
    }))
}

/// Remove the certificate stored under a name.
#[utoipa::path(delete, path = "/v1/certificate/{keyName}", tag = "certificates",
    params(("keyName" = String, Path, description = "key name")),
    responses((status = 200), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn delete(c: Caller, Path(name): Path<String>) -> ApiResult<()> {
    check_label(&name)?;
    let t = &c.tenant;
    t.forget(&name);
    let k = t.key(&name).await?;
    let h = k.cert.ok_or_else(|| {
        ApiError::new(
            code::KEY_NOT_EXISTENT,
            format!("no certificate named {name:?}"),
        )
    })?;
    t.call(Request::DestroyObject { object: h }).await?;
    t.forget(&name);
    Ok(())
}
