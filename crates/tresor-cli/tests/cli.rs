//! The tresor binary end to end: init, unseal (share errors named), audit verify (tampering
//! found), attest verify, dev.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_tresor");

fn tresor(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn init(dir: &Path, n: &str, m: &str) -> (String, String) {
    let db = dir.join("t.db").to_str().unwrap().to_owned();
    let root = dir.join("root.pem").to_str().unwrap().to_owned();
    let shares = dir.join("shares");
    let o = tresor(
        &[
            "init",
            "--store",
            &db,
            "--shares",
            n,
            "--threshold",
            m,
            "--share-dir",
            shares.to_str().unwrap(),
            "--root-cert",
            &root,
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    (db, root)
}

#[test]
fn init_and_unseal_name_bad_shares() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = init(dir.path(), "3", "2");
    let s = |i: u32| {
        dir.path()
            .join(format!("shares/share-{i}.txt"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    // Shares are written 0600.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(s(1)).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let o = tresor(
        &[
            "unseal",
            "--store",
            &db,
            "--share-file",
            &s(1),
            "--share-file",
            &s(3),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Unsealed"));
    // Too few shares on standard input.
    let one = std::fs::read_to_string(s(2)).unwrap();
    let o = tresor(&["unseal", "--store", &db], Some(&one));
    assert!(!o.status.success());
    assert!(text(&o).contains("1 of 2"), "{}", text(&o));
    // A corrupted share is named.
    let mut bad = one.trim().to_owned();
    let i = bad.len() - 12;
    let c = if &bad[i..i + 1] == "a" { "b" } else { "a" };
    bad.replace_range(i..i + 1, c);
    let badf = dir.path().join("bad.txt");
    std::fs::write(&badf, &bad).unwrap();
    let o = tresor(
        &[
            "unseal",
            "--store",
            &db,
            "--share-file",
            &s(1),
            "--share-file",
            badf.to_str().unwrap(),
        ],
        None,
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("bad.txt") && text(&o).contains("share 2"),
        "{}",
        text(&o)
    );
    // A share of another cluster is named.
    let other = tempfile::tempdir().unwrap();
    init(other.path(), "2", "2");
    let foreign = other.path().join("shares/share-2.txt");
    let o = tresor(
        &[
            "unseal",
            "--store",
            &db,
            "--share-file",
            &s(1),
            "--share-file",
            foreign.to_str().unwrap(),
        ],
        None,
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("another cluster"), "{}", text(&o));
    // init refuses an existing store.
    let o = tresor(&["init", "--store", &db], None);
    assert!(!o.status.success());
    assert!(text(&o).contains("already exists"), "{}", text(&o));
}

#[test]
fn audit_verify_names_the_first_bad_entry() {
    let dir = tempfile::tempdir().unwrap();
    let (db, root) = init(dir.path(), "1", "1");
    let share = dir
        .path()
        .join("shares/share-1.txt")
        .to_str()
        .unwrap()
        .to_owned();
    let o = tresor(
        &[
            "admin",
            "partition",
            "create",
            "--store",
            &db,
            "--share-file",
            &share,
            "p",
            "--so-pin",
            "so-pin-1",
            "--user-pin",
            "user-pin-1",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = tresor(
        &[
            "admin",
            "keygen-loop",
            "--store",
            &db,
            "--share-file",
            &share,
            "--partition",
            "p",
            "--pin",
            "user-pin-1",
            "--count",
            "5",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = tresor(
        &["audit", "verify", "--store", &db, "--root-cert", &root],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("OK"));
    let o = tresor(&["admin", "partition", "list", "--store", &db], None);
    assert!(text(&o).contains("objects 5"), "{}", text(&o));
    // Edit one audit entry directly in the database.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{db}"))
            .await
            .unwrap();
        sqlx::query(
            "UPDATE audit SET detail = '{\"forged\":1}' WHERE partition_id != 0 AND seq = 3",
        )
        .execute(&mut c)
        .await
        .unwrap();
    });
    let o = tresor(
        &["audit", "verify", "--store", &db, "--root-cert", &root],
        None,
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("first bad entry 3"), "{}", text(&o));
}

#[test]
fn attest_verify_accepts_genuine_and_rejects_altered_documents() {
    let dir = tempfile::tempdir().unwrap();
    let (db, root) = init(dir.path(), "1", "1");
    let share = std::fs::read_to_string(dir.path().join("shares/share-1.txt")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let a = rt.block_on(async {
        use tresor_core::ck::*;
        use tresor_core::template::Template;
        let store: std::sync::Arc<dyn tresor_store::Store> = std::sync::Arc::new(
            tresor_store::SqliteStore::open(Path::new(&db))
                .await
                .unwrap(),
        );
        let e = tresor_core::Engine::open(store, tresor_core::EngineConfig::default())
            .await
            .unwrap();
        e.unseal(&[tresor_core::seal::Share::parse(share.trim()).unwrap()])
            .await
            .unwrap();
        e.create_partition("p", b"so-pin-1", Some(b"user-pin-1"))
            .await
            .unwrap();
        let ctx = e.open_context("p").await.unwrap();
        ctx.login(tresor_core::UserType::User, b"user-pin-1")
            .await
            .unwrap();
        let t = Template::new()
            .with_bool(CKA_TOKEN, true)
            .unwrap()
            .with_ulong(CKA_VALUE_LEN, 32)
            .unwrap();
        let k = ctx.generate_key(CKM_AES_KEY_GEN, &t).await.unwrap();
        let a = ctx.attest(k).await.unwrap();
        e.seal().await.unwrap();
        a
    });
    let xml = dir.path().join("key.xml");
    let sig = dir.path().join("key.sig");
    let chain = dir.path().join("chain.pem");
    std::fs::write(&xml, &a.xml).unwrap();
    use base64::Engine as _;
    std::fs::write(
        &sig,
        base64::engine::general_purpose::STANDARD.encode(&a.signature),
    )
    .unwrap();
    std::fs::write(&chain, &a.chain_pem).unwrap();
    let args = |x: &Path| {
        vec![
            "attest".to_owned(),
            "verify".into(),
            "--xml".into(),
            x.to_str().unwrap().into(),
            "--signature".into(),
            sig.to_str().unwrap().into(),
            "--chain".into(),
            chain.to_str().unwrap().into(),
            "--root-cert".into(),
            root.clone(),
        ]
    };
    let a1: Vec<String> = args(&xml);
    let o = tresor(&a1.iter().map(String::as_str).collect::<Vec<_>>(), None);
    assert!(o.status.success(), "{}", text(&o));
    // The raw DER signature works too, and the openssl CLI agrees.
    std::fs::write(&sig, &a.signature).unwrap();
    let o = tresor(&a1.iter().map(String::as_str).collect::<Vec<_>>(), None);
    assert!(o.status.success(), "{}", text(&o));
    let o = Command::new("openssl")
        .args([
            "verify",
            "-CAfile",
            &root,
            "-untrusted",
            chain.to_str().unwrap(),
            chain.to_str().unwrap(),
        ])
        .output()
        .expect("openssl CLI (apt-get install openssl)");
    assert!(o.status.success(), "openssl verify: {}", text(&o));
    let altered = dir.path().join("altered.xml");
    std::fs::write(
        &altered,
        a.xml.replace(
            "<extractable>false</extractable>",
            "<extractable>true</extractable>",
        ),
    )
    .unwrap();
    let a2 = args(&altered);
    let o = tresor(&a2.iter().map(String::as_str).collect::<Vec<_>>(), None);
    assert!(!o.status.success());
    assert!(text(&o).contains("FAILED"), "{}", text(&o));
}

#[test]
fn dev_reuses_its_store_and_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("dev");
    let o = tresor(&["dev", "--dir", d.to_str().unwrap(), "--no-serve"], None);
    assert!(o.status.success(), "{}", text(&o));
    let first = text(&o);
    assert!(first.contains("user PIN"));
    let o = tresor(&["dev", "--dir", d.to_str().unwrap(), "--no-serve"], None);
    assert!(o.status.success(), "{}", text(&o));
    let pin_line = |s: &str| {
        s.lines()
            .find(|l| l.contains("user PIN"))
            .unwrap()
            .to_owned()
    };
    assert_eq!(pin_line(&first), pin_line(&text(&o)));
}

/// A PostgreSQL URL as `--store`: an unreachable server gives an error that names it with the
/// password hidden; on the real server (`TRESOR_TEST_PG_URL`, default
/// `postgres://postgres@127.0.0.1:5432/test`, in a database of its own) `init` works once, a
/// second `init` is refused, and `unseal` and `audit verify` work on it.
#[test]
fn postgres_store_urls() {
    let o = tresor(
        &[
            "unseal",
            "--store",
            "postgres://tresor:s3cret-pw@127.0.0.1:1/nowhere",
        ],
        None,
    );
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("postgres://tresor:***@127.0.0.1:1/nowhere"),
        "{t}"
    );
    assert!(!t.contains("s3cret-pw"), "{t}");

    let db = tresor_store::testing::PgDatabase::create();
    let url = db.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let shares = dir.path().join("shares");
    let root = dir.path().join("root.pem");
    let args = [
        "init",
        "--store",
        &url,
        "--shares",
        "1",
        "--threshold",
        "1",
        "--share-dir",
        shares.to_str().unwrap(),
        "--root-cert",
        root.to_str().unwrap(),
    ];
    let o = tresor(&args, None);
    assert!(o.status.success(), "{}", text(&o));
    let o = tresor(&args, None);
    assert!(!o.status.success());
    assert!(text(&o).contains("already initialised"), "{}", text(&o));
    let share = shares.join("share-1.txt");
    let o = tresor(
        &[
            "unseal",
            "--store",
            &url,
            "--share-file",
            share.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = tresor(
        &[
            "audit",
            "verify",
            "--store",
            &url,
            "--root-cert",
            root.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
}

/// `tresor bench network --seconds 0.3 ARGS`, which must succeed: its standard output and
/// its JSON line.
fn bench_network(args: &[&str]) -> (String, serde_json::Value) {
    let mut all = vec!["bench", "network", "--seconds", "0.3"];
    all.extend_from_slice(args);
    let o = tresor(&all, None);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let json = out
        .lines()
        .find_map(|l| l.strip_prefix("TRESOR_BENCH_JSON "));
    assert!(json.is_some(), "no JSON line in\n{out}");
    let v = serde_json::from_str(json.unwrap_or_default()).unwrap();
    (out, v)
}

/// `tresor bench network` runs end to end (briefly) and reports, per case, the network path,
/// the in-process engine and the bare two hops next to each other, as text and as JSON.
#[test]
fn bench_network_reports_the_three_sides() {
    let (out, v) = bench_network(&[
        "--clients",
        "1,2",
        "--cases",
        "noop,ecdsa-p256",
        "--setups",
        "3",
    ]);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 4, "{v}");
    for r in results {
        for side in ["network", "in_process", "bare_hops"] {
            assert!(
                r[side]["ops"].as_u64().unwrap() > 0,
                "{side} did no operation: {r}"
            );
        }
        assert!(r["bare_hops_ratio"].as_f64().unwrap() > 0.0 || r["case"] == "noop");
        // CPU per operation by part: every network side's server and relay threads did work.
        let cpu = &r["cpu_us_per_op"];
        for side in ["network", "bare_hops"] {
            for part in ["server", "relay", "clients"] {
                assert!(
                    cpu[side][part].as_f64().unwrap() > 0.0,
                    "{side} {part}: {r}"
                );
            }
        }
        assert!(cpu["in_process"]["clients"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(cpu["in_process"]["server"], 0.0, "{r}");
        // Cores in use: more than nothing, and not more than the machine has (with a margin
        // for the rounding of per-thread times and the alternating windows).
        let cores = v["cores"].as_f64().unwrap();
        for side in ["network", "in_process", "bare_hops"] {
            let busy = r["cores_busy"][side].as_f64().unwrap();
            assert!(busy > 0.0 && busy <= cores * 1.25, "{side} {busy}: {r}");
        }
    }
    assert!(out.contains("CPU µs/op"), "{out}");
    assert!(out.contains("cores busy"), "{out}");
    assert!(out.contains("over in-process"), "{out}");
    assert_eq!(v["setup_us"]["n"], 3);
    // Both phases are timed, and each is a part of the whole.
    let setup = &v["setup_us"];
    for phase in ["phase_one", "phase_two"] {
        let p50 = setup[phase]["p50"].as_f64().unwrap();
        assert!(
            p50 > 0.0 && p50 <= setup["p99"].as_f64().unwrap(),
            "{setup}"
        );
    }
    assert!(
        out.contains("phase one") && out.contains("phase two"),
        "{out}"
    );
    assert!(out.contains("bare hops"), "{out}");
}

#[test]
fn bench_network_measures_only_the_sides_asked_for() {
    let (out, v) = bench_network(&["--clients", "2", "--cases", "ecdsa-p256", "--sides", "bare"]);
    assert_eq!(v["sides"], serde_json::json!(["bare"]));
    let r = &v["results"][0];
    assert!(r["bare_hops"]["ops"].as_u64().unwrap() > 0, "{r}");
    for absent in ["network", "in_process", "ratio", "bare_hops_ratio"] {
        assert!(r[absent].is_null(), "{absent} should not be there: {r}");
    }
    let cpu = &r["cpu_us_per_op"];
    assert!(
        cpu["network"].is_null() && cpu["in_process"].is_null(),
        "{r}"
    );
    assert!(cpu["bare_hops"]["server"].as_f64().unwrap() > 0.0, "{r}");
    // Without the in-process side there is no overhead to print.
    assert!(!out.contains("over in-process"), "{out}");
    // No connection was made through the gateway, so no setup time is reported.
    assert_eq!(v["setup_us"]["n"], 0);
    assert!(!out.contains("connection setup"), "{out}");
    assert!(!out.contains("network "), "{out}");

    let o = tresor(&["bench", "network", "--sides", "bare,wire"], None);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("'wire'") && err.contains("in-process"),
        "{err}"
    );
}
