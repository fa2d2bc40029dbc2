//! End to end with real processes on 127.0.0.1: `tresor init`, `tresor admin`, `tresor hsm`,
//! `tresor gateway` and `ppin`, then the client library as an application uses it.
//!
//! * the seed flow: credentials file → `ppin -p` → `ppin -a` → `ppin -t` → an operation;
//! * refusals (wrong service password, blocked address, expired / reused setup password, wrong
//!   PKCS#11 password, locked-out service user), each precise, the processes serving others;
//! * two nodes behind a gateway, one killed under load, the client carrying on (on a shared
//!   SQLite file, and as a cluster on the PostgreSQL server at `TRESOR_TEST_PG_URL`, default
//!   `postgres://postgres@127.0.0.1:5432/test`, in a database of its own);
//! * everything the gateway forwards is captured: no payload, PIN or key appears in it;
//! * malformed input to the node and the gateway harms neither.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tresor_client::config::primus::PrimusConfig;
use tresor_client::config::secrets::SecretsFile;
use tresor_client::connect::SlotClient;
use tresor_proto::{HashAlg, Mechanism, Request, Response, Secret, Template, UserType};
use tresor_store::testing::PgDatabase;

const TRESOR: &str = env!("CARGO_BIN_EXE_tresor");
const PPIN: &str = env!("CARGO_BIN_EXE_ppin");
const SO_PIN: &str = "so-pin-0001";
const USER_PIN: &str = "user-pin-0001";

const CKM_EC_KEY_PAIR_GEN: u64 = 0x1040;
const CKA_CLASS: u64 = 0x0;
const CKA_TOKEN: u64 = 0x1;
const CKA_VALUE: u64 = 0x11;
const CKA_KEY_TYPE: u64 = 0x100;
const CKA_SENSITIVE: u64 = 0x103;
const CKA_ENCRYPT: u64 = 0x104;
const CKA_SIGN: u64 = 0x108;
const CKA_VERIFY: u64 = 0x10a;
const CKA_EC_PARAMS: u64 = 0x180;
const CKO_SECRET_KEY: u64 = 0x4;
const CKK_AES: u64 = 0x1f;
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn wait_port(addr: SocketAddr, what: &str, child: &mut Child) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            let mut err = String::new();
            if let Some(e) = child.stderr.as_mut() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("{what} exited early ({st}): {err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on {addr}");
}

/// A cluster store with one partition and one service, ready for nodes and gateways.
struct Cluster {
    dir: tempfile::TempDir,
    /// `TRESOR_STORE` of every command: a SQLite file or a PostgreSQL URL.
    store: String,
    /// The PostgreSQL database behind `store`, dropped with the cluster.
    _pg: Option<PgDatabase>,
    share: PathBuf,
    root: PathBuf,
    gw_cert: PathBuf,
    gw_key: PathBuf,
    service_password: String,
}

impl Cluster {
    fn new() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("tresor.db").to_str().unwrap().to_owned();
        Self::with_store(dir, store, None)
    }

    /// A cluster whose store is a fresh PostgreSQL database.
    fn on_postgres() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let pg = PgDatabase::create();
        let url = pg.url.clone();
        Self::with_store(dir, url, Some(pg))
    }

    fn with_store(dir: tempfile::TempDir, store: String, pg: Option<PgDatabase>) -> Cluster {
        let root = dir.path().join("root.pem");
        let shares = dir.path().join("shares");
        let c = Cluster {
            share: shares.join("share-1.txt"),
            gw_cert: dir.path().join("gw.pem"),
            gw_key: dir.path().join("gw.key"),
            store,
            _pg: pg,
            root,
            dir,
            service_password: String::new(),
        };
        c.ok(&[
            "init",
            "--shares",
            "1",
            "--threshold",
            "1",
            "--share-dir",
            shares.to_str().unwrap(),
            "--root-cert",
            c.root.to_str().unwrap(),
        ]);
        assert!(c.share.exists(), "no share file at {}", c.share.display());
        c.ok(&[
            "admin",
            "partition",
            "create",
            "P1",
            "--so-pin",
            SO_PIN,
            "--user-pin",
            USER_PIN,
        ]);
        let out = c.ok(&[
            "admin",
            "service",
            "create",
            "--name",
            "acme",
            "--service-user",
            "acme-svc",
            "--allow",
            "127.0.0.1/32",
            "--partition",
            "P1",
        ]);
        let pw = secret_line(&out, "Service user password:");
        c.ok(&[
            "cert",
            "gateway",
            "--san",
            "127.0.0.1",
            "--cert",
            c.gw_cert.to_str().unwrap(),
            "--key",
            c.gw_key.to_str().unwrap(),
        ]);
        Cluster {
            service_password: pw,
            ..c
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(TRESOR);
        c.args(args)
            .env("TRESOR_STORE", &self.store)
            .env("RUST_LOG", "warn");
        // Every command that needs to unseal takes the share file.
        if matches!(args.first(), Some(&"admin") | Some(&"cert") | Some(&"hsm"))
            && !matches!(args.get(2), Some(&"list"))
        {
            c.arg("--share-file").arg(&self.share);
        }
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "tresor {args:?} failed: {}", text(&o));
        text(&o)
    }

    fn node(&self, name: &str) -> (Proc, SocketAddr) {
        let (p, a, _) = self.node_with_http(name);
        (p, a)
    }

    fn node_with_http(&self, name: &str) -> (Proc, SocketAddr, SocketAddr) {
        self.node_with_args(name, &[])
    }

    /// A node started with `extra` options after the usual ones.
    fn node_with_args(&self, name: &str, extra: &[&str]) -> (Proc, SocketAddr, SocketAddr) {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        let (addr_s, http_s) = (addr.to_string(), http.to_string());
        let mut args = vec![
            "hsm", "--name", name, "--listen", &addr_s, "--http", &http_s,
        ];
        args.extend_from_slice(extra);
        let mut child = self
            .cmd(&args)
            .env("TRESOR_LOG", "tresor_core=debug,tresor_server=info,warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        wait_port(addr, name, &mut child);
        (Proc(child), addr, http)
    }

    fn gateway(&self, nodes: &[(&str, SocketAddr)]) -> (Proc, SocketAddr) {
        let (p, a, _) = self.gateway_with(nodes, false);
        (p, a)
    }

    /// A gateway, with its `/health` and `/metrics` address if `http`.
    fn gateway_with(
        &self,
        nodes: &[(&str, SocketAddr)],
        http: bool,
    ) -> (Proc, SocketAddr, Option<SocketAddr>) {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut args = vec![
            "gateway".to_owned(),
            "--listen".into(),
            addr.to_string(),
            "--cert".into(),
            self.gw_cert.to_str().unwrap().into(),
            "--key".into(),
            self.gw_key.to_str().unwrap().into(),
            "--health-interval".into(),
            "1".into(),
        ];
        for (n, a) in nodes {
            args.push("--node".into());
            args.push(format!("{n}={a}"));
        }
        let http: Option<SocketAddr> =
            http.then(|| format!("127.0.0.1:{}", free_port()).parse().unwrap());
        if let Some(h) = http {
            args.push("--http".into());
            args.push(h.to_string());
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = self
            .cmd(&refs)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_port(addr, "gateway", &mut child);
        if let Some(h) = http {
            wait_port(h, "gateway http", &mut child);
        }
        // Let the first health round mark the nodes up.
        std::thread::sleep(Duration::from_millis(1500));
        (Proc(child), addr, http)
    }

    /// A client configuration for `user` through the gateway at `gw`.
    fn client_cfg(&self, name: &str, gw: SocketAddr, service_user: &str) -> (PathBuf, PathBuf) {
        let cfg = self.dir.path().join(format!("{name}.cfg"));
        let secrets = self.dir.path().join(format!("{name}.secrets.cfg"));
        std::fs::write(
            &cfg,
            format!(
                "version = \"1.0\";\nprimus: {{\n  ca_file = \"{}\";\n  wait_delay = 100;\n  wait_max_tries = 5;\n  hsms: {{\n    hsm0: {{ host = \"127.0.0.1\"; port = \"{}\"; priority = 0;\n      slots: {{ slot0: {{ client_id = \"{name}\"; user_name = \"P1\"; proxy_user = \"{service_user}\"; id = 0; }}; }}; }};\n  }};\n}};\n",
                self.root.display(),
                gw.port()
            ),
        )
        .unwrap();
        (cfg, secrets)
    }

    fn setup_password(&self, extra: &[&str]) -> String {
        let mut args = vec![
            "admin",
            "credentials",
            "setup-password",
            "--partition",
            "P1",
        ];
        args.extend_from_slice(extra);
        let out = self.ok(&args);
        out.lines()
            .map(str::trim)
            .find(|l| l.len() == 29 && l.matches('-').count() == 4)
            .unwrap_or_else(|| panic!("no setup password in: {out}"))
            .to_owned()
    }
}

fn secret_line(out: &str, prefix: &str) -> String {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| panic!("no {prefix:?} in: {out}"))
}

fn ppin(cfg: &Path, secrets: &Path, args: &[&str]) -> Output {
    Command::new(PPIN)
        .arg("-c")
        .arg(cfg)
        .arg("-s")
        .arg(secrets)
        .args(args)
        .env_remove("TRESOR_PKCS11_CONF")
        .env_remove("SECUROSYS_PKCS11_CONF")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ppin_ok(cfg: &Path, secrets: &Path, args: &[&str]) -> String {
    let o = ppin(cfg, secrets, args);
    assert!(o.status.success(), "ppin {args:?} failed: {}", text(&o));
    text(&o)
}

fn client(cfg: &Path, secrets: &Path) -> SlotClient {
    let config = PrimusConfig::load(cfg).unwrap();
    let secrets = SecretsFile::load(secrets).unwrap().secrets;
    let slot = config.slots()[0].clone();
    SlotClient::from_config(&config, &slot, &secrets).unwrap()
}

fn login(c: &SlotClient, pin: &str) -> Result<Response, tresor_client::Error> {
    c.call(&Request::Login {
        user: UserType::User,
        pin: Secret::from_slice(pin.as_bytes()),
    })
}

fn p256_pair(c: &SlotClient, token: bool) -> (i64, i64) {
    let r = c
        .call(&Request::GenerateKeyPair {
            mechanism: CKM_EC_KEY_PAIR_GEN,
            public_template: Template::new()
                .with_bool(CKA_TOKEN, token)
                .with_bool(CKA_VERIFY, true)
                .with_bytes(CKA_EC_PARAMS, P256),
            private_template: Template::new()
                .with_bool(CKA_TOKEN, token)
                .with_bool(CKA_SIGN, true),
        })
        .unwrap();
    match r {
        Response::KeyPairGenerated {
            public_key,
            private_key,
        } => (public_key, private_key),
        other => panic!("{other:?}"),
    }
}

fn sign_verify(c: &SlotClient, (public, private): (i64, i64), data: &[u8]) {
    let m = Mechanism::EcdsaHash {
        hash: HashAlg::Sha256,
    };
    let Response::Signature { signature } = c
        .call(&Request::Sign {
            key: private,
            mechanism: m.clone(),
            data: Secret::from_slice(data),
        })
        .unwrap()
    else {
        panic!("no signature")
    };
    assert_eq!(
        c.call(&Request::Verify {
            key: public,
            mechanism: m,
            data: Secret::from_slice(data),
            signature,
        })
        .unwrap(),
        Response::Verified {}
    );
}

/// The seed flow, then every refusal with the processes still serving the good client.
#[test]
fn seed_flow_and_refusals() {
    let mut cl = Cluster::new();
    let (_node, node_addr) = cl.node("node1");
    let (_gw, gw) = cl.gateway(&[("node1", node_addr)]);

    // The operator writes the credentials file (rotating the service password).
    let creds = cl.dir.path().join("credentials.txt");
    cl.ok(&[
        "admin",
        "credentials",
        "file",
        "--partition",
        "P1",
        "--service-user",
        "acme-svc",
        "--out",
        creds.to_str().unwrap(),
        "--gateway",
        &gw.to_string(),
    ]);
    let file = std::fs::read_to_string(&creds).unwrap();
    assert_eq!(secret_line(&file, "Service User Name:"), "acme-svc");
    assert_eq!(secret_line(&file, "HSM User Name:"), "P1");
    let svc_pw = secret_line(&file, "Service User Password:");
    assert_eq!(secret_line(&file, "HSM User Setup Password:").len(), 29);
    cl.service_password = svc_pw.clone();
    // A second file with the current service password keeps it (no rotation); a wrong one is
    // refused.
    let creds2 = cl.dir.path().join("credentials2.txt");
    let o = cl.run(&[
        "admin",
        "credentials",
        "file",
        "--partition",
        "P1",
        "--service-user",
        "acme-svc",
        "--out",
        creds2.to_str().unwrap(),
        "--service-password",
        "not-it",
    ]);
    assert!(
        !o.status.success() && text(&o).contains("not the current password"),
        "{}",
        text(&o)
    );
    cl.ok(&[
        "admin",
        "credentials",
        "file",
        "--partition",
        "P1",
        "--service-user",
        "acme-svc",
        "--out",
        creds2.to_str().unwrap(),
        "--service-password",
        &svc_pw,
    ]);
    let file2 = std::fs::read_to_string(&creds2).unwrap();
    assert_eq!(secret_line(&file2, "Service User Password:"), svc_pw);
    // The second file's setup password replaced the first one.
    let setup = secret_line(&file2, "HSM User Setup Password:");

    // The subscriber: ppin -p, ppin -a, ppin -t.
    let (cfg, secrets) = cl.client_cfg("app", gw, "acme-svc");
    ppin_ok(&cfg, &secrets, &["-p", "-e", "acme-svc", &svc_pw]);
    let list = ppin_ok(&cfg, &secrets, &["-l"]);
    assert!(list.contains("permanent secret: MISSING"), "{list}");
    ppin_ok(&cfg, &secrets, &["-a", "-e", "P1", &setup, USER_PIN]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "secrets file mode");
    }
    let list = ppin_ok(&cfg, &secrets, &["-l"]);
    assert!(list.contains("permanent secret: Configured"), "{list}");
    let t = ppin_ok(&cfg, &secrets, &["-t"]);
    assert!(
        t.contains(&format!(
            "hsm0: Connect to '127.0.0.1' on port {}",
            gw.port()
        )),
        "{t}"
    );
    assert!(t.contains("slot0 (id=0), user=P1: OK"), "{t}");
    assert!(
        t.contains("Number of tested HSMs: 1 (number of partitions: 1)"),
        "{t}"
    );
    assert!(t.contains("Number of failures: 0"), "{t}");

    // The application: log in with the PKCS#11 password and use a key.
    let app = client(&cfg, &secrets);
    login(&app, USER_PIN).unwrap();
    let pair = p256_pair(&app, false);
    sign_verify(&app, pair, b"first operation through gateway and node");

    // Reused setup password.
    let (cfg2, secrets2) = cl.client_cfg("reuse", gw, "acme-svc");
    ppin_ok(&cfg2, &secrets2, &["-p", "-e", "acme-svc", &svc_pw]);
    let o = ppin(&cfg2, &secrets2, &["-a", "-e", "P1", &setup, USER_PIN]);
    assert!(!o.status.success());
    assert!(text(&o).contains("0x80000105"), "reused: {}", text(&o));

    // Wrong PKCS#11 password at the exchange, then with a fresh setup password.
    let fresh = cl.setup_password(&[]);
    let o = ppin(&cfg2, &secrets2, &["-a", "-e", "P1", &fresh, "not-the-pin"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("0x000000A0"), "wrong pin: {}", text(&o));
    // ... and at C_Login.
    let e = login(&client(&cfg, &secrets), "not-the-pin").unwrap_err();
    assert!(e.to_string().contains("0x000000A0"), "{e}");

    // Expired setup password (lifetime 0, counted from issue).
    let expired = cl.setup_password(&["--lifetime-days", "0", "--from-issue"]);
    let o = ppin(&cfg2, &secrets2, &["-a", "-e", "P1", &expired, USER_PIN]);
    assert!(!o.status.success());
    assert!(
        text(&o).to_lowercase().contains("expired"),
        "expired: {}",
        text(&o)
    );

    // Wrong service password.
    let (cfg3, secrets3) = cl.client_cfg("wrongsvc", gw, "acme-svc");
    ppin_ok(
        &cfg3,
        &secrets3,
        &["-p", "-e", "acme-svc", "not-the-password"],
    );
    let o = ppin(
        &cfg3,
        &secrets3,
        &["-a", "-e", "P1", &cl.setup_password(&[]), USER_PIN],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("0x80000110"),
        "wrong service password: {}",
        text(&o)
    );

    // Blocked source address: a service whose allowlist excludes 127.0.0.1.
    let out = cl.ok(&[
        "admin",
        "service",
        "create",
        "--name",
        "elsewhere",
        "--service-user",
        "far-svc",
        "--allow",
        "10.0.0.0/8",
        "--partition",
        "P1",
    ]);
    let far_pw = secret_line(&out, "Service user password:");
    std::thread::sleep(Duration::from_millis(2500)); // directory cache
    let (cfg4, secrets4) = cl.client_cfg("far", gw, "far-svc");
    ppin_ok(&cfg4, &secrets4, &["-p", "-e", "far-svc", &far_pw]);
    let o = ppin(
        &cfg4,
        &secrets4,
        &["-a", "-e", "P1", &cl.setup_password(&[]), USER_PIN],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("0x80000111"),
        "blocked address: {}",
        text(&o)
    );

    // Locked-out service user: a third service, five wrong passwords, then the right one.
    let out = cl.ok(&[
        "admin",
        "service",
        "create",
        "--name",
        "locky",
        "--service-user",
        "lock-svc",
        "--allow",
        "127.0.0.1/32",
        "--partition",
        "P1",
    ]);
    let lock_pw = secret_line(&out, "Service user password:");
    std::thread::sleep(Duration::from_millis(2500));
    let (cfg5, secrets5) = cl.client_cfg("locky", gw, "lock-svc");
    ppin_ok(&cfg5, &secrets5, &["-p", "-e", "lock-svc", "wrong"]);
    for _ in 0..5 {
        let o = ppin(
            &cfg5,
            &secrets5,
            &["-a", "-e", "P1", "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA", USER_PIN],
        );
        assert!(text(&o).contains("0x80000110"), "{}", text(&o));
    }
    ppin_ok(&cfg5, &secrets5, &["-p", "-e", "lock-svc", &lock_pw]);
    let o = ppin(
        &cfg5,
        &secrets5,
        &["-a", "-e", "P1", "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA", USER_PIN],
    );
    assert!(text(&o).contains("0x80000112"), "locked: {}", text(&o));

    // Through all of that, the first application kept working.
    sign_verify(&app, pair, b"still serving after the refusals");
    let t = ppin_ok(&cfg, &secrets, &["-t"]);
    assert!(t.contains("Number of failures: 0"), "{t}");
    drop(_gw);
    drop(_node);
}

/// The engine settings of `tresor hsm` reach its engine: with `--max-pin-failures 2` the second
/// wrong PIN locks the user (CKR_PIN_LOCKED), and the right one is refused after it; a bad value
/// is refused before the node starts.
#[test]
fn node_engine_settings_take_effect() {
    let cl = Cluster::new();
    let (_node, addr, _) = cl.node_with_args(
        "node1",
        &["--max-pin-failures", "2", "--audit-flush-ms", "50"],
    );
    let (_gw, gw) = cl.gateway(&[("node1", addr)]);
    let setup = cl.setup_password(&[]);
    let (cfg, secrets) = cl.client_cfg("app", gw, "acme-svc");
    ppin_ok(
        &cfg,
        &secrets,
        &["-p", "-e", "acme-svc", &cl.service_password],
    );
    ppin_ok(&cfg, &secrets, &["-a", "-e", "P1", &setup, USER_PIN]);
    let app = client(&cfg, &secrets);
    // The default is 10: here the second wrong PIN already locks.
    let e = login(&app, "not-the-pin").unwrap_err();
    assert!(e.to_string().contains("0x000000A0"), "{e}");
    let e = login(&app, "not-the-pin").unwrap_err();
    assert!(e.to_string().contains("0x000000A4"), "locking: {e}");
    let e = login(&app, USER_PIN).unwrap_err();
    assert!(e.to_string().contains("0x000000A4"), "locked: {e}");

    let o = cl.run(&["hsm", "--audit-flush-ms", "0"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--audit-flush-ms"), "{}", text(&o));
}

/// A client key revoked by the operator (`tresor admin credentials revoke`, another process on
/// the same store) stops working on a node that already serves it: its open connection's next
/// request fails within the node's `--sync-ms`, and it cannot connect again. Another client of
/// the partition keeps working, until the operator disables the service: then the gateway
/// closes its connection and refuses it another.
#[test]
fn revocation_reaches_open_connections() {
    let cl = Cluster::new();
    let (_node, addr, _) = cl.node_with_args("node1", &["--sync-ms", "100"]);
    let (_gw, gw) = cl.gateway(&[("node1", addr)]);
    let mut apps = Vec::new();
    let mut fingerprint = String::new();
    for name in ["doomed", "other"] {
        let (cfg, secrets) = cl.client_cfg(name, gw, "acme-svc");
        ppin_ok(
            &cfg,
            &secrets,
            &["-p", "-e", "acme-svc", &cl.service_password],
        );
        let setup = cl.setup_password(&[]);
        ppin_ok(&cfg, &secrets, &["-a", "-e", "P1", &setup, USER_PIN]);
        if name == "doomed" {
            // Its fingerprint, while it is the only registered key. (`cmd` adds the share file
            // to every `admin` command but listings; this one needs it.)
            let o = cl
                .cmd(&["admin", "credentials", "list", "--partition", "P1"])
                .arg("--share-file")
                .arg(&cl.share)
                .output()
                .unwrap();
            assert!(o.status.success(), "credentials list: {}", text(&o));
            let list = text(&o);
            fingerprint = list
                .split_whitespace()
                .find(|w| w.len() == 64 && w.chars().all(|c| c.is_ascii_hexdigit()))
                .unwrap_or_else(|| panic!("no fingerprint in {list}"))
                .to_owned();
        }
        let app = client(&cfg, &secrets);
        login(&app, USER_PIN).unwrap();
        apps.push((app, cfg, secrets));
    }
    let doomed_pair = p256_pair(&apps[0].0, true);
    sign_verify(&apps[0].0, doomed_pair, b"before the revocation");
    let other_pair = p256_pair(&apps[1].0, false);

    let out = cl.ok(&[
        "admin",
        "credentials",
        "revoke",
        "--partition",
        "P1",
        "--fingerprint",
        &fingerprint,
    ]);
    assert!(out.contains("Revoked 1"), "{out}");

    let refusal = sign_until_refused(&apps[0].0, doomed_pair.1, Duration::from_secs(5));
    assert!(refusal.to_string().contains("0x80000107"), "{refusal}");
    // A new connection is refused too.
    let e = login(&client(&apps[0].1, &apps[0].2), USER_PIN).unwrap_err();
    assert!(e.to_string().contains("0x80000107"), "{e}");
    // The other client was not touched.
    sign_verify(&apps[1].0, other_pair, b"the other client still works");

    // The operator disables the service: the gateway closes the other client's connection
    // (within about twice its directory cache time, 2 s) and refuses it a new one.
    cl.ok(&[
        "admin",
        "service",
        "set",
        "--service-user",
        "acme-svc",
        "--disable",
    ]);
    let refusal = sign_until_refused(&apps[1].0, other_pair.1, Duration::from_secs(10));
    // Its reconnections are refused: with no enabled service left that allows 127.0.0.1, the
    // gateway closes them before TLS (otherwise it would answer SERVICE_LOCKED, 0x80000112).
    let shown = refusal.to_string();
    assert!(
        shown.contains("no HSM reachable") || shown.contains("0x80000112"),
        "{shown}"
    );
}

/// Sign with `key` until a call fails, and return that error; fails the test if every call
/// still succeeds after `within`.
fn sign_until_refused(c: &SlotClient, key: i64, within: Duration) -> tresor_client::Error {
    let deadline = std::time::Instant::now() + within;
    loop {
        let r = c.call(&Request::Sign {
            key,
            mechanism: Mechanism::EcdsaHash {
                hash: HashAlg::Sha256,
            },
            data: Secret::from_slice(b"still allowed?"),
        });
        match r {
            Err(e) => return e,
            Ok(_) => assert!(
                std::time::Instant::now() < deadline,
                "still signing after {within:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two nodes behind one gateway; one is killed while four threads sign.
#[test]
fn node_failover_under_load() {
    failover_under_load(&Cluster::new());
}

/// The same with the nodes as a cluster on one PostgreSQL database.
#[test]
fn node_failover_under_load_on_postgres() {
    failover_under_load(&Cluster::on_postgres());
}

fn failover_under_load(cl: &Cluster) {
    let (n1, a1, h1) = cl.node_with_http("node1");
    let (n2, a2, h2) = cl.node_with_http("node2");
    let (_gw, gw, gw_http) = cl.gateway_with(&[("node1", a1), ("node2", a2)], true);
    let gw_http = gw_http.unwrap();
    assert_eq!(metric(gw_http, "tresor_gateway_healthy_nodes"), 2);
    assert_eq!(http_status(gw_http, "/health"), 200);
    let setup = cl.setup_password(&[]);
    let (cfg, secrets) = cl.client_cfg("app", gw, "acme-svc");
    ppin_ok(
        &cfg,
        &secrets,
        &["-p", "-e", "acme-svc", &cl.service_password],
    );
    ppin_ok(&cfg, &secrets, &["-a", "-e", "P1", &setup, USER_PIN]);
    let app = Arc::new(client(&cfg, &secrets));
    login(&app, USER_PIN).unwrap();
    // Token keys: any node can serve them.
    let pair = p256_pair(&app, true);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..4)
        .map(|i| {
            let (app, stop, done, failures) =
                (app.clone(), stop.clone(), done.clone(), failures.clone());
            std::thread::spawn(move || {
                let m = Mechanism::EcdsaHash {
                    hash: HashAlg::Sha256,
                };
                while !stop.load(Ordering::Relaxed) {
                    let r = app.call(&Request::Sign {
                        key: pair.1,
                        mechanism: m.clone(),
                        data: Secret::from_slice(format!("load {i}").as_bytes()),
                    });
                    match r {
                        Ok(Response::Signature { .. }) => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        other => failures.lock().unwrap().push(format!("{other:?}")),
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    // Kill the node that serves the client (the gateway keeps one client on one node).
    let open = |h: SocketAddr| metric(h, "tresor_node_connections_open");
    let (o1, o2) = (open(h1), open(h2));
    // The four threads share the process's multiplexed connection(s).
    assert!(o1 + o2 >= 1, "connections open: {o1} + {o2}");
    let (mut victim, mut survivor) = if o1 >= o2 { (n1, n2) } else { (n2, n1) };
    let before = done.load(Ordering::Relaxed);
    victim.0.kill().unwrap();
    victim.0.wait().unwrap();
    std::thread::sleep(Duration::from_millis(3000));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let after = done.load(Ordering::Relaxed);
    let failures = failures.lock().unwrap();
    if !failures.is_empty() {
        for n in ["node1", "node2"] {
            eprintln!(
                "--- {n}.log\n{}",
                std::fs::read_to_string(cl.dir.path().join(format!("{n}.log"))).unwrap_or_default()
            );
        }
    }
    assert!(
        failures.is_empty(),
        "operations failed during failover: {failures:?}"
    );
    assert!(before > 0, "no operation before the kill");
    assert!(
        after > before + 20,
        "too few operations after the kill: {before} → {after}"
    );
    sign_verify(&app, pair, b"after failover");
    // The gateway's own endpoint saw it all: one node left, logins relayed, still healthy.
    assert_eq!(metric(gw_http, "tresor_gateway_healthy_nodes"), 1);
    assert!(metric(gw_http, "tresor_gateway_logins_accepted_total") >= 2);
    assert!(metric(gw_http, "tresor_gateway_bytes_to_clients_total") > 0);
    assert_eq!(http_status(gw_http, "/health"), 200);
    // No node left: the gateway says it cannot serve.
    survivor.0.kill().unwrap();
    survivor.0.wait().unwrap();
    let t0 = std::time::Instant::now();
    while http_status(gw_http, "/health") != 503 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the gateway still reports healthy with no node"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(metric(gw_http, "tresor_gateway_healthy_nodes"), 0);
}

/// The status code of `GET path` on an HTTP endpoint of a node or gateway.
fn http_status(http: SocketAddr, path: &str) -> u16 {
    let mut s = TcpStream::connect(http).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    let mut head = String::new();
    s.read_to_string(&mut head).unwrap();
    head.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"))
}

/// A counter or gauge (without labels) from a node's or gateway's `/metrics`.
fn metric(http: SocketAddr, name: &str) -> u64 {
    let mut s = TcpStream::connect(http).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

/// A relay that records every byte it forwards, both directions.
struct Recorder {
    addr: SocketAddr,
    bytes: Arc<Mutex<Vec<u8>>>,
}

fn recorder(target: SocketAddr) -> Recorder {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let bytes = Arc::new(Mutex::new(Vec::new()));
    let b = bytes.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(a) = s else { continue };
            let Ok(z) = TcpStream::connect(target) else {
                continue;
            };
            for (mut from, mut to) in [(a.try_clone().unwrap(), z.try_clone().unwrap()), (z, a)] {
                let b = b.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    loop {
                        match from.read(&mut buf) {
                            Ok(0) | Err(_) => {
                                let _ = to.shutdown(std::net::Shutdown::Write);
                                return;
                            }
                            Ok(n) => {
                                b.lock().unwrap().extend_from_slice(&buf[..n]);
                                if to.write_all(&buf[..n]).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        }
    });
    Recorder { addr, bytes }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every byte between client and gateway and between gateway and node is recorded during
/// registration and a session; none of the secrets or payloads appears.
#[test]
fn gateway_sees_only_ciphertext() {
    let cl = Cluster::new();
    let (_node, node_addr) = cl.node("node1");
    let to_node = recorder(node_addr);
    let (_gw, gw) = cl.gateway(&[("node1", to_node.addr)]);
    let to_gw = recorder(gw);
    let setup = cl.setup_password(&[]);
    let (cfg, secrets) = cl.client_cfg("app", to_gw.addr, "acme-svc");
    ppin_ok(
        &cfg,
        &secrets,
        &["-p", "-e", "acme-svc", &cl.service_password],
    );
    ppin_ok(&cfg, &secrets, &["-a", "-e", "P1", &setup, USER_PIN]);
    let app = client(&cfg, &secrets);
    login(&app, USER_PIN).unwrap();
    let payload = b"TRESOR-KNOWN-PAYLOAD-7f3a9c1e5b2d";
    let aes_key: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let Response::ObjectCreated { object: aes } = app
        .call(&Request::CreateObject {
            template: Template::new()
                .with_ulong(CKA_CLASS, CKO_SECRET_KEY)
                .with_ulong(CKA_KEY_TYPE, CKK_AES)
                .with_bool(CKA_TOKEN, false)
                .with_bool(CKA_SENSITIVE, true)
                .with_bool(CKA_ENCRYPT, true)
                .with_bytes(CKA_VALUE, &aes_key),
        })
        .unwrap()
    else {
        panic!("no key")
    };
    let r = app
        .call(&Request::Encrypt {
            key: aes,
            mechanism: Mechanism::AesGcm {
                params: tresor_proto::GcmParams {
                    iv: vec![9u8; 12],
                    aad: Vec::new(),
                    tag_bits: 128,
                },
            },
            data: Secret::from_slice(payload),
        })
        .unwrap();
    assert!(matches!(r, Response::Encrypted { .. }), "{r:?}");
    let pair = p256_pair(&app, false);
    sign_verify(&app, pair, payload);
    drop(app);
    std::thread::sleep(Duration::from_millis(300));
    let node_side = to_node.bytes.lock().unwrap().clone();
    let client_side = to_gw.bytes.lock().unwrap().clone();
    assert!(
        node_side.len() > 2000,
        "too little was captured: {}",
        node_side.len()
    );
    for (name, secret) in [
        ("payload", &payload[..]),
        ("PIN", USER_PIN.as_bytes()),
        ("AES key", &aes_key[..]),
        ("setup password", setup.as_bytes()),
    ] {
        assert!(
            !contains(&node_side, secret),
            "the {name} crossed the gateway in clear"
        );
        assert!(
            !contains(&client_side, secret),
            "the {name} reached the gateway in clear"
        );
    }
    // The service password is for the gateway: it is inside the client ⇄ gateway TLS only.
    assert!(!contains(&client_side, cl.service_password.as_bytes()));
    assert!(!contains(&node_side, cl.service_password.as_bytes()));
    // The preamble is the only clear text on the node link; the rest are TLS records.
    assert!(contains(&node_side, b"acme-svc"));
    assert!(node_side.windows(3).any(|w| w == [0x17, 0x03, 0x03]));
}

/// Malformed, oversized and stalled input to the node and the gateway; both keep serving.
#[test]
fn malformed_input_harms_nobody() {
    let cl = Cluster::new();
    let (_node, node_addr) = cl.node("node1");
    let (_gw, gw) = cl.gateway(&[("node1", node_addr)]);
    let setup = cl.setup_password(&[]);
    let (cfg, secrets) = cl.client_cfg("app", gw, "acme-svc");
    ppin_ok(
        &cfg,
        &secrets,
        &["-p", "-e", "acme-svc", &cl.service_password],
    );
    ppin_ok(&cfg, &secrets, &["-a", "-e", "P1", &setup, USER_PIN]);
    let mut held = Vec::new();
    for target in [node_addr, gw] {
        // Oversized length prefix.
        let mut s = TcpStream::connect(target).unwrap();
        s.write_all(&u32::MAX.to_be_bytes()).unwrap();
        held.push(s);
        // Garbage.
        let mut s = TcpStream::connect(target).unwrap();
        s.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3, 4, 5])
            .unwrap();
        held.push(s);
        // Half a frame, then silence.
        let mut s = TcpStream::connect(target).unwrap();
        s.write_all(&[0, 0, 0, 40, 1]).unwrap();
        held.push(s);
        // Connect and close at once.
        drop(TcpStream::connect(target).unwrap());
    }
    let app = client(&cfg, &secrets);
    login(&app, USER_PIN).unwrap();
    let pair = p256_pair(&app, false);
    sign_verify(&app, pair, b"served while others misbehave");
    let t = ppin_ok(&cfg, &secrets, &["-t"]);
    assert!(t.contains("Number of failures: 0"), "{t}");
    drop(held);
}

/// `tresor dev` starts node and gateway, provisions a service and prints the ppin commands;
/// running them works.
#[test]
fn dev_prints_a_working_client_setup() {
    let dir = tempfile::tempdir().unwrap();
    let (g, n, m, gm) = (free_port(), free_port(), free_port(), free_port());
    let mut child = Command::new(TRESOR)
        .args([
            "dev",
            "--gateway-port",
            &g.to_string(),
            "--node-port",
            &n.to_string(),
        ])
        .args(["--metrics-port", &m.to_string()])
        .args(["--gateway-metrics-port", &gm.to_string()])
        .args(["--rest-port", "0", "--rest-metrics-port", "0"])
        .env("TRESOR_DEV_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{g}").parse().unwrap();
    wait_port(addr, "tresor dev", &mut child);
    let mut child = Proc(child);
    let mut out = String::new();
    // Read what it printed so far (it keeps running).
    let mut buf = [0u8; 65536];
    let start = Instant::now();
    while !out.contains("ppin -t") && start.elapsed() < Duration::from_secs(30) {
        let n = child.0.stdout.as_mut().unwrap().read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let cfg = secret_line(&out, "export TRESOR_PKCS11_CONF=");
    let secrets = secret_line(&out, "export TRESOR_SECRETS_CONF=");
    let run = |line: &str| {
        let args: Vec<String> = line
            .split_whitespace()
            .skip(1)
            .map(|a| a.trim_matches('\'').to_owned())
            .collect();
        let o = Command::new(PPIN)
            .args(&args)
            .env("TRESOR_PKCS11_CONF", &cfg)
            .env("TRESOR_SECRETS_CONF", &secrets)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(o.status.success(), "{line}: {}", text(&o));
        text(&o)
    };
    for prefix in ["ppin -p", "ppin -a"] {
        let line = out
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in: {out}"));
        run(line);
    }
    let t = run("ppin -t");
    assert!(t.contains("Number of failures: 0"), "{t}");
    // Metrics are served.
    let mut s = TcpStream::connect(("127.0.0.1", m)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.contains("tresor_node_requests_total"), "{body}");
    // So are the gateway's, as printed: the logins of `ppin -t` went through it.
    let gw_http: SocketAddr = out
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("gateway")?
                .split("(health http://")
                .nth(1)?
                .split('/')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no gateway health address in: {out}"));
    assert_eq!(gw_http.port(), gm);
    assert_eq!(http_status(gw_http, "/health"), 200);
    assert!(metric(gw_http, "tresor_gateway_logins_accepted_total") >= 1);
    drop(child);
}
