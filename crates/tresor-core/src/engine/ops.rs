//! Cryptographic operations on a context. Each one: check the session and login, fetch the key
//! (cache first), check class, usage flag, block status and approval policy, run the
//! mechanism, queue the audit entry.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::context::Context;
use super::objects::{unique_mask, NewObject};
use super::partition::{Cached, UseKey};
use crate::attest::{self, Attestation};
use crate::audit::now_ns;
use crate::ck::*;
use crate::crypto::{self, HashAlg, KeyAlg, KeyMaterial, LoadedKey, Mechanism, MlKemParam};
use crate::error::{vendor, Error, Result, Rv};
use crate::object::{
    self, check_creation_template, new_key_flags, ObjectClass, ObjectId, Origin, Usage,
};
use crate::policy::RuleKind;
use crate::template::Template;

/// A short, static name of a mechanism for audit entries.
pub fn mechanism_name(m: &Mechanism) -> &'static str {
    match m {
        Mechanism::RsaPkcs => "RSA_PKCS",
        Mechanism::RsaX509 => "RSA_X_509",
        Mechanism::RsaPkcsHash(_) => "SHA_RSA_PKCS",
        Mechanism::RsaPss(_) => "RSA_PKCS_PSS",
        Mechanism::RsaPssHash(..) => "SHA_RSA_PKCS_PSS",
        Mechanism::RsaOaep(_) => "RSA_PKCS_OAEP",
        Mechanism::Ecdsa => "ECDSA",
        Mechanism::EcdsaHash(_) => "ECDSA_SHA",
        Mechanism::EcdsaDeterministic(_) => "ECDSA_DETERMINISTIC",
        Mechanism::EcdsaDoubleSha256 => "ECDSA_DOUBLE_SHA256",
        Mechanism::Eddsa => "EDDSA",
        Mechanism::MlDsa { .. } => "ML_DSA",
        Mechanism::SlhDsa { .. } => "SLH_DSA",
        Mechanism::Hmac(_) => "HMAC",
        Mechanism::AesEcb => "AES_ECB",
        Mechanism::AesCbc { .. } => "AES_CBC",
        Mechanism::AesCbcPad { .. } => "AES_CBC_PAD",
        Mechanism::AesCtr { .. } => "AES_CTR",
        Mechanism::AesGcm(_) => "AES_GCM",
        Mechanism::ChaCha20Poly1305 { .. } => "CHACHA20_POLY1305",
        Mechanism::AesKeyWrap => "AES_KEY_WRAP",
        Mechanism::AesKeyWrapPad => "AES_KEY_WRAP_KWP",
        Mechanism::MlKem => "ML_KEM",
        Mechanism::Ecdh1Derive(_) => "ECDH1_DERIVE",
        Mechanism::Digest(_) => "DIGEST",
        #[allow(unreachable_patterns)]
        _ => "OTHER",
    }
}

/// Which classes may perform a usage.
fn class_allows(class: ObjectClass, u: Usage) -> bool {
    match u {
        Usage::Sign | Usage::Decrypt | Usage::Unwrap | Usage::Derive | Usage::Decapsulate => {
            matches!(class, ObjectClass::PrivateKey | ObjectClass::SecretKey)
        }
        Usage::Verify | Usage::Encrypt | Usage::Wrap | Usage::Encapsulate => {
            matches!(class, ObjectClass::PublicKey | ObjectClass::SecretKey)
        }
    }
}

impl Context {
    /// Fetch a key for a use and enforce every rule on it.
    pub(crate) async fn key_for(
        &self,
        oid: ObjectId,
        u: Usage,
        m: &Mechanism,
    ) -> Result<Arc<Cached>> {
        self.require_user()?;
        let c = self.object(oid).await?;
        if !c.rec.class.is_key() || !class_allows(c.rec.class, u) {
            return Err(Error::new(
                Rv::KeyTypeInconsistent,
                format!("object {oid} is not a key that can {}", u.name()),
            ));
        }
        if !c.rec.flags.allows(u) {
            return Err(Error::new(
                Rv::KeyFunctionNotPermitted,
                format!(
                    "key {oid} does not allow {} ({} = false)",
                    u.name(),
                    u.name()
                ),
            ));
        }
        if !c.rec.allows_mechanism(m) {
            return Err(Error::new(
                Rv::MechanismInvalid,
                format!(
                    "key {oid} may not be used with {} (CKA_ALLOWED_MECHANISMS)",
                    mechanism_name(m)
                ),
            ));
        }
        self.key_unlocked(&c)?;
        if matches!(
            u,
            Usage::Sign | Usage::Decrypt | Usage::Unwrap | Usage::Decapsulate
        ) {
            if let Some(p) = &c.rec.policy {
                if p.key_status.blocked {
                    return Err(Error::new(
                        Rv::Vendor(vendor::KEY_BLOCKED),
                        format!("key {oid} is blocked"),
                    ));
                }
                if p.requires_approval(RuleKind::Use) {
                    return Err(Error::new(
                        Rv::Vendor(vendor::APPROVAL_REQUIRED),
                        format!("key {oid} needs approvals for use; approval-gated operations are not available yet"),
                    ));
                }
            }
        }
        self.part.audit_ready(&self.engine, &self.buffer)?;
        Ok(c)
    }

    fn used(&self, c: &Cached, action: &'static str, m: &Mechanism, len: usize) {
        let key = UseKey {
            object_id: c.oid,
            context: self.id,
            action,
            mechanism: mechanism_name(m),
        };
        self.part.record_use(&self.buffer, c, key, len);
    }

    /// `C_Sign` (also HMAC with a generic secret key).
    pub async fn sign(&self, key: ObjectId, m: &Mechanism, data: &[u8]) -> Result<Vec<u8>> {
        let c = self.key_for(key, Usage::Sign, m).await?;
        let sig = c.loaded()?.sign(m, data)?;
        self.used(&c, "key.sign", m, data.len());
        Ok(sig)
    }

    /// The signature length `sign` will produce (for length queries), without signing.
    pub async fn signature_len(&self, key: ObjectId, m: &Mechanism) -> Result<usize> {
        let c = self.key_for(key, Usage::Sign, m).await?;
        c.loaded()?.signature_len(m)
    }

    /// `C_Verify`: `Err(CKR_SIGNATURE_INVALID)` if the signature is wrong.
    pub async fn verify(
        &self,
        key: ObjectId,
        m: &Mechanism,
        data: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        let c = self.key_for(key, Usage::Verify, m).await?;
        let r = c.loaded()?.verify(m, data, signature);
        self.used(&c, "key.verify", m, data.len());
        r
    }

    /// `C_Encrypt`.
    pub async fn encrypt(&self, key: ObjectId, m: &Mechanism, data: &[u8]) -> Result<Vec<u8>> {
        let c = self.key_for(key, Usage::Encrypt, m).await?;
        let out = c.loaded()?.encrypt(m, data)?;
        self.used(&c, "key.encrypt", m, data.len());
        Ok(out)
    }

    /// `C_Decrypt`.
    pub async fn decrypt(
        &self,
        key: ObjectId,
        m: &Mechanism,
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let c = self.key_for(key, Usage::Decrypt, m).await?;
        let out = c.loaded()?.decrypt(m, data)?;
        self.used(&c, "key.decrypt", m, data.len());
        Ok(out)
    }

    /// `C_WrapKey`: the target must be extractable; a `wrap_with_trusted` target needs a
    /// trusted wrapping key. With an ML-KEM public key the result is `ciphertext ‖ AES-KWP(
    /// shared secret, target)`.
    pub async fn wrap_key(
        &self,
        wrapping: ObjectId,
        m: &Mechanism,
        target: ObjectId,
    ) -> Result<Vec<u8>> {
        let w = self.key_for(wrapping, Usage::Wrap, m).await?;
        let t = self.object(target).await?;
        self.key_unlocked(&t)?;
        if !t.rec.class.has_secret() {
            return Err(Error::new(
                Rv::KeyHandleInvalid,
                "only private and secret keys can be wrapped",
            ));
        }
        if !t.rec.flags.extractable || t.rec.policy.is_some() {
            return Err(Error::new(
                Rv::KeyUnextractable,
                format!("key {target} is not extractable"),
            ));
        }
        if t.rec.flags.wrap_with_trusted && !w.rec.flags.trusted {
            return Err(Error::new(
                Rv::KeyNotWrappable,
                format!("key {target} may only be wrapped by a trusted key"),
            ));
        }
        let secret = t
            .secret
            .as_ref()
            .ok_or_else(|| Error::new(Rv::KeyHandleInvalid, "the key has no material"))?;
        let out = match (m, w.rec.alg) {
            (Mechanism::MlKem, Some(KeyAlg::MlKem(_))) => {
                let (ct, ss) = w.loaded()?.encapsulate(m)?;
                let kek = LoadedKey::secret(KeyAlg::Aes, &ss)?;
                let mut out = ct;
                out.extend(kek.wrap(&Mechanism::AesKeyWrapPad, secret)?);
                out
            }
            _ => w.loaded()?.wrap(m, secret)?,
        };
        self.used(&w, "key.wrap", m, 0);
        Ok(out)
    }

    /// `C_UnwrapKey`: a new key from a wrapped blob; `t` gives its class, type and attributes.
    pub async fn unwrap_key(
        &self,
        unwrapping: ObjectId,
        m: &Mechanism,
        wrapped: &[u8],
        t: &Template,
    ) -> Result<ObjectId> {
        let u = self.key_for(unwrapping, Usage::Unwrap, m).await?;
        let bytes = match (m, u.rec.alg) {
            (Mechanism::MlKem, Some(KeyAlg::MlKem(p))) => {
                let n = mlkem_ct_len(p);
                if wrapped.len() <= n {
                    return Err(Error::new(
                        Rv::WrappedKeyLenRange,
                        "the wrapped key is shorter than the ML-KEM ciphertext",
                    ));
                }
                let ss = u.loaded()?.decapsulate(m, &wrapped[..n])?;
                LoadedKey::secret(KeyAlg::Aes, &ss)?
                    .unwrap(&Mechanism::AesKeyWrapPad, &wrapped[n..])?
            }
            _ => u.loaded()?.unwrap(m, wrapped)?,
        };
        self.used(&u, "key.unwrap", m, wrapped.len());
        let obj = self
            .new_key_from_bytes(t, bytes, Origin::Unwrapped, None)
            .await?;
        self.store_one(
            obj,
            "key.unwrap",
            serde_json::json!({"unwrapping_key": unwrapping}),
        )
        .await
    }

    /// `C_DeriveKey` (ECDH): a new secret key; `t` gives its type and `CKA_VALUE_LEN`.
    pub async fn derive_key(
        &self,
        base: ObjectId,
        m: &Mechanism,
        t: &Template,
    ) -> Result<ObjectId> {
        let b = self.key_for(base, Usage::Derive, m).await?;
        let len = t.ulong(CKA_VALUE_LEN).map(|l| l as usize);
        let want = match (t.ulong(CKA_KEY_TYPE), len) {
            (_, Some(l)) => l,
            (Some(CKK_AES), None) => 32,
            (Some(CKK_CHACHA20), None) => 32,
            _ => 0,
        };
        let bytes = b.loaded()?.derive(m, want)?;
        self.used(&b, "key.derive", m, 0);
        let obj = self
            .new_key_from_bytes(t, bytes, Origin::Derived, Some(&b))
            .await?;
        self.store_one(obj, "key.derive", serde_json::json!({"base_key": base}))
            .await
    }

    /// `C_EncapsulateKey` (ML-KEM): returns the ciphertext and the new secret key's handle.
    pub async fn encapsulate(
        &self,
        key: ObjectId,
        m: &Mechanism,
        t: &Template,
    ) -> Result<(Vec<u8>, ObjectId)> {
        let k = self.key_for(key, Usage::Encapsulate, m).await?;
        let (ct, ss) = k.loaded()?.encapsulate(m)?;
        self.used(&k, "key.encapsulate", m, 0);
        let obj = self
            .new_key_from_bytes(t, ss, Origin::Derived, None)
            .await?;
        let id = self
            .store_one(obj, "key.encapsulate", serde_json::json!({"key": key}))
            .await?;
        Ok((ct, id))
    }

    /// `C_DecapsulateKey` (ML-KEM): the new secret key's handle.
    pub async fn decapsulate(
        &self,
        key: ObjectId,
        m: &Mechanism,
        ciphertext: &[u8],
        t: &Template,
    ) -> Result<ObjectId> {
        let k = self.key_for(key, Usage::Decapsulate, m).await?;
        let ss = k.loaded()?.decapsulate(m, ciphertext)?;
        self.used(&k, "key.decapsulate", m, ciphertext.len());
        let obj = self
            .new_key_from_bytes(t, ss, Origin::Derived, None)
            .await?;
        self.store_one(obj, "key.decapsulate", serde_json::json!({"key": key}))
            .await
    }

    /// Build a key object from unwrapped / derived bytes and a template.
    async fn new_key_from_bytes(
        &self,
        t: &Template,
        bytes: Zeroizing<Vec<u8>>,
        origin: Origin,
        base: Option<&Cached>,
    ) -> Result<NewObject> {
        let class = object::ObjectClass::from_ck(t.ulong(CKA_CLASS).unwrap_or(
            if origin == Origin::Unwrapped {
                u64::MAX
            } else {
                CKO_SECRET_KEY
            },
        ))
        .map_err(|_| {
            Error::new(
                Rv::TemplateIncomplete,
                "CKA_CLASS (private or secret key) is required",
            )
        })?;
        let ckk = t
            .ulong(CKA_KEY_TYPE)
            .ok_or_else(|| Error::new(Rv::TemplateIncomplete, "CKA_KEY_TYPE is required"))?;
        check_creation_template(class, t, false)?;
        let (alg, public, value_len) = match class {
            ObjectClass::SecretKey => {
                let alg = object::alg_from_template(ckk, t)?;
                let mut bytes_len = bytes.len();
                if let Some(l) = t.ulong(CKA_VALUE_LEN) {
                    if origin == Origin::Unwrapped && l as usize != bytes_len {
                        return Err(Error::new(
                            Rv::TemplateInconsistent,
                            "CKA_VALUE_LEN does not match the unwrapped key",
                        ));
                    }
                    bytes_len = l as usize;
                }
                super::import::check_secret_len(alg, bytes_len).map_err(|e| {
                    if origin == Origin::Unwrapped {
                        Error::new(Rv::WrappedKeyInvalid, e.detail().to_owned())
                    } else {
                        e
                    }
                })?;
                (alg, None, Some(bytes_len as u64))
            }
            ObjectClass::PrivateKey => {
                let alg = crypto::detect_private(&bytes).map_err(|_| {
                    Error::new(
                        Rv::WrappedKeyInvalid,
                        "the unwrapped bytes are not a PKCS#8 private key",
                    )
                })?;
                if object::alg_to_ckk(alg) != ckk {
                    return Err(Error::new(
                        Rv::TemplateInconsistent,
                        "the unwrapped key is not of CKA_KEY_TYPE",
                    ));
                }
                (
                    alg,
                    Some(crypto::public_info_from_private(alg, &bytes)?),
                    None,
                )
            }
            _ => {
                return Err(Error::new(
                    Rv::TemplateInconsistent,
                    "only private and secret keys can be unwrapped or derived",
                ))
            }
        };
        let bytes = match value_len {
            Some(l) if (l as usize) < bytes.len() => Zeroizing::new(bytes[..l as usize].to_vec()),
            _ => bytes,
        };
        let mut flags = new_key_flags(class, alg, t, origin)?;
        if let Some(b) = base {
            flags.always_sensitive = b.rec.flags.always_sensitive && flags.sensitive;
            flags.never_extractable = b.rec.flags.never_extractable && !flags.extractable;
        }
        let mut rec = object::ObjectRecord {
            class,
            alg: Some(alg),
            label: t.string(CKA_LABEL)?.unwrap_or_default(),
            ckaid: t.bytes(CKA_ID).unwrap_or_default().to_vec(),
            uuid: uuid::Uuid::new_v4().to_string(),
            created: now_ns() / 1_000_000_000,
            flags,
            origin,
            key_gen_mechanism: None,
            value_len,
            public,
            subject: t.bytes(CKA_SUBJECT).unwrap_or_default().to_vec(),
            start_date: t.bytes(CKA_START_DATE).unwrap_or_default().to_vec(),
            end_date: t.bytes(CKA_END_DATE).unwrap_or_default().to_vec(),
            cert: None,
            data: None,
            policy: None,
            password: None,
            allowed_mechanisms: object::allowed_mechanisms(t)?,
        };
        if let Some(json) = t.bytes(CKA_TRESOR_POLICY) {
            if rec.flags.extractable {
                return Err(Error::new(
                    Rv::TemplateInconsistent,
                    "a key with an approval policy cannot be extractable",
                ));
            }
            rec.policy = Some(crate::policy::Policy::from_json(json)?);
        }
        let unique = unique_mask(t)?;
        rec.password = self.key_password_from_template(class, t).await?;
        Ok(NewObject {
            rec,
            secret: Some(KeyMaterial(bytes)),
            unique,
        })
    }

    /// Block an SKA key: it then refuses sign, decrypt and unwrap.
    pub async fn block_key(&self, key: ObjectId) -> Result<()> {
        self.set_blocked(key, true).await
    }

    /// Unblock an SKA key.
    pub async fn unblock_key(&self, key: ObjectId) -> Result<()> {
        self.set_blocked(key, false).await
    }

    async fn set_blocked(&self, key: ObjectId, blocked: bool) -> Result<()> {
        self.require_user()?;
        let c = self.object(key).await?;
        self.key_unlocked(&c)?;
        let Some(p) = c.rec.policy.as_ref() else {
            return Err(Error::new(
                Rv::KeyFunctionNotPermitted,
                "only keys with an approval policy can be blocked",
            ));
        };
        let kind = if blocked {
            RuleKind::Block
        } else {
            RuleKind::Unblock
        };
        if p.requires_approval(kind) {
            return Err(Error::new(
                Rv::Vendor(vendor::APPROVAL_REQUIRED),
                format!(
                    "key {key} needs approvals to {}",
                    if blocked { "block" } else { "unblock" }
                ),
            ));
        }
        let mut rec = c.rec.clone();
        if let Some(p) = rec.policy.as_mut() {
            p.key_status.blocked = blocked;
        }
        self.update_record(
            &c,
            rec,
            if blocked { "key.block" } else { "key.unblock" },
            serde_json::json!({}),
        )
        .await
    }

    /// Replace the approval policy of an SKA key (`policy_json`, Securosys JSON). Keys created
    /// without a policy never get one; a key whose modify rule needs approvals refuses (until
    /// approvals can be verified); `modifiable` governs attributes, not the policy. The blocked
    /// state changes only by block and unblock: a `keyStatus` in the new policy must state the
    /// key's current one (absent keeps it), and a blocked key's new policy needs a
    /// `ruleUnblock`. The change is audited and shows in the key's attestation.
    pub async fn modify_policy(&self, key: ObjectId, policy_json: &[u8]) -> Result<()> {
        self.require_user()?;
        let c = self.object(key).await?;
        self.key_unlocked(&c)?;
        let Some(current) = c.rec.policy.as_ref() else {
            return Err(Error::new(
                Rv::KeyFunctionNotPermitted,
                format!("key {key} was created without a policy and can never get one"),
            ));
        };
        if current.requires_approval(RuleKind::Modify) {
            return Err(Error::new(
                Rv::Vendor(vendor::APPROVAL_REQUIRED),
                format!("key {key} needs approvals to change its policy; approval-gated operations are not available yet"),
            ));
        }
        let raw: serde_json::Value = serde_json::from_slice(policy_json)
            .map_err(|e| Error::new(Rv::AttributeValueInvalid, format!("policy JSON: {e}")))?;
        let stated = raw
            .get("keyStatus")
            .filter(|v| !v.is_null())
            .map(|s| s.get("blocked").and_then(serde_json::Value::as_bool));
        let mut next = crate::policy::Policy::from_json(policy_json).or_else(|e| {
            // A blocked key's status is applied below; validate the rules on their own.
            let mut v = raw.clone();
            if let Some(o) = v.as_object_mut() {
                o.remove("keyStatus");
            }
            serde_json::to_vec(&v)
                .map_err(|_| e.clone())
                .and_then(|b| crate::policy::Policy::from_json(&b))
        })?;
        let blocked = current.key_status.blocked;
        match stated {
            Some(Some(b)) if b != blocked => {
                return Err(Error::new(
                    Rv::TemplateInconsistent,
                    format!(
                        "keyStatus.blocked is {b} but key {key} is {}; block and unblock change it",
                        if blocked { "blocked" } else { "not blocked" }
                    ),
                ))
            }
            Some(None) => {
                return Err(Error::new(
                    Rv::AttributeValueInvalid,
                    "policy keyStatus needs a boolean blocked",
                ))
            }
            _ => {}
        }
        next.key_status.blocked = blocked;
        next.validate()?;
        let mut rec = c.rec.clone();
        rec.policy = Some(next);
        let detail = serde_json::json!({"policy": rec.policy.as_ref().map(|p| p.to_json())});
        self.update_record(&c, rec, "key.modify_policy", detail)
            .await
    }

    /// The attestation of a key: the XML document, its signature by the partition's
    /// attestation key, and the certificate chain up to (not including) the cluster root.
    pub async fn attest(&self, key: ObjectId) -> Result<Attestation> {
        let c = self.object(key).await?;
        if !c.rec.class.is_key() {
            return Err(Error::new(Rv::KeyHandleInvalid, "only keys are attested"));
        }
        self.key_unlocked(&c)?;
        let xml = attest::attestation_xml(&c.rec, c.usage(), now_ns() / 1_000_000_000);
        let signature = attest::sign_document(&self.part.attest_key, xml.as_bytes())?;
        let un = self.engine.unsealed()?;
        let chain_pem = format!(
            "{}{}",
            attest::pem(&self.part.attest_cert)?,
            attest::pem(&un.node_cert)?
        );
        Ok(Attestation {
            xml,
            signature,
            chain_pem,
            attestation_key_name: attest::ATTESTATION_KEY_NAME,
        })
    }

    /// `C_Digest`.
    pub fn digest(&self, h: HashAlg, data: &[u8]) -> Result<Vec<u8>> {
        self.check_live()?;
        crypto::digest(h, data)
    }

    /// `C_GenerateRandom`.
    pub fn random(&self, len: usize) -> Result<Zeroizing<Vec<u8>>> {
        self.check_live()?;
        crypto::random(len)
    }
}

/// ML-KEM ciphertext lengths (FIPS 203).
fn mlkem_ct_len(p: MlKemParam) -> usize {
    match p {
        MlKemParam::MlKem512 => 768,
        MlKemParam::MlKem768 => 1088,
        MlKemParam::MlKem1024 => 1568,
    }
}
