//! Object management on a context: create (import), generate, copy, destroy, read and change
//! attributes, find.

use std::sync::Arc;

use tresor_store::{Mutation, ObjectFilter};
use zeroize::Zeroizing;

use super::context::{Context, UserType};
use super::import;
use super::partition::{random_id, Cached, LabelClaim};
use super::store_err;
use crate::audit::{now_ns, EntryContent};
use crate::ck::*;
use crate::crypto::{self, KeyAlg, KeyMaterial, KeyPairParams, PublicInfo};
use crate::error::{Error, Result, Rv};
use crate::object::{
    self, alg_from_template, apply_set_template, check_creation_template, new_key_flags, AttrRead,
    CertInfo, DataInfo, Flags, ObjectClass, ObjectId, ObjectRecord, Origin,
};
use crate::policy::Policy;
use crate::template::Template;

/// A new object before it is stored.
pub(crate) struct NewObject {
    pub rec: ObjectRecord,
    pub secret: Option<KeyMaterial>,
    /// `CKA_TRESOR_UNIQUE_LABEL`: classes (bit `1 << CKO_*`) whose existing token objects
    /// must not carry this object's label; 0 = no condition.
    pub unique: u64,
}

/// Every class bit `CKA_TRESOR_UNIQUE_LABEL` may name.
const UNIQUE_CLASSES: u64 = (1 << CKO_DATA)
    | (1 << CKO_CERTIFICATE)
    | (1 << CKO_PUBLIC_KEY)
    | (1 << CKO_PRIVATE_KEY)
    | (1 << CKO_SECRET_KEY);

/// The `CKA_TRESOR_UNIQUE_LABEL` condition of a creation template (0 if absent). Only token
/// objects can carry it, and only class bits the engine knows.
pub(crate) fn unique_mask(t: &Template) -> Result<u64> {
    let Some(mask) = t.ulong(CKA_TRESOR_UNIQUE_LABEL) else {
        return Ok(0);
    };
    if mask == 0 || mask & !UNIQUE_CLASSES != 0 {
        return Err(Error::new(
            Rv::AttributeValueInvalid,
            format!("CKA_TRESOR_UNIQUE_LABEL {mask:#x} names no class or an unknown one"),
        ));
    }
    if t.bool(CKA_TOKEN) != Some(true) {
        return Err(Error::new(
            Rv::TemplateInconsistent,
            "CKA_TRESOR_UNIQUE_LABEL applies to token objects (CKA_TOKEN = true)",
        ));
    }
    Ok(mask)
}

fn base_record(
    class: ObjectClass,
    alg: Option<KeyAlg>,
    t: &Template,
    flags: Flags,
    origin: Origin,
) -> Result<ObjectRecord> {
    Ok(ObjectRecord {
        class,
        alg,
        label: t.string(CKA_LABEL)?.unwrap_or_default(),
        ckaid: t.bytes(CKA_ID).unwrap_or_default().to_vec(),
        uuid: uuid::Uuid::new_v4().to_string(),
        created: now_ns() / 1_000_000_000,
        flags,
        origin,
        key_gen_mechanism: None,
        value_len: None,
        public: None,
        subject: t.bytes(CKA_SUBJECT).unwrap_or_default().to_vec(),
        start_date: t.bytes(CKA_START_DATE).unwrap_or_default().to_vec(),
        end_date: t.bytes(CKA_END_DATE).unwrap_or_default().to_vec(),
        cert: None,
        data: None,
        policy: None,
        password: None,
        allowed_mechanisms: if class.is_key() {
            object::allowed_mechanisms(t)?
        } else {
            Vec::new()
        },
    })
}

/// Read `CKA_TRESOR_POLICY` (and `CKA_TRESOR_BLOCKED`) and enforce "SKA keys are never
/// extractable".
fn apply_policy(rec: &mut ObjectRecord, t: &Template) -> Result<()> {
    let Some(json) = t.bytes(CKA_TRESOR_POLICY) else {
        if t.bool(CKA_TRESOR_BLOCKED) == Some(true) {
            return Err(Error::new(
                Rv::TemplateInconsistent,
                "only a key with an approval policy can be blocked",
            ));
        }
        return Ok(());
    };
    let mut p = Policy::from_json(json)?;
    if let Some(b) = t.bool(CKA_TRESOR_BLOCKED) {
        p.key_status.blocked = b;
        p.validate()?;
    }
    if !rec.class.has_secret() {
        return Err(Error::new(
            Rv::TemplateInconsistent,
            "an approval policy belongs on a private or secret key",
        ));
    }
    if rec.flags.extractable {
        return Err(Error::new(
            Rv::TemplateInconsistent,
            "a key with an approval policy cannot be extractable",
        ));
    }
    rec.policy = Some(p);
    Ok(())
}

fn check_class_in_template(t: &Template, class: ObjectClass) -> Result<()> {
    if let Some(c) = t.ulong(CKA_CLASS) {
        if c != class.ck() {
            return Err(Error::new(
                Rv::TemplateInconsistent,
                "CKA_CLASS does not match the operation",
            ));
        }
    }
    Ok(())
}

fn check_key_type_in_template(t: &Template, ckk: u64) -> Result<()> {
    if let Some(k) = t.ulong(CKA_KEY_TYPE) {
        if k != ckk {
            return Err(Error::new(
                Rv::TemplateInconsistent,
                "CKA_KEY_TYPE does not match the mechanism",
            ));
        }
    }
    Ok(())
}

impl Context {
    /// The object behind a handle, if this context may see it (private objects need the user).
    pub(crate) async fn object(&self, oid: ObjectId) -> Result<Arc<Cached>> {
        self.check_live()?;
        let c = if oid < 0 {
            self.session_objects
                .read()
                .get(&oid)
                .cloned()
                .ok_or_else(|| {
                    Error::new(
                        Rv::ObjectHandleInvalid,
                        format!("object {oid} does not exist"),
                    )
                })?
        } else {
            self.part.object(&self.engine, oid).await?
        };
        if c.rec.flags.private && self.logged_in() != Some(UserType::User) {
            return Err(Error::new(
                Rv::ObjectHandleInvalid,
                format!("object {oid} does not exist"),
            ));
        }
        Ok(c)
    }

    fn check_may_create(&self, rec: &ObjectRecord) -> Result<()> {
        match self.logged_in() {
            Some(UserType::User) => Ok(()),
            // PKCS#11: the SO and public sessions may only create public objects.
            _ if !rec.flags.private && !rec.class.has_secret() => Ok(()),
            _ => Err(Error::new(
                Rv::UserNotLoggedIn,
                "creating private objects needs the user to be logged in",
            )),
        }
    }

    /// [`Self::store_new`] of one object: its id.
    pub(crate) async fn store_one(
        &self,
        obj: NewObject,
        action: &'static str,
        detail: serde_json::Value,
    ) -> Result<ObjectId> {
        self.store_new(vec![obj], action, detail)
            .await?
            .first()
            .copied()
            .ok_or_else(|| Error::new(Rv::GeneralError, "no object id"))
    }

    /// Store new objects (token objects in one transaction with their audit entry; session
    /// objects in this context). Returns their handles in order.
    pub(crate) async fn store_new(
        &self,
        objs: Vec<NewObject>,
        action: &'static str,
        detail: serde_json::Value,
    ) -> Result<Vec<ObjectId>> {
        for o in &objs {
            self.check_may_create(&o.rec)?;
        }
        let mut ids = Vec::with_capacity(objs.len());
        let mut mutations = Vec::new();
        let mut changes = Vec::new();
        let mut session = Vec::new();
        for o in &objs {
            if o.rec.flags.token {
                let oid = random_id()?;
                mutations.push(Mutation::InsertObject(self.part.object_row(
                    oid,
                    1,
                    &o.rec,
                    o.secret.as_ref(),
                    0,
                )?));
                changes.push((oid, 0, 1));
                ids.push(oid);
            } else {
                let oid = Context::new_session_id();
                session.push(oid);
                ids.push(oid);
            }
        }
        let claims: Vec<LabelClaim> = objs
            .iter()
            .filter(|o| o.unique != 0)
            .map(|o| LabelClaim {
                label: o.rec.label.clone(),
                classes: o.unique,
            })
            .collect();
        let mut built = Vec::new();
        for (o, oid) in objs.into_iter().zip(ids.iter()) {
            if !o.rec.flags.token {
                built.push(Arc::new(Cached::new(*oid, 1, o.rec, o.secret, 0)?));
            }
        }
        if mutations.is_empty() {
            // Session objects only: no durable state changes, so the event is counted with the
            // queued key uses (and, like them, refused if the audit log cannot take it).
            self.part.audit_ready(&self.engine, &self.buffer)?;
            for oid in &ids {
                self.part
                    .record_session_event(&self.buffer, self.actor(), action, *oid);
            }
        } else {
            let entry = EntryContent::now(self.actor(), action, ids.first().copied(), {
                let mut d = detail;
                d["objects"] = serde_json::json!(ids);
                d.to_string()
            });
            self.part
                .commit_claimed(&self.engine, mutations, vec![entry], Some(changes), &claims)
                .await?;
        }
        let mut so = self.session_objects.write();
        if !built.is_empty() {
            self.had_session_objects
                .store(true, std::sync::atomic::Ordering::Release);
        }
        for c in built {
            so.insert(c.oid, c);
        }
        Ok(ids)
    }

    /// `C_CreateObject`: import a key, certificate or data object.
    pub async fn create_object(&self, t: &Template) -> Result<ObjectId> {
        self.check_live()?;
        let class = ObjectClass::from_ck(
            t.ulong(CKA_CLASS)
                .ok_or_else(|| Error::new(Rv::TemplateIncomplete, "CKA_CLASS is required"))?,
        )?;
        check_creation_template(class, t, true)?;
        let obj = match class {
            ObjectClass::Data => {
                let flags = Flags {
                    token: t.bool(CKA_TOKEN).unwrap_or(false),
                    private: t.bool(CKA_PRIVATE).unwrap_or(true),
                    modifiable: t.bool(CKA_MODIFIABLE).unwrap_or(true),
                    copyable: t.bool(CKA_COPYABLE).unwrap_or(true),
                    destroyable: t.bool(CKA_DESTROYABLE).unwrap_or(true),
                    ..Flags::default()
                };
                let mut rec = base_record(class, None, t, flags, Origin::Imported)?;
                rec.data = Some(DataInfo {
                    application: t.bytes(CKA_APPLICATION).unwrap_or_default().to_vec(),
                    object_id: t.bytes(CKA_OBJECT_ID).unwrap_or_default().to_vec(),
                    value: t.bytes(CKA_VALUE).unwrap_or_default().to_vec(),
                });
                NewObject {
                    rec,
                    secret: None,
                    unique: unique_mask(t)?,
                }
            }
            ObjectClass::Certificate => {
                if let Some(ct) = t.ulong(CKA_CERTIFICATE_TYPE) {
                    if ct != CKC_X_509 {
                        return Err(Error::new(
                            Rv::AttributeValueInvalid,
                            "only X.509 certificates are supported",
                        ));
                    }
                }
                let der = t.bytes(CKA_VALUE).ok_or_else(|| {
                    Error::new(
                        Rv::TemplateIncomplete,
                        "CKA_VALUE (the DER certificate) is required",
                    )
                })?;
                let x = openssl::x509::X509::from_der(der).map_err(|_| {
                    Error::new(
                        Rv::AttributeValueInvalid,
                        "CKA_VALUE is not a DER X.509 certificate",
                    )
                })?;
                let flags = Flags {
                    token: t.bool(CKA_TOKEN).unwrap_or(false),
                    private: t.bool(CKA_PRIVATE).unwrap_or(false),
                    modifiable: t.bool(CKA_MODIFIABLE).unwrap_or(true),
                    copyable: t.bool(CKA_COPYABLE).unwrap_or(true),
                    destroyable: t.bool(CKA_DESTROYABLE).unwrap_or(true),
                    ..Flags::default()
                };
                let mut rec = base_record(class, None, t, flags, Origin::Imported)?;
                rec.cert = Some(CertInfo {
                    value: der.to_vec(),
                    subject: x.subject_name().to_der()?,
                    issuer: x.issuer_name().to_der()?,
                    serial: x.serial_number().to_bn()?.to_vec(),
                    category: t.ulong(CKA_CERTIFICATE_CATEGORY).unwrap_or(0),
                });
                NewObject {
                    rec,
                    secret: None,
                    unique: unique_mask(t)?,
                }
            }
            _ => {
                let ckk = t.ulong(CKA_KEY_TYPE).ok_or_else(|| {
                    Error::new(Rv::TemplateIncomplete, "CKA_KEY_TYPE is required")
                })?;
                let alg = match class {
                    // The curve / parameter set may come from the key itself for PKCS#8 imports.
                    ObjectClass::PrivateKey
                        if t.has(CKA_TRESOR_PKCS8)
                            && !t.has(CKA_EC_PARAMS)
                            && !t.has(CKA_PARAMETER_SET) =>
                    {
                        let a =
                            crypto::detect_private(t.bytes(CKA_TRESOR_PKCS8).unwrap_or_default())?;
                        if object::alg_to_ckk(a) != ckk {
                            return Err(Error::new(
                                Rv::TemplateInconsistent,
                                "the PKCS#8 key is not of CKA_KEY_TYPE",
                            ));
                        }
                        a
                    }
                    ObjectClass::PublicKey
                        if t.has(CKA_PUBLIC_KEY_INFO)
                            && !t.has(CKA_EC_PARAMS)
                            && !t.has(CKA_PARAMETER_SET) =>
                    {
                        let (a, _) = crypto::detect_public(
                            t.bytes(CKA_PUBLIC_KEY_INFO).unwrap_or_default(),
                        )?;
                        a
                    }
                    _ => alg_from_template(ckk, t)?,
                };
                let flags = new_key_flags(class, alg, t, Origin::Imported)?;
                let mut rec = base_record(class, Some(alg), t, flags, Origin::Imported)?;
                let secret = match class {
                    ObjectClass::PrivateKey => {
                        let (m, info) = import::private_from_template(alg, t)?;
                        rec.public = Some(info);
                        Some(m)
                    }
                    ObjectClass::PublicKey => {
                        rec.public = Some(import::public_from_template(alg, t)?);
                        None
                    }
                    _ => {
                        let v = t.bytes(CKA_VALUE).ok_or_else(|| {
                            Error::new(
                                Rv::TemplateIncomplete,
                                "CKA_VALUE is required for a secret key",
                            )
                        })?;
                        import::check_secret_len(alg, v.len()).map_err(|e| {
                            Error::new(Rv::AttributeValueInvalid, e.detail().to_owned())
                        })?;
                        if let Some(l) = t.ulong(CKA_VALUE_LEN) {
                            if l != v.len() as u64 {
                                return Err(Error::new(
                                    Rv::TemplateInconsistent,
                                    "CKA_VALUE_LEN does not match CKA_VALUE",
                                ));
                            }
                        }
                        rec.value_len = Some(v.len() as u64);
                        Some(KeyMaterial(Zeroizing::new(v.to_vec())))
                    }
                };
                apply_policy(&mut rec, t)?;
                let unique = unique_mask(t)?;
                rec.password = self.key_password_from_template(class, t).await?;
                NewObject {
                    rec,
                    secret,
                    unique,
                }
            }
        };
        self.store_one(
            obj,
            "object.create",
            serde_json::json!({"class": class.ck()}),
        )
        .await
    }

    /// `C_GenerateKey`: a secret key (`CKM_AES_KEY_GEN`, `CKM_GENERIC_SECRET_KEY_GEN`,
    /// `CKM_CHACHA20_KEY_GEN`).
    pub async fn generate_key(&self, mechanism: u64, t: &Template) -> Result<ObjectId> {
        self.require_user()?;
        let alg = match mechanism {
            CKM_AES_KEY_GEN => KeyAlg::Aes,
            CKM_GENERIC_SECRET_KEY_GEN => KeyAlg::GenericSecret,
            CKM_CHACHA20_KEY_GEN => KeyAlg::ChaCha20,
            m => {
                return Err(Error::new(
                    Rv::MechanismInvalid,
                    format!("mechanism {m:#x} does not generate secret keys"),
                ))
            }
        };
        check_class_in_template(t, ObjectClass::SecretKey)?;
        check_key_type_in_template(t, object::alg_to_ckk(alg))?;
        check_creation_template(ObjectClass::SecretKey, t, false)?;
        let len = match (alg, t.ulong(CKA_VALUE_LEN)) {
            (KeyAlg::ChaCha20, None) => 32,
            (_, Some(l)) => usize::try_from(l)
                .map_err(|_| Error::new(Rv::KeySizeRange, "CKA_VALUE_LEN too large"))?,
            (_, None) => {
                return Err(Error::new(
                    Rv::TemplateIncomplete,
                    "CKA_VALUE_LEN is required",
                ))
            }
        };
        import::check_secret_len(alg, len)?;
        let flags = new_key_flags(ObjectClass::SecretKey, alg, t, Origin::Generated)?;
        let mut rec = base_record(
            ObjectClass::SecretKey,
            Some(alg),
            t,
            flags,
            Origin::Generated,
        )?;
        rec.key_gen_mechanism = Some(mechanism);
        rec.value_len = Some(len as u64);
        apply_policy(&mut rec, t)?;
        let unique = unique_mask(t)?;
        rec.password = self
            .key_password_from_template(ObjectClass::SecretKey, t)
            .await?;
        let secret = crypto::generate_secret(alg, len)?;
        self.store_one(
            NewObject {
                rec,
                secret: Some(secret),
                unique,
            },
            "key.generate",
            serde_json::json!({"mechanism": mechanism}),
        )
        .await
    }

    /// `C_GenerateKeyPair`: returns (public, private) handles.
    pub async fn generate_key_pair(
        &self,
        mechanism: u64,
        pub_t: &Template,
        priv_t: &Template,
    ) -> Result<(ObjectId, ObjectId)> {
        self.require_user()?;
        check_class_in_template(pub_t, ObjectClass::PublicKey)?;
        check_class_in_template(priv_t, ObjectClass::PrivateKey)?;
        let ckk = match mechanism {
            CKM_RSA_PKCS_KEY_PAIR_GEN => CKK_RSA,
            CKM_EC_KEY_PAIR_GEN => CKK_EC,
            CKM_EC_EDWARDS_KEY_PAIR_GEN => CKK_EC_EDWARDS,
            CKM_ML_DSA_KEY_PAIR_GEN => CKK_ML_DSA,
            CKM_ML_KEM_KEY_PAIR_GEN => CKK_ML_KEM,
            CKM_SLH_DSA_KEY_PAIR_GEN => CKK_SLH_DSA,
            m => {
                return Err(Error::new(
                    Rv::MechanismInvalid,
                    format!("mechanism {m:#x} does not generate key pairs"),
                ))
            }
        };
        check_key_type_in_template(pub_t, ckk)?;
        check_key_type_in_template(priv_t, ckk)?;
        // Domain parameters may be in either template (PKCS#11 puts them in the public one).
        let mut params = Template::new();
        for ty in [CKA_EC_PARAMS, CKA_PARAMETER_SET] {
            for t in [pub_t, priv_t] {
                if let Some((_, v)) = t.iter().find(|(k, _)| *k == ty) {
                    params.insert(ty, v.clone())?;
                }
            }
        }
        let alg = alg_from_template(ckk, &params)?;
        let mut pub_only = pub_t.clone();
        pub_only.take(CKA_MODULUS_BITS);
        pub_only.take(CKA_PUBLIC_EXPONENT);
        pub_only.take(CKA_EC_PARAMS);
        pub_only.take(CKA_PARAMETER_SET);
        let mut priv_only = priv_t.clone();
        priv_only.take(CKA_EC_PARAMS);
        priv_only.take(CKA_PARAMETER_SET);
        check_creation_template(ObjectClass::PublicKey, &pub_only, false)?;
        check_creation_template(ObjectClass::PrivateKey, &priv_only, false)?;
        let kp = KeyPairParams {
            modulus_bits: match ckk {
                CKK_RSA => Some(
                    u32::try_from(pub_t.ulong(CKA_MODULUS_BITS).ok_or_else(|| {
                        Error::new(Rv::TemplateIncomplete, "CKA_MODULUS_BITS is required")
                    })?)
                    .map_err(|_| Error::new(Rv::KeySizeRange, "CKA_MODULUS_BITS too large"))?,
                ),
                _ => None,
            },
            public_exponent: pub_t.bytes(CKA_PUBLIC_EXPONENT).map(|b| b.to_vec()),
        };
        let pub_flags = new_key_flags(ObjectClass::PublicKey, alg, pub_t, Origin::Generated)?;
        let priv_flags = new_key_flags(ObjectClass::PrivateKey, alg, priv_t, Origin::Generated)?;
        let mut pub_rec = base_record(
            ObjectClass::PublicKey,
            Some(alg),
            pub_t,
            pub_flags,
            Origin::Generated,
        )?;
        let mut priv_rec = base_record(
            ObjectClass::PrivateKey,
            Some(alg),
            priv_t,
            priv_flags,
            Origin::Generated,
        )?;
        apply_policy(&mut priv_rec, priv_t)?;
        let pub_unique = unique_mask(&pub_only)?;
        let priv_unique = unique_mask(&priv_only)?;
        priv_rec.password = self
            .key_password_from_template(ObjectClass::PrivateKey, priv_t)
            .await?;
        // RSA and SLH-DSA generation take milliseconds to seconds: keep them off the async
        // threads. The others take microseconds, less than a hop to the blocking pool.
        let (material, info): (KeyMaterial, PublicInfo) =
            if matches!(alg, KeyAlg::Rsa | KeyAlg::SlhDsa(_)) {
                tokio::task::spawn_blocking(move || crypto::generate_key_pair(alg, &kp))
                    .await
                    .map_err(|e| {
                        Error::new(Rv::GeneralError, format!("key generation task: {e}"))
                    })??
            } else {
                crypto::generate_key_pair(alg, &kp)?
            };
        pub_rec.key_gen_mechanism = Some(mechanism);
        priv_rec.key_gen_mechanism = Some(mechanism);
        pub_rec.public = Some(info.clone());
        priv_rec.public = Some(info);
        let ids = self
            .store_new(
                vec![
                    NewObject {
                        rec: pub_rec,
                        secret: None,
                        unique: pub_unique,
                    },
                    NewObject {
                        rec: priv_rec,
                        secret: Some(material),
                        unique: priv_unique,
                    },
                ],
                "key.generate_pair",
                serde_json::json!({"mechanism": mechanism}),
            )
            .await?;
        match ids.as_slice() {
            [p, s] => Ok((*p, *s)),
            _ => Err(Error::new(Rv::GeneralError, "key pair ids")),
        }
    }

    /// `C_DestroyObject`.
    pub async fn destroy_object(&self, oid: ObjectId) -> Result<()> {
        let c = self.object(oid).await?;
        self.check_may_create(&c.rec)?;
        self.key_unlocked(&c)?;
        if !c.rec.flags.destroyable {
            return Err(Error::new(
                Rv::ActionProhibited,
                "the object is not destroyable (CKA_DESTROYABLE = false)",
            ));
        }
        if oid < 0 {
            self.part.audit_ready(&self.engine, &self.buffer)?;
            self.part
                .record_session_event(&self.buffer, self.actor(), "object.destroy", oid);
            self.session_objects.write().remove(&oid);
        } else {
            let entry = EntryContent::now(
                self.actor(),
                "object.destroy",
                Some(oid),
                serde_json::json!({"label": c.rec.label}).to_string(),
            );
            let m = vec![Mutation::DeleteObject {
                partition_id: self.part.id,
                object_id: oid,
                expected_version: c.version,
            }];
            self.part
                .commit(
                    &self.engine,
                    m,
                    vec![entry],
                    Some(vec![(oid, c.version, 0)]),
                )
                .await?;
        }
        Ok(())
    }

    /// Replace an object's record (token objects: new version, one transaction).
    pub(crate) async fn update_record(
        &self,
        c: &Cached,
        rec: ObjectRecord,
        action: &'static str,
        detail: serde_json::Value,
    ) -> Result<()> {
        if c.oid < 0 {
            self.part.audit_ready(&self.engine, &self.buffer)?;
            self.part
                .record_session_event(&self.buffer, self.actor(), action, c.oid);
            let secret = c.secret.as_ref().map(|s| KeyMaterial(s.0.clone()));
            let n = Arc::new(Cached::new(c.oid, c.version + 1, rec, secret, c.usage())?);
            self.session_objects.write().insert(c.oid, n);
        } else {
            let entry = EntryContent::now(self.actor(), action, Some(c.oid), detail.to_string());
            let v = c.version + 1;
            let row = self.part.object_row(c.oid, v, &rec, c.secret.as_ref(), 0)?;
            let m = vec![Mutation::UpdateObject {
                row,
                expected_version: c.version,
            }];
            self.part
                .commit(
                    &self.engine,
                    m,
                    vec![entry],
                    Some(vec![(c.oid, c.version, v)]),
                )
                .await?;
        }
        Ok(())
    }

    /// `C_SetAttributeValue`.
    pub async fn set_attributes(&self, oid: ObjectId, t: &Template) -> Result<()> {
        let c = self.object(oid).await?;
        let is_so = self.logged_in() == Some(UserType::SecurityOfficer);
        if c.rec.flags.private || c.rec.class.has_secret() {
            self.require_user()?;
        } else if self.logged_in().is_none() {
            return Err(Error::new(Rv::UserNotLoggedIn, "log in to change objects"));
        }
        self.key_unlocked(&c)?;
        let mut rec = c.rec.clone();
        apply_set_template(&mut rec, t, is_so)?;
        let names: Vec<String> = t.types().map(|ty| format!("{ty:#x}")).collect();
        self.update_record(
            &c,
            rec,
            "object.set_attributes",
            serde_json::json!({"attributes": names}),
        )
        .await
    }

    /// `C_CopyObject`: a copy with some attributes changed (`CKA_TOKEN`, `CKA_PRIVATE`,
    /// `CKA_MODIFIABLE` true→false, and what `C_SetAttributeValue` allows).
    pub async fn copy_object(&self, oid: ObjectId, t: &Template) -> Result<ObjectId> {
        let c = self.object(oid).await?;
        self.key_unlocked(&c)?;
        if !c.rec.flags.copyable {
            return Err(Error::new(
                Rv::ActionProhibited,
                "the object is not copyable (CKA_COPYABLE = false)",
            ));
        }
        let mut rec = c.rec.clone();
        let mut rest = t.clone();
        if let Some(v) = rest.bool(CKA_TOKEN) {
            rec.flags.token = v;
            rest.take(CKA_TOKEN);
        }
        if let Some(v) = rest.bool(CKA_PRIVATE) {
            if c.rec.class.has_secret() && !v {
                return Err(Error::new(
                    Rv::TemplateInconsistent,
                    "a private or secret key cannot become a public object",
                ));
            }
            rec.flags.private = v;
            rest.take(CKA_PRIVATE);
        }
        let make_unmodifiable = match rest.bool(CKA_MODIFIABLE) {
            Some(true) if !c.rec.flags.modifiable => {
                return Err(Error::new(
                    Rv::AttributeReadOnly,
                    "CKA_MODIFIABLE can only change from true to false",
                ))
            }
            Some(v) => {
                rest.take(CKA_MODIFIABLE);
                !v
            }
            None => false,
        };
        if !rest.is_empty() {
            let was = rec.flags.modifiable;
            rec.flags.modifiable = true;
            apply_set_template(
                &mut rec,
                &rest,
                self.logged_in() == Some(UserType::SecurityOfficer),
            )?;
            rec.flags.modifiable = was;
        }
        if make_unmodifiable {
            rec.flags.modifiable = false;
        }
        rec.uuid = uuid::Uuid::new_v4().to_string();
        rec.created = now_ns() / 1_000_000_000;
        let secret = c.secret.as_ref().map(|s| KeyMaterial(s.0.clone()));
        self.store_one(
            NewObject {
                rec,
                secret,
                unique: 0,
            },
            "object.copy",
            serde_json::json!({"from": oid}),
        )
        .await
    }

    /// `C_GetAttributeValue`: one answer per requested type, in order.
    pub async fn get_attributes(&self, oid: ObjectId, types: &[u64]) -> Result<Vec<AttrRead>> {
        let c = self.object(oid).await?;
        types.iter().map(|ty| self.read_one(&c, *ty)).collect()
    }

    fn read_one(&self, c: &Cached, ty: u64) -> Result<AttrRead> {
        let r = object::read_attribute(&c.rec, c.usage(), ty);
        if r != AttrRead::Sensitive {
            return Ok(r);
        }
        // Secret values are readable only from non-sensitive, extractable keys, and from a
        // key with a password only with its password.
        if c.rec.flags.sensitive || !c.rec.flags.extractable || ty == CKA_TRESOR_KEY_PASSWORD {
            return Ok(AttrRead::Sensitive);
        }
        self.key_unlocked(c)?;
        Ok(self.read_secret(c, ty))
    }

    fn read_secret(&self, c: &Cached, ty: u64) -> AttrRead {
        let Some(secret) = c.secret.as_ref() else {
            return AttrRead::Invalid;
        };
        match (c.rec.class, ty) {
            (ObjectClass::SecretKey, CKA_VALUE) => AttrRead::Value(secret.expose().to_vec()),
            (ObjectClass::PrivateKey, _) => private_component(c.rec.alg, secret.expose(), ty),
            _ => AttrRead::Invalid,
        }
    }

    /// `C_FindObjects`: handles of the visible objects matching every attribute of `t`.
    pub async fn find_objects(&self, t: &Template, max: usize) -> Result<Vec<ObjectId>> {
        self.check_live()?;
        let user = self.logged_in() == Some(UserType::User);
        let visible = |c: &Cached| {
            (!c.rec.flags.private || user) && object::matches_template(&c.rec, c.usage(), t)
        };
        let mut out: Vec<ObjectId> = self
            .session_objects
            .read()
            .values()
            .filter(|c| visible(c))
            .map(|c| c.oid)
            .collect();
        out.sort_unstable_by(|a, b| b.cmp(a));
        if t.bool(CKA_TOKEN) == Some(false) {
            out.truncate(max);
            return Ok(out);
        }
        let filter = ObjectFilter {
            class: t.ulong(CKA_CLASS).and_then(|v| i64::try_from(v).ok()),
            key_type: t.ulong(CKA_KEY_TYPE).and_then(|v| i64::try_from(v).ok()),
            label: t.string(CKA_LABEL)?,
            ckaid: t.bytes(CKA_ID).map(|b| b.to_vec()),
            uuid: t.string(CKA_UNIQUE_ID)?,
            // When the lookup columns decide the match and every object is visible, the store
            // can stop at `max` rows instead of the engine opening every candidate.
            limit: if user
                && t.types().all(|ty| {
                    matches!(
                        ty,
                        CKA_CLASS | CKA_KEY_TYPE | CKA_LABEL | CKA_ID | CKA_UNIQUE_ID | CKA_TOKEN
                    )
                }) {
                u32::try_from(max.saturating_sub(out.len())).ok()
            } else {
                None
            },
            after: None,
        };
        let rows = self
            .engine
            .store
            .find_objects(self.part.id, &filter)
            .await
            .map_err(store_err)?;
        let mut synced = false;
        for row in rows {
            if out.len() >= max {
                break;
            }
            let cached = self.part.cache.read().get(&row.object_id).cloned();
            let c = match cached {
                Some(c) if c.version == row.version => c,
                _ => {
                    // Another node (or process) on the same store may have made or changed
                    // the object since this partition was read: bring the state up to date
                    // once before the row is checked against it.
                    let known = self.part.versions.read().get(&row.object_id) == Some(&row.version);
                    if !known && !synced {
                        self.part.sync(&self.engine).await?;
                        synced = true;
                    }
                    let c = Arc::new(self.part.open_row(&row)?);
                    self.part.cache_insert(&self.engine, c)
                }
            };
            if visible(&c) {
                out.push(c.oid);
            }
        }
        Ok(out)
    }

    /// The record of an object (for faces that report attributes in their own form).
    /// A key password's hash and lockout state are left out.
    pub async fn record(&self, oid: ObjectId) -> Result<(ObjectRecord, i64)> {
        let c = self.object(oid).await?;
        let mut rec = c.rec.clone();
        rec.password = None;
        Ok((rec, c.usage()))
    }
}

fn private_component(alg: Option<KeyAlg>, pk8: &[u8], ty: u64) -> AttrRead {
    let Ok(k) = openssl::pkey::PKey::private_key_from_pkcs8(pk8) else {
        return AttrRead::Invalid;
    };
    let v = match (alg, ty) {
        (Some(KeyAlg::Rsa), _) => k.rsa().ok().and_then(|r| match ty {
            CKA_PRIVATE_EXPONENT => Some(r.d().to_vec()),
            CKA_PRIME_1 => r.p().map(|b| b.to_vec()),
            CKA_PRIME_2 => r.q().map(|b| b.to_vec()),
            CKA_EXPONENT_1 => r.dmp1().map(|b| b.to_vec()),
            CKA_EXPONENT_2 => r.dmq1().map(|b| b.to_vec()),
            CKA_COEFFICIENT => r.iqmp().map(|b| b.to_vec()),
            _ => None,
        }),
        (Some(KeyAlg::Ec(_)), CKA_VALUE) => k.ec_key().ok().map(|e| e.private_key().to_vec()),
        (Some(KeyAlg::Ed(_)), CKA_VALUE) => k.raw_private_key().ok(),
        _ => None,
    };
    v.map(AttrRead::Value).unwrap_or(AttrRead::Invalid)
}
