//! Client credentials: setup password, client registration, revocation, the operator-set
//! PKCS#11 password, and the TLS identities of the end-to-end channel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use openssl::pkey::PKey;
use openssl::x509::X509;
use secrecy::ExposeSecret;
use tresor_core::error::vendor;
use tresor_core::{Rv, SetupPolicy, UserType};

fn client_spki() -> Vec<u8> {
    tresor_core::attest::new_p256_key()
        .unwrap()
        .public_key_to_der()
        .unwrap()
}

fn rv<T: std::fmt::Debug>(r: tresor_core::Result<T>) -> Rv {
    r.expect_err("expected an error").rv()
}

async fn audit_text(f: &Fixture, partition_id: i64) -> String {
    f.engine.flush_audit().await.unwrap();
    let rows = f.store.audit_range(partition_id, 1, 10_000).await.unwrap();
    rows.iter()
        .map(|r| format!("{} {} {}\n", r.actor, r.action, r.detail))
        .collect()
}

async fn pid(f: &Fixture) -> i64 {
    f.store.partition_by_name("p1").await.unwrap().unwrap().id
}

#[tokio::test]
async fn issue_register_authenticate() {
    let f = fixture().await;
    let e = &f.engine;
    let pw = e
        .issue_setup_password("p1", SetupPolicy::default())
        .await
        .unwrap();
    let text = pw.expose_secret().to_owned();
    assert_eq!(text.len(), 29);
    assert_eq!(text.matches('-').count(), 4);
    let spki = client_spki();
    let unknown = rv(e.authenticate_client("p1", &spki).await);
    assert_eq!(unknown, Rv::Vendor(vendor::CLIENT_NOT_REGISTERED));

    // Entered in lower case: accepted (normalised).
    let cred = e
        .register_client(
            "p1",
            text.to_lowercase().as_bytes(),
            USER_PIN,
            &spki,
            "host-a",
        )
        .await
        .unwrap();
    assert_eq!(cred.fingerprint, hex::encode(openssl::sha::sha256(&spki)));
    assert_eq!(cred.label, "host-a");
    assert_eq!(e.authenticate_client("p1", &spki).await.unwrap(), cred);
    assert_eq!(e.list_clients("p1").await.unwrap(), vec![cred.clone()]);

    // Used: dead.
    let used = e
        .register_client("p1", text.as_bytes(), USER_PIN, &client_spki(), "host-b")
        .await
        .unwrap_err();
    assert_eq!(used.rv(), Rv::Vendor(vendor::SETUP_PASSWORD_USED));
    assert!(used.detail().contains("already been used"), "{used}");

    // Registering the same key again with a new setup password is idempotent.
    let pw2 = e
        .issue_setup_password("p1", SetupPolicy::default())
        .await
        .unwrap();
    let again = e
        .register_client(
            "p1",
            pw2.expose_secret().as_bytes(),
            USER_PIN,
            &spki,
            "other label",
        )
        .await
        .unwrap();
    assert_eq!(again, cred);
    assert_eq!(e.list_clients("p1").await.unwrap().len(), 1);

    // Audited, never with the secret values.
    let audit = audit_text(&f, pid(&f).await).await;
    assert!(
        audit.contains("credentials.setup_password.issue"),
        "{audit}"
    );
    assert!(audit.contains("credentials.register"), "{audit}");
    assert!(audit.contains(&cred.fingerprint), "{audit}");
    assert!(!audit.contains(&text), "{audit}");
    assert!(!audit.contains(&text.replace('-', "")), "{audit}");
    assert!(!audit.contains(std::str::from_utf8(USER_PIN).unwrap()));

    // The credentials survive a restart (sealed partition record).
    let e2 = f.restart().await;
    assert_eq!(e2.authenticate_client("p1", &spki).await.unwrap(), cred);
}

#[tokio::test]
async fn wrong_setup_passwords_count_and_lock() {
    let f = fixture().await;
    let e = &f.engine;
    let policy = SetupPolicy {
        max_failures: 3,
        ..SetupPolicy::default()
    };
    let none = e
        .register_client(
            "p1",
            b"AAAAA-AAAAA-AAAAA-AAAAA-AAAAA",
            USER_PIN,
            &client_spki(),
            "x",
        )
        .await
        .unwrap_err();
    assert_eq!(none.rv(), Rv::Vendor(vendor::SETUP_PASSWORD_INVALID));
    assert!(none.detail().contains("no setup password"), "{none}");

    let pw = e.issue_setup_password("p1", policy).await.unwrap();
    let spki = client_spki();
    for _ in 0..2 {
        let wrong = e
            .register_client("p1", b"AAAAA-AAAAA-AAAAA-AAAAA-AAAAA", USER_PIN, &spki, "x")
            .await
            .unwrap_err();
        assert_eq!(wrong.rv(), Rv::Vendor(vendor::SETUP_PASSWORD_INVALID));
        assert!(wrong.detail().contains("wrong setup password"), "{wrong}");
        assert!(!wrong.detail().contains("AAAAA"), "{wrong}");
    }
    let third = rv(e
        .register_client("p1", b"AAAAA-AAAAA-AAAAA-AAAAA-AAAAA", USER_PIN, &spki, "x")
        .await);
    assert_eq!(third, Rv::PinLocked);
    // Locked: even the right one is refused now.
    let locked = e
        .register_client("p1", pw.expose_secret().as_bytes(), USER_PIN, &spki, "x")
        .await
        .unwrap_err();
    assert_eq!(locked.rv(), Rv::PinLocked);
    assert!(locked.detail().contains("locked after 3"), "{locked}");
    // A new setup password replaces the locked one.
    let pw = e.issue_setup_password("p1", policy).await.unwrap();
    e.register_client("p1", pw.expose_secret().as_bytes(), USER_PIN, &spki, "x")
        .await
        .unwrap();
    let audit = audit_text(&f, pid(&f).await).await;
    assert_eq!(audit.matches("wrong setup password").count(), 3, "{audit}");
}

#[tokio::test]
async fn expired_setup_password() {
    let f = fixture().await;
    let e = &f.engine;
    for from_first_use in [true, false] {
        let pw = e
            .issue_setup_password(
                "p1",
                SetupPolicy {
                    lifetime_secs: 0,
                    from_first_use,
                    max_failures: 5,
                },
            )
            .await
            .unwrap();
        let err = e
            .register_client(
                "p1",
                pw.expose_secret().as_bytes(),
                USER_PIN,
                &client_spki(),
                "x",
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.rv(),
            Rv::Vendor(vendor::SETUP_PASSWORD_EXPIRED),
            "{err}"
        );
        assert!(err.detail().contains("expired"), "{err}");
    }
    // A long lifetime counted from first use is fine.
    let pw = e
        .issue_setup_password("p1", SetupPolicy::default())
        .await
        .unwrap();
    e.register_client(
        "p1",
        pw.expose_secret().as_bytes(),
        USER_PIN,
        &client_spki(),
        "x",
    )
    .await
    .unwrap();
    assert!(e
        .issue_setup_password(
            "p1",
            SetupPolicy {
                lifetime_secs: -1,
                ..SetupPolicy::default()
            }
        )
        .await
        .is_err());
}

#[tokio::test]
async fn wrong_pkcs11_password_and_admin_set_pin() {
    let f = fixture().await;
    let e = &f.engine;
    let pw = e
        .issue_setup_password("p1", SetupPolicy::default())
        .await
        .unwrap();
    let spki = client_spki();
    let err = e
        .register_client(
            "p1",
            pw.expose_secret().as_bytes(),
            b"wrong-pin",
            &spki,
            "x",
        )
        .await
        .unwrap_err();
    assert_eq!(err.rv(), Rv::PinIncorrect);
    assert!(err.detail().contains("PKCS#11 password"), "{err}");
    // The setup password is still good; a right PIN completes the exchange.
    e.register_client("p1", pw.expose_secret().as_bytes(), USER_PIN, &spki, "x")
        .await
        .unwrap();

    // Wrong PINs count towards the normal user lockout (3 in the test config).
    let pw = e
        .issue_setup_password("p1", SetupPolicy::default())
        .await
        .unwrap();
    for expect in [
        Rv::PinIncorrect,
        Rv::PinIncorrect,
        Rv::PinLocked,
        Rv::PinLocked,
    ] {
        let got = rv(e
            .register_client(
                "p1",
                pw.expose_secret().as_bytes(),
                b"wrong-pin",
                &spki,
                "x",
            )
            .await);
        assert_eq!(got, expect);
    }
    let ctx = e.open_context("p1").await.unwrap();
    assert_eq!(rv(ctx.login(UserType::User, USER_PIN).await), Rv::PinLocked);

    // The operator sets a new PKCS#11 password: the lockout is cleared.
    e.admin_set_user_pin("p1", b"new-pkcs11-pw").await.unwrap();
    ctx.login(UserType::User, b"new-pkcs11-pw").await.unwrap();
    e.register_client(
        "p1",
        pw.expose_secret().as_bytes(),
        b"new-pkcs11-pw",
        &spki,
        "x",
    )
    .await
    .unwrap();
    let audit = audit_text(&f, pid(&f).await).await;
    assert!(audit.contains("pin.admin_set_user"), "{audit}");
    assert!(!audit.contains("new-pkcs11-pw"), "{audit}");
}

#[tokio::test]
async fn revoke() {
    let f = fixture().await;
    let e = &f.engine;
    let mut creds = Vec::new();
    let mut keys = Vec::new();
    for i in 0..3 {
        let pw = e
            .issue_setup_password("p1", SetupPolicy::default())
            .await
            .unwrap();
        let spki = client_spki();
        creds.push(
            e.register_client(
                "p1",
                pw.expose_secret().as_bytes(),
                USER_PIN,
                &spki,
                &format!("c{i}"),
            )
            .await
            .unwrap(),
        );
        keys.push(spki);
    }
    assert_eq!(e.list_clients("p1").await.unwrap().len(), 3);
    // Contexts of the first two clients, as the node holds them for open connections.
    let mut open = Vec::new();
    for c in &creds[..2] {
        let ctx = e.open_client_context("p1", &c.fingerprint).await.unwrap();
        ctx.login(UserType::User, USER_PIN).await.unwrap();
        open.push(ctx);
    }
    assert_eq!(
        e.revoke_client("p1", Some(&creds[0].fingerprint))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        e.revoke_client("p1", Some(&creds[0].fingerprint))
            .await
            .unwrap(),
        0
    );
    let err = e.authenticate_client("p1", &keys[0]).await.unwrap_err();
    assert_eq!(err.rv(), Rv::Vendor(vendor::CLIENT_NOT_REGISTERED));
    assert!(err.detail().contains(&creds[0].fingerprint), "{err}");
    e.authenticate_client("p1", &keys[1]).await.unwrap();
    // The revoked client's context refuses its next call at once; the other's goes on.
    let all = tresor_core::template::Template::new();
    let err = open[0].find_objects(&all, 10).await.unwrap_err();
    assert_eq!(err.rv(), Rv::Vendor(vendor::CLIENT_NOT_REGISTERED));
    assert!(err.detail().contains("no longer registered"), "{err}");
    assert_eq!(
        open[0].logged_in(),
        None,
        "the revoked client's login is gone"
    );
    open[1].find_objects(&all, 10).await.unwrap();
    assert_eq!(open[1].logged_in(), Some(UserType::User));
    assert_eq!(e.revoke_client("p1", None).await.unwrap(), 2);
    assert_eq!(
        rv(e.authenticate_client("p1", &keys[2]).await),
        Rv::Vendor(vendor::CLIENT_NOT_REGISTERED)
    );
    assert!(e.list_clients("p1").await.unwrap().is_empty());
    // A setup password withdrawn before use cannot be exchanged.
    let pw = e
        .issue_setup_password("p1", SetupPolicy::default())
        .await
        .unwrap();
    assert!(e.revoke_setup_password("p1").await.unwrap());
    assert!(!e.revoke_setup_password("p1").await.unwrap());
    assert_eq!(
        rv(e.register_client(
            "p1",
            pw.expose_secret().as_bytes(),
            USER_PIN,
            &client_spki(),
            "x"
        )
        .await),
        Rv::Vendor(vendor::SETUP_PASSWORD_INVALID)
    );
    let audit = audit_text(&f, pid(&f).await).await;
    assert_eq!(audit.matches("credentials.revoke").count(), 2, "{audit}");
    assert_eq!(
        audit.matches("credentials.setup_password.revoke").count(),
        2,
        "{audit}"
    );
    assert_eq!(
        rv(e.list_clients("nope").await),
        Rv::Vendor(vendor::USER_NOT_FOUND)
    );
}

#[tokio::test]
async fn second_engine_sees_registration() {
    let f = fixture().await;
    let e2 = f.restart().await;
    let spki = client_spki();
    // e2 loads the partition before the registration.
    assert_eq!(
        rv(e2.authenticate_client("p1", &spki).await),
        Rv::Vendor(vendor::CLIENT_NOT_REGISTERED)
    );
    // A setup password issued through e2 (another process) is seen by the first engine.
    let pw = e2
        .issue_setup_password("p1", SetupPolicy::default())
        .await
        .unwrap();
    let cred = f
        .engine
        .register_client("p1", pw.expose_secret().as_bytes(), USER_PIN, &spki, "x")
        .await
        .unwrap();
    assert_eq!(e2.authenticate_client("p1", &spki).await.unwrap(), cred);
    // A PKCS#11 password set through e2 is seen at the first engine's next login.
    e2.admin_set_user_pin("p1", b"from-e2-pin").await.unwrap();
    let ctx = f.engine.open_context("p1").await.unwrap();
    ctx.login(UserType::User, b"from-e2-pin").await.unwrap();
}

#[tokio::test]
async fn bad_client_keys_are_refused() {
    let f = fixture().await;
    let e = &f.engine;
    let pw = e
        .issue_setup_password("p1", SetupPolicy::default())
        .await
        .unwrap();
    let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let err = e
        .register_client(
            "p1",
            pw.expose_secret().as_bytes(),
            USER_PIN,
            &rsa.public_key_to_der().unwrap(),
            "x",
        )
        .await
        .unwrap_err();
    assert_eq!(err.rv(), Rv::ArgumentsBad);
    assert!(err.detail().contains("P-256"), "{err}");
    assert_eq!(
        rv(
            e.register_client("p1", pw.expose_secret().as_bytes(), USER_PIN, b"junk", "x")
                .await
        ),
        Rv::ArgumentsBad
    );
}

fn verify_chain(chain: &[X509], root: &X509) {
    use openssl::stack::Stack;
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::X509StoreContext;
    let mut store = X509StoreBuilder::new().unwrap();
    store.add_cert(root.clone()).unwrap();
    store
        .set_purpose(openssl::x509::X509PurposeId::SSL_SERVER)
        .unwrap();
    let store = store.build();
    let mut untrusted = Stack::new().unwrap();
    for c in &chain[1..] {
        untrusted.push(c.clone()).unwrap();
    }
    let mut ctx = X509StoreContext::new().unwrap();
    let ok = ctx
        .init(&store, &chain[0], &untrusted, |c| {
            let ok = c.verify_cert()?;
            Ok((ok, c.error().to_string()))
        })
        .unwrap();
    assert!(ok.0, "chain does not verify: {}", ok.1);
}

fn sans(cert: &X509) -> (Vec<String>, Vec<Vec<u8>>) {
    let names = cert.subject_alt_names().unwrap();
    let dns = names
        .iter()
        .filter_map(|n| n.dnsname().map(str::to_owned))
        .collect();
    let ips = names
        .iter()
        .filter_map(|n| n.ipaddress().map(<[u8]>::to_vec))
        .collect();
    (dns, ips)
}

#[tokio::test]
async fn node_tls_identity_chain() {
    let f = fixture().await;
    let (chain, key) = f.engine.node_tls_identity().unwrap();
    assert_eq!(chain.len(), 3);
    let certs: Vec<X509> = chain.iter().map(|d| X509::from_der(d).unwrap()).collect();
    let root = X509::from_der(&f.engine.root_cert_der().unwrap()).unwrap();
    assert_eq!(chain[1], f.engine.node_cert_der().unwrap());
    assert_eq!(certs[2].to_der().unwrap(), root.to_der().unwrap());
    assert!(certs[0].verify(&certs[1].public_key().unwrap()).unwrap());
    assert!(certs[1].verify(&root.public_key().unwrap()).unwrap());
    verify_chain(&certs, &root);
    let (dns, ips) = sans(&certs[0]);
    assert_eq!(dns, ["tresor-node"]);
    assert!(ips.is_empty());
    let leaf_key = PKey::private_key_from_pkcs8(&key).unwrap();
    assert!(certs[0].public_key().unwrap().public_eq(&leaf_key));
    // Valid from an hour ago.
    let hour_ago = openssl::asn1::Asn1Time::from_unix(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            - 3000,
    )
    .unwrap();
    assert!(certs[0].not_before() < hour_ago);
    // Each call makes a fresh key.
    let (chain2, _) = f.engine.node_tls_identity().unwrap();
    assert_ne!(chain2[0], chain[0]);
}

#[tokio::test]
async fn server_identity_has_the_sans() {
    let f = fixture().await;
    let sans_in = vec![
        "gw1.example.com".to_owned(),
        "192.0.2.10".to_owned(),
        "2001:db8::1".to_owned(),
    ];
    let (chain, key) = f
        .engine
        .issue_server_identity("gateway-1", &sans_in, 90)
        .await
        .unwrap();
    assert_eq!(chain.len(), 2);
    let certs: Vec<X509> = chain.iter().map(|d| X509::from_der(d).unwrap()).collect();
    let root = X509::from_der(&f.engine.root_cert_der().unwrap()).unwrap();
    verify_chain(&certs, &root);
    let (dns, ips) = sans(&certs[0]);
    assert_eq!(dns, ["gw1.example.com"]);
    assert_eq!(ips.len(), 2);
    assert_eq!(ips[0], [192, 0, 2, 10]);
    assert_eq!(ips[1].len(), 16);
    let cn = certs[0]
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .next()
        .unwrap()
        .data()
        .as_slice()
        .to_vec();
    let cn = String::from_utf8(cn).unwrap();
    assert_eq!(cn, "gateway-1");
    let k = PKey::private_key_from_pkcs8(&key).unwrap();
    assert!(certs[0].public_key().unwrap().public_eq(&k));
    let text = String::from_utf8(certs[0].to_text().unwrap()).unwrap();
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    // Audited on the cluster chain.
    let rows = f.store.audit_range(0, 1, 1000).await.unwrap();
    assert!(rows.iter().any(|r| r.action == "certificate.issue_server"));
    assert_eq!(
        f.engine
            .issue_server_identity("gw", &[], 1)
            .await
            .unwrap_err()
            .rv(),
        Rv::ArgumentsBad
    );
}
