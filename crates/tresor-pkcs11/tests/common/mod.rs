//! A real Tresor stack for black-box tests of the built library: `tresor init`, `tresor admin`
//! (partition, service, gateway certificate), `tresor hsm` node(s) and a `tresor gateway` on
//! free 127.0.0.1 ports, then `ppin -p` / `ppin -a` to register this client, and a
//! `primus.cfg` with `slots` slots (ids 0..slots, all on partition P1) for the library.
//!
//! Binaries come from the target directory: build them first with
//! `cargo build -p tresor-cli` (the test fails with that instruction if they are missing).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const SO_PIN: &str = "so-pin-0001";
pub const USER_PIN: &str = "user-pin-0001";
/// The id of the configured slot without credentials.
pub const NO_TOKEN_SLOT: u64 = 99;

/// `target/debug` (or whichever profile directory holds this test binary).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The built library: `cargo test` leaves the fresh one in `deps/`, `cargo build` copies it
/// up; the newer of the two is the one under test.
pub fn library() -> PathBuf {
    let candidates = [
        target_dir().join("deps").join("libtresor_pkcs11.so"),
        target_dir().join("libtresor_pkcs11.so"),
    ];
    candidates
        .into_iter()
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
        .expect("libtresor_pkcs11.so is not built")
}

fn binary(name: &str) -> PathBuf {
    let p = target_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build -p tresor-cli` before these tests",
        p.display()
    );
    p
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed on drop.
pub struct Proc(pub Child);

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

/// Waits until `child` listens on `addr`; `Err` if it exited first (a port taken between
/// choosing and binding it: the caller retries on other ports).
fn wait_port(addr: SocketAddr, what: &str, child: &mut Child) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!("{what} exited early ({st})"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on {addr}");
}

/// Spawns a listening process up to three times on fresh ports.
fn spawn_listening(
    what: &str,
    mut spawn: impl FnMut() -> (Child, SocketAddr),
) -> (Child, SocketAddr) {
    let mut last = String::new();
    for _ in 0..3 {
        let (mut child, addr) = spawn();
        match wait_port(addr, what, &mut child) {
            Ok(()) => return (child, addr),
            Err(e) => {
                let _ = child.wait();
                last = e;
            }
        }
    }
    panic!("{last}");
}

fn secret_line(out: &str, prefix: &str) -> String {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| panic!("no {prefix:?} in: {out}"))
}

/// A running stack and the client files that reach it.
pub struct Stack {
    pub dir: tempfile::TempDir,
    db: PathBuf,
    share: PathBuf,
    root: PathBuf,
    gw_cert: PathBuf,
    gw_key: PathBuf,
    pub nodes: Vec<(String, Proc, SocketAddr, SocketAddr)>,
    pub gateway: Option<Proc>,
    pub config: PathBuf,
    pub secrets: PathBuf,
}

impl Stack {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(binary("tresor"));
        c.args(args)
            .env("TRESOR_STORE", &self.db)
            .env("RUST_LOG", "warn");
        if matches!(args.first(), Some(&"admin") | Some(&"cert") | Some(&"hsm")) {
            c.arg("--share-file").arg(&self.share);
        }
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.cmd(args).output().unwrap();
        assert!(o.status.success(), "tresor {args:?} failed: {}", text(&o));
        text(&o)
    }

    /// Provisions a store, starts `nodes` nodes and a gateway, registers the client and
    /// writes a configuration with `slots` slots.
    pub fn start(nodes: usize, slots: u32) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let shares = dir.path().join("shares");
        let mut s = Stack {
            db: dir.path().join("tresor.db"),
            share: shares.join("share-1.txt"),
            root: dir.path().join("root.pem"),
            gw_cert: dir.path().join("gw.pem"),
            gw_key: dir.path().join("gw.key"),
            config: dir.path().join("primus.cfg"),
            secrets: dir.path().join(".secrets.cfg"),
            nodes: Vec::new(),
            gateway: None,
            dir,
        };
        s.ok(&[
            "init",
            "--shares",
            "1",
            "--threshold",
            "1",
            "--share-dir",
            shares.to_str().unwrap(),
            "--root-cert",
            s.root.to_str().unwrap(),
        ]);
        s.ok(&[
            "admin",
            "partition",
            "create",
            "P1",
            "--so-pin",
            SO_PIN,
            "--user-pin",
            USER_PIN,
        ]);
        let out = s.ok(&[
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
        let service_password = secret_line(&out, "Service user password:");
        s.ok(&[
            "cert",
            "gateway",
            "--san",
            "127.0.0.1",
            "--cert",
            s.gw_cert.to_str().unwrap(),
            "--key",
            s.gw_key.to_str().unwrap(),
        ]);
        for i in 0..nodes {
            let name = format!("node{}", i + 1);
            let mut http: SocketAddr = "127.0.0.1:0".parse().unwrap();
            let (child, addr) = spawn_listening(&name, || {
                let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
                http = format!("127.0.0.1:{}", free_port()).parse().unwrap();
                let log = std::fs::File::create(s.dir.path().join(format!("{name}.log"))).unwrap();
                let child = s
                    .cmd(&[
                        "hsm",
                        "--name",
                        &name,
                        "--listen",
                        &addr.to_string(),
                        "--http",
                        &http.to_string(),
                    ])
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .unwrap();
                (child, addr)
            });
            s.nodes.push((name, Proc(child), addr, http));
        }
        let (child, gw) = spawn_listening("gateway", || {
            let gw: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let mut args = vec![
                "gateway".to_owned(),
                "--listen".into(),
                gw.to_string(),
                "--cert".into(),
                s.gw_cert.to_str().unwrap().into(),
                "--key".into(),
                s.gw_key.to_str().unwrap().into(),
                "--health-interval".into(),
                "1".into(),
            ];
            for (n, _, a, _) in &s.nodes {
                args.push("--node".into());
                args.push(format!("{n}={a}"));
            }
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let child = s
                .cmd(&refs)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            (child, gw)
        });
        s.gateway = Some(Proc(child));
        std::thread::sleep(Duration::from_millis(1500));
        let setup = {
            let out = s.ok(&[
                "admin",
                "credentials",
                "setup-password",
                "--partition",
                "P1",
            ]);
            out.lines()
                .map(str::trim)
                .find(|l| l.len() == 29 && l.matches('-').count() == 4)
                .unwrap_or_else(|| panic!("no setup password in: {out}"))
                .to_owned()
        };
        let mut slot_entries = String::new();
        for id in 0..slots {
            slot_entries.push_str(&format!(
                "slot{id}: {{ client_id = \"p11test\"; user_name = \"P1\"; proxy_user = \"acme-svc\"; id = {id}; }}; "
            ));
        }
        // A partition this client has no credentials for: listed without a token.
        slot_entries.push_str(&format!(
            "slot{NO_TOKEN_SLOT}: {{ client_id = \"p11test\"; user_name = \"NOPE\"; proxy_user = \"acme-svc\"; id = {NO_TOKEN_SLOT}; }}; "
        ));
        std::fs::write(
            &s.config,
            format!(
                "version = \"1.0\";\nprimus: {{\n  ca_file = \"{}\";\n  wait_delay = 100;\n  wait_max_tries = 5;\n  hsms: {{\n    hsm0: {{ host = \"127.0.0.1\"; port = \"{}\"; priority = 0;\n      slots: {{ {slot_entries} }}; }};\n  }};\n  log: {{ file = \"{}\"; write_log_file = true; trace_timestamp = true; trace_pid = true; trace_function = true; trace_level = 6; }};\n}};\n",
                s.root.display(),
                gw.port(),
                s.log_file().display()
            ),
        )
        .unwrap();
        s.ppin(&["-p", "-e", "acme-svc", &service_password]);
        s.ppin(&["-a", "-e", "P1", &setup, USER_PIN]);
        s
    }

    fn ppin(&self, args: &[&str]) {
        let o = Command::new(binary("ppin"))
            .arg("-c")
            .arg(&self.config)
            .arg("-s")
            .arg(&self.secrets)
            .args(args)
            .env_remove("TRESOR_PKCS11_CONF")
            .env_remove("SECUROSYS_PKCS11_CONF")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(o.status.success(), "ppin {args:?} failed: {}", text(&o));
    }

    /// Points the library at this stack (process environment: call before C_Initialize).
    pub fn export_env(&self) {
        std::env::set_var("TRESOR_PKCS11_CONF", &self.config);
        std::env::set_var("TRESOR_SECRETS_CONF", &self.secrets);
        std::env::remove_var("SECUROSYS_PKCS11_CONF");
    }

    /// A node's gauge or counter from its `/metrics`.
    pub fn metric(http: SocketAddr, name: &str) -> u64 {
        let mut s = TcpStream::connect(http).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Requests a node has answered so far (all kinds; health probes not included).
    pub fn requests(http: SocketAddr) -> u64 {
        let mut s = TcpStream::connect(http).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body.lines()
            .filter(|l| l.starts_with("tresor_node_requests_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.trim().parse::<u64>().ok())
            .sum()
    }

    /// The log of a node (for failure reports).
    pub fn node_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// The library's log file (the `log` block of the configuration).
    pub fn log_file(&self) -> PathBuf {
        self.dir.path().join("p11.log")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The return value of a call that must fail.
pub fn rv<T: std::fmt::Debug>(r: cryptoki::error::Result<T>) -> cryptoki::error::RvError {
    match r {
        Err(cryptoki::error::Error::Pkcs11(rv, _)) => rv,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

pub fn pin(p: &str) -> cryptoki::types::AuthPin {
    cryptoki::types::AuthPin::new(p.into())
}

/// The configured slot `id`.
pub fn slot(p: &cryptoki::context::Pkcs11, id: u64) -> cryptoki::slot::Slot {
    p.get_all_slots()
        .unwrap()
        .into_iter()
        .find(|s| s.id() == id)
        .unwrap_or_else(|| panic!("no slot {id}"))
}

/// The library's 3.2 function list, for the functions the `cryptoki` crate does not wrap and
/// for the raw-pointer rules.
pub struct RawLib {
    _lib: libloading::Library,
    pub f: cryptoki_sys::CK_FUNCTION_LIST_3_2,
}

impl RawLib {
    #[allow(unsafe_code)]
    pub fn load(path: &Path) -> RawLib {
        use cryptoki_sys as sys;
        // SAFETY: loading the library under test.
        let lib = unsafe { libloading::Library::new(path) }.unwrap();
        // SAFETY: `C_GetInterface` with its cryptoki-sys type; the table it returns lives as
        // long as the library (kept in `_lib`).
        unsafe {
            let get_if: libloading::Symbol<
                unsafe extern "C" fn(
                    *mut u8,
                    *mut sys::CK_VERSION,
                    *mut *mut sys::CK_INTERFACE,
                    sys::CK_FLAGS,
                ) -> sys::CK_RV,
            > = lib.get(b"C_GetInterface\0").unwrap();
            let mut v = sys::CK_VERSION { major: 3, minor: 2 };
            let mut iface = std::ptr::null_mut();
            assert_eq!(
                get_if(c"PKCS 11".as_ptr() as *mut u8, &mut v, &mut iface, 0),
                sys::CKR_OK
            );
            let f = *((*iface).pFunctionList as *const sys::CK_FUNCTION_LIST_3_2);
            RawLib { _lib: lib, f }
        }
    }

    /// A read/write session on `slot` (same application as the `cryptoki` context that
    /// initialised the library).
    #[allow(unsafe_code)]
    pub fn open_session(&self, slot: u64) -> cryptoki_sys::CK_SESSION_HANDLE {
        use cryptoki_sys as sys;
        let mut h = 0;
        // SAFETY: a plain C_OpenSession with a writable handle.
        let rv = unsafe {
            (self.f.C_OpenSession.unwrap())(
                slot,
                sys::CKF_SERIAL_SESSION | sys::CKF_RW_SESSION,
                std::ptr::null_mut(),
                None,
                &mut h,
            )
        };
        assert_eq!(rv, sys::CKR_OK);
        h
    }
}
