//! Proptest strategies generating every request and response variant.
#![allow(dead_code)]

use proptest::prelude::*;
use proptest::strategy::Union;
use tresor_proto::{
    Attestation, AttrRead, AttrValue, Attribute, EcdhParams, GcmParams, HashAlg, KeyPassword,
    Mechanism, MechanismInfo, OaepParams, PartitionSummary, PssParams, Request, Response,
    SealedObject, Secret, Template, UserType,
};

pub fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..40)
}

pub fn secret() -> impl Strategy<Value = Secret> {
    bytes().prop_map(Secret::new)
}

pub fn string() -> impl Strategy<Value = String> {
    "\\PC{0,20}"
}

pub fn hash() -> impl Strategy<Value = HashAlg> {
    prop::sample::select(HashAlg::ALL)
}

pub fn user() -> impl Strategy<Value = UserType> {
    prop::sample::select(UserType::ALL)
}

pub fn pss() -> impl Strategy<Value = PssParams> {
    (hash(), hash(), any::<u64>()).prop_map(|(hash, mgf, salt_len)| PssParams {
        hash,
        mgf,
        salt_len,
    })
}

pub fn mechanism() -> BoxedStrategy<Mechanism> {
    Union::new(vec![
        Just(Mechanism::RsaPkcs {}).boxed(),
        Just(Mechanism::RsaX509 {}).boxed(),
        hash()
            .prop_map(|hash| Mechanism::RsaPkcsHash { hash })
            .boxed(),
        pss()
            .prop_map(|params| Mechanism::RsaPss { params })
            .boxed(),
        (hash(), pss())
            .prop_map(|(hash, params)| Mechanism::RsaPssHash { hash, params })
            .boxed(),
        (hash(), hash(), bytes())
            .prop_map(|(hash, mgf, label)| Mechanism::RsaOaep {
                params: OaepParams { hash, mgf, label },
            })
            .boxed(),
        Just(Mechanism::Ecdsa {}).boxed(),
        hash()
            .prop_map(|hash| Mechanism::EcdsaHash { hash })
            .boxed(),
        hash()
            .prop_map(|hash| Mechanism::EcdsaDeterministic { hash })
            .boxed(),
        Just(Mechanism::EcdsaDoubleSha256 {}).boxed(),
        Just(Mechanism::Eddsa {}).boxed(),
        bytes()
            .prop_map(|context| Mechanism::MlDsa { context })
            .boxed(),
        bytes()
            .prop_map(|context| Mechanism::SlhDsa { context })
            .boxed(),
        hash().prop_map(|hash| Mechanism::Hmac { hash }).boxed(),
        Just(Mechanism::AesEcb {}).boxed(),
        bytes().prop_map(|iv| Mechanism::AesCbc { iv }).boxed(),
        bytes().prop_map(|iv| Mechanism::AesCbcPad { iv }).boxed(),
        (bytes(), any::<u32>())
            .prop_map(|(iv, counter_bits)| Mechanism::AesCtr { iv, counter_bits })
            .boxed(),
        (bytes(), bytes(), any::<u32>())
            .prop_map(|(iv, aad, tag_bits)| Mechanism::AesGcm {
                params: GcmParams { iv, aad, tag_bits },
            })
            .boxed(),
        (bytes(), bytes())
            .prop_map(|(nonce, aad)| Mechanism::ChaCha20Poly1305 { nonce, aad })
            .boxed(),
        Just(Mechanism::AesKeyWrap {}).boxed(),
        Just(Mechanism::AesKeyWrapPad {}).boxed(),
        Just(Mechanism::MlKem {}).boxed(),
        (prop::option::of(hash()), bytes(), bytes())
            .prop_map(|(kdf, shared_data, public_data)| Mechanism::Ecdh1Derive {
                params: EcdhParams {
                    kdf,
                    shared_data,
                    public_data,
                },
            })
            .boxed(),
        hash().prop_map(|hash| Mechanism::Digest { hash }).boxed(),
    ])
    .boxed()
}

pub fn template() -> impl Strategy<Value = Template> {
    let value = prop_oneof![
        any::<bool>().prop_map(AttrValue::Bool),
        any::<u64>().prop_map(AttrValue::Ulong),
        secret().prop_map(AttrValue::Bytes),
    ];
    prop::collection::vec(
        (any::<u64>(), value).prop_map(|(ty, value)| Attribute { ty, value }),
        0..6,
    )
    .prop_map(Template)
}

/// Any request that does not wrap another one.
pub fn plain_request() -> BoxedStrategy<Request> {
    let h = any::<i64>;
    Union::new(vec![
        Just(Request::Ping {}).boxed(),
        string()
            .prop_map(|partition| Request::OpenSession { partition })
            .boxed(),
        Just(Request::CloseSession {}).boxed(),
        (user(), secret())
            .prop_map(|(user, pin)| Request::Login { user, pin })
            .boxed(),
        Just(Request::Logout {}).boxed(),
        secret()
            .prop_map(|new_pin| Request::InitPin { new_pin })
            .boxed(),
        (secret(), secret())
            .prop_map(|(old_pin, new_pin)| Request::SetPin { old_pin, new_pin })
            .boxed(),
        template()
            .prop_map(|template| Request::CreateObject { template })
            .boxed(),
        (any::<u64>(), template())
            .prop_map(|(mechanism, template)| Request::GenerateKey {
                mechanism,
                template,
            })
            .boxed(),
        (any::<u64>(), template(), template())
            .prop_map(
                |(mechanism, public_template, private_template)| Request::GenerateKeyPair {
                    mechanism,
                    public_template,
                    private_template,
                },
            )
            .boxed(),
        h().prop_map(|object| Request::DestroyObject { object })
            .boxed(),
        (h(), template())
            .prop_map(|(object, template)| Request::SetAttributes { object, template })
            .boxed(),
        (h(), template())
            .prop_map(|(object, template)| Request::CopyObject { object, template })
            .boxed(),
        (h(), prop::collection::vec(any::<u64>(), 0..8))
            .prop_map(|(object, types)| Request::GetAttributes { object, types })
            .boxed(),
        (template(), any::<u32>())
            .prop_map(|(template, max)| Request::FindObjects { template, max })
            .boxed(),
        h().prop_map(|object| Request::Record { object }).boxed(),
        (h(), mechanism(), secret())
            .prop_map(|(key, mechanism, data)| Request::Sign {
                key,
                mechanism,
                data,
            })
            .boxed(),
        (h(), mechanism())
            .prop_map(|(key, mechanism)| Request::SignatureLen { key, mechanism })
            .boxed(),
        (h(), mechanism(), secret(), bytes())
            .prop_map(|(key, mechanism, data, signature)| Request::Verify {
                key,
                mechanism,
                data,
                signature,
            })
            .boxed(),
        (h(), mechanism(), secret())
            .prop_map(|(key, mechanism, data)| Request::Encrypt {
                key,
                mechanism,
                data,
            })
            .boxed(),
        (h(), mechanism(), bytes())
            .prop_map(|(key, mechanism, data)| Request::Decrypt {
                key,
                mechanism,
                data,
            })
            .boxed(),
        (h(), mechanism(), h())
            .prop_map(|(wrapping_key, mechanism, target)| Request::WrapKey {
                wrapping_key,
                mechanism,
                target,
            })
            .boxed(),
        (h(), mechanism(), bytes(), template())
            .prop_map(
                |(unwrapping_key, mechanism, wrapped, template)| Request::UnwrapKey {
                    unwrapping_key,
                    mechanism,
                    wrapped,
                    template,
                },
            )
            .boxed(),
        (h(), mechanism(), template())
            .prop_map(|(base_key, mechanism, template)| Request::DeriveKey {
                base_key,
                mechanism,
                template,
            })
            .boxed(),
        (h(), mechanism(), template())
            .prop_map(|(key, mechanism, template)| Request::Encapsulate {
                key,
                mechanism,
                template,
            })
            .boxed(),
        (h(), mechanism(), bytes(), template())
            .prop_map(
                |(key, mechanism, ciphertext, template)| Request::Decapsulate {
                    key,
                    mechanism,
                    ciphertext,
                    template,
                },
            )
            .boxed(),
        h().prop_map(|key| Request::BlockKey { key }).boxed(),
        h().prop_map(|key| Request::UnblockKey { key }).boxed(),
        h().prop_map(|key| Request::Attest { key }).boxed(),
        (hash(), secret())
            .prop_map(|(hash, data)| Request::Digest { hash, data })
            .boxed(),
        any::<u32>().prop_map(|len| Request::Random { len }).boxed(),
        (string(), secret(), prop::option::of(secret()))
            .prop_map(|(name, so_pin, user_pin)| Request::CreatePartition {
                name,
                so_pin,
                user_pin,
            })
            .boxed(),
        Just(Request::ListPartitions {}).boxed(),
        string()
            .prop_map(|name| Request::DeletePartition { name })
            .boxed(),
        Just(Request::GetMechanisms {}).boxed(),
        (string(), secret(), secret(), bytes(), string())
            .prop_map(|(partition, setup_password, pin, public_key, label)| {
                Request::RegisterClient {
                    partition,
                    setup_password,
                    pin,
                    public_key,
                    label,
                }
            })
            .boxed(),
        (string(), bytes())
            .prop_map(|(partition, token)| Request::AttachSession { partition, token })
            .boxed(),
        (secret(), bytes())
            .prop_map(|(so_pin, label)| Request::InitToken { so_pin, label })
            .boxed(),
        Just(Request::TokenStatus {}).boxed(),
        (h(), prop::option::of(secret()))
            .prop_map(|(key, new_password)| Request::ChangeKeyPassword { key, new_password })
            .boxed(),
        (h(), bytes())
            .prop_map(|(key, policy)| Request::ModifyPolicy { key, policy })
            .boxed(),
    ])
    .boxed()
}

/// Any response that does not wrap another one.
pub fn plain_response() -> BoxedStrategy<Response> {
    let h = any::<i64>;
    let attr_read = prop_oneof![
        secret().prop_map(AttrRead::Value),
        Just(AttrRead::Sensitive),
        Just(AttrRead::Invalid),
    ];
    let summary = (any::<i64>(), string(), any::<i64>(), any::<i64>()).prop_map(
        |(id, name, created, objects)| PartitionSummary {
            id,
            name,
            created,
            objects,
        },
    );
    let info = any::<[u64; 4]>().prop_map(|[mechanism, min_key_size, max_key_size, flags]| {
        MechanismInfo {
            mechanism,
            min_key_size,
            max_key_size,
            flags,
        }
    });
    Union::new(vec![
        any::<u32>()
            .prop_map(|max_frame_len| Response::Pong { max_frame_len })
            .boxed(),
        (any::<u64>(), h())
            .prop_map(|(context_id, partition_id)| Response::SessionOpened {
                context_id,
                partition_id,
            })
            .boxed(),
        Just(Response::SessionClosed {}).boxed(),
        string()
            .prop_map(|fingerprint| Response::ClientRegistered { fingerprint })
            .boxed(),
        (any::<u64>(), h(), any::<bool>(), any::<bool>())
            .prop_map(
                |(context_id, partition_id, joined, so)| Response::SessionAttached {
                    context_id,
                    partition_id,
                    joined,
                    login: joined.then_some(if so {
                        UserType::SecurityOfficer
                    } else {
                        UserType::User
                    }),
                },
            )
            .boxed(),
        Just(Response::LoggedIn {}).boxed(),
        Just(Response::LoggedOut {}).boxed(),
        Just(Response::PinInitialized {}).boxed(),
        Just(Response::PinChanged {}).boxed(),
        h().prop_map(|object| Response::ObjectCreated { object })
            .boxed(),
        h().prop_map(|key| Response::KeyGenerated { key }).boxed(),
        (h(), h())
            .prop_map(|(public_key, private_key)| Response::KeyPairGenerated {
                public_key,
                private_key,
            })
            .boxed(),
        Just(Response::ObjectDestroyed {}).boxed(),
        Just(Response::AttributesSet {}).boxed(),
        h().prop_map(|object| Response::ObjectCopied { object })
            .boxed(),
        prop::collection::vec(attr_read, 0..6)
            .prop_map(|values| Response::Attributes { values })
            .boxed(),
        prop::collection::vec(any::<i64>(), 0..8)
            .prop_map(|objects| Response::Objects { objects })
            .boxed(),
        (bytes(), h())
            .prop_map(|(record_json, usage_count)| Response::Record {
                record_json,
                usage_count,
            })
            .boxed(),
        bytes()
            .prop_map(|signature| Response::Signature { signature })
            .boxed(),
        any::<u64>()
            .prop_map(|len| Response::SignatureLen { len })
            .boxed(),
        Just(Response::Verified {}).boxed(),
        bytes()
            .prop_map(|ciphertext| Response::Encrypted { ciphertext })
            .boxed(),
        secret()
            .prop_map(|plaintext| Response::Decrypted { plaintext })
            .boxed(),
        bytes()
            .prop_map(|wrapped| Response::Wrapped { wrapped })
            .boxed(),
        h().prop_map(|key| Response::Unwrapped { key }).boxed(),
        h().prop_map(|key| Response::Derived { key }).boxed(),
        (bytes(), h())
            .prop_map(|(ciphertext, key)| Response::Encapsulated { ciphertext, key })
            .boxed(),
        h().prop_map(|key| Response::Decapsulated { key }).boxed(),
        Just(Response::KeyBlocked {}).boxed(),
        Just(Response::KeyUnblocked {}).boxed(),
        (string(), bytes(), string(), string())
            .prop_map(
                |(xml, signature, chain_pem, attestation_key_name)| Response::Attested {
                    attestation: Attestation {
                        xml,
                        signature,
                        chain_pem,
                        attestation_key_name,
                    },
                },
            )
            .boxed(),
        bytes()
            .prop_map(|digest| Response::Digest { digest })
            .boxed(),
        secret()
            .prop_map(|bytes| Response::Random { bytes })
            .boxed(),
        h().prop_map(|id| Response::PartitionCreated { id }).boxed(),
        prop::collection::vec(summary, 0..4)
            .prop_map(|partitions| Response::Partitions { partitions })
            .boxed(),
        Just(Response::PartitionDeleted {}).boxed(),
        prop::collection::vec(info, 0..4)
            .prop_map(|mechanisms| Response::Mechanisms { mechanisms })
            .boxed(),
        any::<u64>()
            .prop_map(|objects_destroyed| Response::TokenInitialized { objects_destroyed })
            .boxed(),
        (any::<bool>(), any::<u32>(), any::<u32>(), any::<u32>())
            .prop_map(
                |(user_pin_initialized, so_failures, user_failures, max_failures)| {
                    Response::TokenStatus {
                        user_pin_initialized,
                        so_failures,
                        user_failures,
                        max_failures,
                    }
                },
            )
            .boxed(),
        Just(Response::KeyPasswordChanged {}).boxed(),
        Just(Response::PolicyModified {}).boxed(),
        (any::<u64>(), string())
            .prop_map(|(rv, message)| Response::Error { rv, message })
            .boxed(),
    ])
    .boxed()
}

pub fn sealed_object() -> impl Strategy<Value = SealedObject> {
    (any::<i64>(), any::<i64>(), bytes()).prop_map(|(object, version, sealed)| SealedObject {
        object,
        version,
        sealed,
    })
}

/// Any request, the wrappers (`Sealing`, `WithKeyPasswords`) around any other one included.
pub fn request() -> BoxedStrategy<Request> {
    prop_oneof![
        8 => plain_request(),
        1 => plain_request().prop_map(|r| Request::Sealing { request: Box::new(r) }),
        1 => (
            prop::collection::vec(
                (any::<i64>(), secret()).prop_map(|(key, password)| KeyPassword { key, password }),
                0..3,
            ),
            plain_request(),
        )
            .prop_map(|(passwords, inner)| Request::WithKeyPasswords {
                passwords,
                request: Box::new(inner),
            }),
        1 => prop::collection::vec(sealed_object(), 0..4)
            .prop_map(|objects| Request::RestoreSessionObjects { objects }),
    ]
    .boxed()
}

/// A response a wrapper may carry: any but an error (a failed request is answered with
/// `Error` itself).
fn wrappable_response() -> BoxedStrategy<Response> {
    plain_response()
        .prop_filter("errors are never wrapped", |r| {
            !matches!(r, Response::Error { .. })
        })
        .boxed()
}

/// Any response, the wrappers (`Sealed`, `WithKeyPasswords`) around any other one included.
pub fn response() -> BoxedStrategy<Response> {
    prop_oneof![
        8 => plain_response(),
        1 => (prop::collection::vec(sealed_object(), 0..4), wrappable_response()).prop_map(
            |(objects, answer)| Response::Sealed {
                objects,
                answer: Box::new(answer),
            }
        ),
        1 => wrappable_response().prop_map(|inner| Response::WithKeyPasswords {
            response: Box::new(inner),
        }),
        1 => any::<u32>().prop_map(|restored| Response::SessionObjectsRestored { restored }),
    ]
    .boxed()
}
