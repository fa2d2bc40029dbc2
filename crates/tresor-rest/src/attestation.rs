//! `POST /v1/key/keyAttestation`: a key's attestation as a ZIP download (compat §1.2), with
//! the Securosys file names: `<key>.xml` (the attestation document), `<key>.sig` (its
//! ECDSA-SHA256 signature, DER), `<key>.pem` (the attestation public key),
//! `PrimusHSM_Attestation.crt` (the chain: attestation certificate, node certificate) and
//! `README_PrimusHSM_AuditAndAttestation_AN-E01.md` (how to verify). Everything comes from the
//! engine's `Attest` answer; the archive is built here, stored (uncompressed), in memory.

use std::io::Write;

use axum::http::header;
use axum::response::{IntoResponse, Response as HttpResponse};
use serde::Serialize;
use tresor_proto::{Request, Response};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::dto::KeyNameRequest;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::handlers::check_label;
use crate::tenant::{unexpected, unlock};

/// The chain file's name, as Securosys names it.
pub const CHAIN_FILE: &str = "PrimusHSM_Attestation.crt";
/// The README's name, as Securosys names it.
pub const README_FILE: &str = "README_PrimusHSM_AuditAndAttestation_AN-E01.md";

/// A ZIP archive (`application/zip`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct ZipArchive(Vec<u8>);

/// A key name as a file name: letters, digits, `.`, `-` and `_` kept, anything else `_`; never
/// empty, never `.` or `..`.
pub fn file_stem(label: &str) -> String {
    let s: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        format!("key{}", "_".repeat(s.len()))
    } else {
        s
    }
}

/// PEM of the first certificate's public key (the attestation key) in a PEM chain.
fn leaf_public_key_pem(chain_pem: &str) -> ApiResult<String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain_pem.as_bytes())
        .map_err(|e| ApiError::internal(format!("attestation chain: {e}")))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| ApiError::internal(format!("attestation certificate: {e}")))?;
    let spki = cert.public_key().raw;
    let b64 = crate::tenant::b64(spki);
    let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END PUBLIC KEY-----\n");
    Ok(out)
}

fn readme(label: &str, stem: &str) -> String {
    format!(
        r#"# Attestation of key "{label}"

This archive proves which attributes the key `{label}` has inside the Tresor HSM (for example
that it was generated there and can never leave it), signed by the partition's attestation
key, whose certificate chains to your Tresor cluster's root certificate.

| file | content |
|---|---|
| `{stem}.xml` | the attestation document (UTF-8 XML): the key's attributes, public key and policy |
| `{stem}.sig` | ECDSA-SHA256 signature (DER) over the exact bytes of `{stem}.xml` |
| `{stem}.pem` | the attestation public key that made the signature |
| `{CHAIN_FILE}` | the chain (PEM): attestation certificate, then the HSM node certificate |

The cluster root certificate (`tresor-root.pem`, made by `tresor init`) is **not** in the
archive: take it from your operator through a channel you trust, and compare its fingerprint
(`openssl x509 -in tresor-root.pem -noout -fingerprint -sha256`).

## Verify with OpenSSL

```sh
# 1. The chain leads to your root (the attestation certificate is first in the file).
openssl verify -CAfile tresor-root.pem -untrusted {CHAIN_FILE} {CHAIN_FILE}
# 2. The public key in the archive is the attestation certificate's.
openssl x509 -in {CHAIN_FILE} -pubkey -noout | diff - {stem}.pem
# 3. The signature covers the document.
openssl dgst -sha256 -verify {stem}.pem -signature {stem}.sig {stem}.xml
```

## Verify with Tresor

```sh
tresor attest verify --xml {stem}.xml --signature {stem}.sig --chain {CHAIN_FILE} --root-cert tresor-root.pem
```

Then read `{stem}.xml`: compare `<public_key>` with the key you were given, and for a key that
must never have left the HSM require `<extractable>false</extractable>` and
`<never_extractable>true</never_extractable>`.
"#
    )
}

fn zip(files: &[(String, &[u8])]) -> ApiResult<Vec<u8>> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .unix_permissions(0o644);
    for (name, data) in files {
        w.start_file(name.as_str(), opts)
            .map_err(ApiError::internal)?;
        w.write_all(data).map_err(ApiError::internal)?;
    }
    Ok(w.finish().map_err(ApiError::internal)?.into_inner())
}

/// A key's attestation as a ZIP archive.
#[utoipa::path(post, path = "/v1/key/keyAttestation", tag = "keys", request_body = KeyNameRequest,
    responses((status = 200, description = "the attestation archive", body = ZipArchive,
            content_type = "application/zip"),
        (status = "4XX", body = crate::error::ErrorBody), (status = "5XX", body = crate::error::ErrorBody)))]
pub async fn key_attestation(
    c: Caller,
    ApiJson(req): ApiJson<KeyNameRequest>,
) -> ApiResult<HttpResponse> {
    check_label(&req.label)?;
    let t = &c.tenant;
    let password = &req.password;
    let att = t
        .with_key(&req.label, |k| async move {
            let main = k.main().ok_or_else(|| ApiError::no_key(&k.label))?;
            match t
                .call_unlocked(Request::Attest { key: main }, unlock(&k, password)?)
                .await?
            {
                Response::Attested { attestation } => Ok(attestation),
                other => Err(unexpected(&other)),
            }
        })
        .await?;
    let stem = file_stem(&req.label);
    let public = leaf_public_key_pem(&att.chain_pem)?;
    let readme = readme(&req.label, &stem);
    let archive = zip(&[
        (format!("{stem}.xml"), att.xml.as_bytes()),
        (format!("{stem}.sig"), &att.signature),
        (format!("{stem}.pem"), public.as_bytes()),
        (CHAIN_FILE.to_owned(), att.chain_pem.as_bytes()),
        (README_FILE.to_owned(), readme.as_bytes()),
    ])?;
    let disposition = format!("attachment; filename=\"{stem}_attestation.zip\"");
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        archive,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("TSB_KEY-1.v2"), "TSB_KEY-1.v2");
        assert_eq!(file_stem("a/b\\c d"), "a_b_c_d");
        assert_eq!(file_stem("Master/44'/60'"), "Master_44__60_");
        assert_eq!(file_stem(".."), "key__");
        assert_eq!(file_stem(""), "key");
        assert_eq!(file_stem("ключ"), "____");
    }
}
