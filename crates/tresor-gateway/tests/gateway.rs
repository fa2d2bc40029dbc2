//! End-to-end tests of phase one over real sockets on 127.0.0.1, with fake HSM nodes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tresor_proto::gateway::{codes, GatewayMsg, MAX_GATEWAY_FRAME, NODE_SEALED};

const LOCAL: &str = "127.0.0.1/32";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_then_echo_then_cached_login() {
    let node = FakeNode::start("n1", READY).await;
    let env = start_env(
        vec![node.node_addr()],
        vec![service("alice", "pw-alice", &[LOCAL], &["P1"])],
        |_| {},
    )
    .await;
    let (reply, mut s) = env.login("alice", "pw-alice", "P1").await;
    let GatewayMsg::Accepted {
        node: n,
        session_id,
    } = reply
    else {
        panic!("expected Accepted, got {reply:?}");
    };
    assert_eq!(n, "n1");
    assert_eq!(
        echo(&mut s, b"hello through the gateway").await,
        b"hello through the gateway"
    );
    let big = vec![0x5au8; 200_000];
    assert_eq!(echo(&mut s, &big).await, big);
    {
        let seen = node.seen.lock();
        assert_eq!(seen.len(), 1);
        let p = &seen[0];
        assert_eq!(p.service, "svc-alice");
        assert_eq!(p.service_user, "alice");
        assert_eq!(p.partition, "P1");
        assert_eq!(p.client_id, "test-app");
        assert!(p.source.starts_with("127.0.0.1:"), "{}", p.source);
        assert_eq!(p.session_id, session_id);
    }
    drop(s);

    // The second login is served from the auth cache.
    let (reply, _s2) = env.login("alice", "pw-alice", "P1").await;
    assert!(matches!(reply, GatewayMsg::Accepted { .. }), "{reply:?}");
    let st = env.gw.stats();
    assert_eq!(st.accepted, 2);
    assert_eq!(st.auth_cache_hits, 1);
    assert!(st.bytes_from_clients >= 200_000);
    assert_eq!(st.healthy_nodes, 1);
    env.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_password_then_good_login() {
    let node = FakeNode::start("n1", READY).await;
    let env = start_env(
        vec![node.node_addr()],
        vec![service("bob", "right", &[LOCAL], &["P1"])],
        |_| {},
    )
    .await;
    let (reply, _) = env.login("bob", "wrong", "P1").await;
    assert_eq!(refused_code(&reply), Some(codes::SERVICE_AUTH_FAILED));
    assert_eq!(env.dir.get("bob").unwrap().failures, 1);
    let (reply, mut s) = env.login("bob", "right", "P1").await;
    assert!(matches!(reply, GatewayMsg::Accepted { .. }), "{reply:?}");
    assert_eq!(echo(&mut s, b"x").await, b"x");
    assert_eq!(env.dir.get("bob").unwrap().failures, 0, "success resets");
    // A wrong password after a cached success is still refused.
    let (reply, _) = env.login("bob", "wrong", "P1").await;
    assert_eq!(refused_code(&reply), Some(codes::SERVICE_AUTH_FAILED));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_user_same_code() {
    let node = FakeNode::start("n1", READY).await;
    let env = start_env(
        vec![node.node_addr()],
        vec![service("carol", "pw", &[LOCAL], &["P1"])],
        |_| {},
    )
    .await;
    let (reply, _) = env.login("mallory", "pw", "P1").await;
    assert_eq!(refused_code(&reply), Some(codes::SERVICE_AUTH_FAILED));
    assert_eq!(env.gw.stats().refused.auth_failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lockout_after_max_failures() {
    let node = FakeNode::start("n1", READY).await;
    let mut svc = service("dave", "right", &[LOCAL], &["P1"]);
    svc.record.max_failures = 3;
    let env = start_env(vec![node.node_addr()], vec![svc], |_| {}).await;
    for _ in 0..3 {
        let (reply, _) = env.login("dave", "wrong", "P1").await;
        assert_eq!(refused_code(&reply), Some(codes::SERVICE_AUTH_FAILED));
    }
    let e = env.dir.get("dave").unwrap();
    assert_eq!(e.failures, 3);
    assert!(e.locked_until > 0);
    let (reply, _) = env.login("dave", "right", "P1").await;
    assert_eq!(refused_code(&reply), Some(codes::SERVICE_LOCKED));

    // An operator unlock (directory change) takes effect.
    let mut e = env.dir.get("dave").unwrap();
    e.failures = 0;
    e.locked_until = 0;
    env.dir.put(e);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (reply, _) = env.login("dave", "right", "P1").await;
    assert!(matches!(reply, GatewayMsg::Accepted { .. }), "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disabled_service_is_locked_even_when_cached() {
    let node = FakeNode::start("n1", READY).await;
    let env = start_env(
        vec![node.node_addr()],
        vec![
            service("erin", "pw", &[LOCAL], &["P1"]),
            service("other", "pw", &[LOCAL], &["P1"]),
        ],
        |_| {},
    )
    .await;
    let (reply, _) = env.login("erin", "pw", "P1").await;
    assert!(matches!(reply, GatewayMsg::Accepted { .. }), "{reply:?}");
    let mut e = env.dir.get("erin").unwrap();
    e.record.disabled = true;
    env.dir.put(e);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (reply, _) = env.login("erin", "pw", "P1").await;
    assert_eq!(refused_code(&reply), Some(codes::SERVICE_LOCKED));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn service_allowlist_excludes_source() {
    let node = FakeNode::start("n1", READY).await;
    let env = start_env(
        vec![node.node_addr()],
        vec![
            service("far", "pw", &["10.0.0.0/8"], &["P1"]),
            service("near", "pw", &[LOCAL], &["P1"]),
        ],
        |_| {},
    )
    .await;
    let (reply, _) = env.login("far", "pw", "P1").await;
    assert_eq!(refused_code(&reply), Some(codes::ADDRESS_NOT_ALLOWED));
    assert_eq!(env.gw.stats().refused.address_not_allowed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_allowlist_matches_closed_before_tls() {
    let node = FakeNode::start("n1", READY).await;
    let env = start_env(
        vec![node.node_addr()],
        vec![service(
            "far",
            "pw",
            &["10.0.0.0/8", "2001:db8::/32"],
            &["P1"],
        )],
        |_| {},
    )
    .await;
    let mut tcp = TcpStream::connect(env.gw.local_addr()).await.unwrap();
    assert!(closes_within(&mut tcp, Duration::from_secs(3)).await);
    assert!(
        env.tls().await.is_err(),
        "no TLS for an address no service allows"
    );
    assert_eq!(env.gw.stats().refused.address_not_allowed_before_tls, 2);
    assert_eq!(env.gw.stats().refused.tls_failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partition_not_allowed() {
    let node = FakeNode::start("n1", READY).await;
    let env = start_env(
        vec![node.node_addr()],
        vec![service("frank", "pw", &[LOCAL], &["P1"])],
        |_| {},
    )
    .await;
    let (reply, _) = env.login("frank", "pw", "P2").await;
    assert_eq!(refused_code(&reply), Some(codes::PARTITION_NOT_ALLOWED));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_healthy_node() {
    // One node that is gone, one that answers "sealed".
    let gone = FakeNode::start("gone", READY).await;
    let gone_addr = gone.node_addr();
    gone.stop().await;
    let sealed = FakeNode::start("sealed", NODE_SEALED).await;
    let env = start_env(
        vec![gone_addr, sealed.node_addr()],
        vec![service("gina", "pw", &[LOCAL], &["P1"])],
        |_| {},
    )
    .await;
    let (reply, _) = env.login("gina", "pw", "P1").await;
    assert_eq!(refused_code(&reply), Some(codes::NO_NODE));
    assert!(sealed.seen.lock().is_empty());
    assert_eq!(env.gw.stats().healthy_nodes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn service_restricted_to_nodes() {
    let n1 = FakeNode::start("n1", READY).await;
    let n2 = FakeNode::start("n2", READY).await;
    let mut svc = service("hank", "pw", &[LOCAL], &["P1"]);
    svc.record.nodes = vec!["n2".into()];
    let env = start_env(vec![n1.node_addr(), n2.node_addr()], vec![svc], |_| {}).await;
    for _ in 0..6 {
        let (reply, _) = env.login("hank", "pw", "P1").await;
        assert!(
            matches!(&reply, GatewayMsg::Accepted { node, .. } if node == "n2"),
            "{reply:?}"
        );
    }
    assert!(n1.seen.lock().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_node_is_skipped() {
    let live = FakeNode::start("live", READY).await;
    let dead = FakeNode::start("dead", READY).await;
    let env = start_env(
        vec![live.node_addr(), dead.node_addr()],
        vec![service("ivy", "pw", &[LOCAL], &["P1"])],
        |c| c.health_interval = Duration::from_secs(60),
    )
    .await;
    assert_eq!(env.gw.stats().healthy_nodes, 2);
    dead.stop().await;
    for i in 0..8u8 {
        let (reply, mut s) = env.login("ivy", "pw", "P1").await;
        assert!(
            matches!(&reply, GatewayMsg::Accepted { node, .. } if node == "live"),
            "{reply:?}"
        );
        assert_eq!(echo(&mut s, &[i; 3]).await, [i; 3]);
    }
    assert_eq!(live.seen.lock().len(), 8);
    assert_eq!(env.gw.stats().healthy_nodes, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_client_dropped_others_served() {
    let node = FakeNode::start("n1", READY).await;
    let env = start_env(
        vec![node.node_addr()],
        vec![service("jack", "pw", &[LOCAL], &["P1"])],
        |c| c.handshake_timeout = Duration::from_secs(1),
    )
    .await;
    let mut stalled = env.tls().await.unwrap();
    stalled.write_all(&100u32.to_be_bytes()).await.unwrap();
    stalled.write_all(&[1, 0x40, 0, 0]).await.unwrap();
    stalled.flush().await.unwrap();
    let started = Instant::now();
    let (reply, mut s) = env.login("jack", "pw", "P1").await;
    assert!(matches!(reply, GatewayMsg::Accepted { .. }), "{reply:?}");
    assert_eq!(echo(&mut s, b"ok").await, b"ok");
    assert!(closes_within(&mut stalled, Duration::from_secs(3)).await);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(700), "{waited:?}");
    assert_eq!(env.gw.stats().refused.handshake_timeout, 1);
    // A TCP connection that never starts TLS is dropped too.
    let mut raw = TcpStream::connect(env.gw.local_addr()).await.unwrap();
    assert!(closes_within(&mut raw, Duration::from_secs(3)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_hello_refused() {
    let node = FakeNode::start("n1", READY).await;
    let env = start_env(
        vec![node.node_addr()],
        vec![service("kim", "pw", &[LOCAL], &["P1"])],
        |_| {},
    )
    .await;
    let mut s = env.tls().await.unwrap();
    s.write_all(&((MAX_GATEWAY_FRAME as u32) + 1).to_be_bytes())
        .await
        .unwrap();
    s.flush().await.unwrap();
    let reply = read_msg(&mut s).await.unwrap();
    assert_eq!(refused_code(&reply), Some(codes::BAD_HELLO));
    assert!(closes_within(&mut s, Duration::from_secs(3)).await);

    // Not a Hello at all.
    let mut s = env.tls().await.unwrap();
    write_msg(&mut s, GatewayMsg::Probe {}).await;
    let reply = read_msg(&mut s).await.unwrap();
    assert_eq!(refused_code(&reply), Some(codes::BAD_HELLO));
    assert_eq!(env.gw.stats().refused.bad_hello, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_instead_of_tls() {
    let node = FakeNode::start("n1", READY).await;
    let env = start_env(
        vec![node.node_addr()],
        vec![service("lea", "pw", &[LOCAL], &["P1"])],
        |_| {},
    )
    .await;
    let mut junk = TcpStream::connect(env.gw.local_addr()).await.unwrap();
    junk.write_all(&[0xffu8; 4096]).await.unwrap();
    let (reply, mut s) = env.login("lea", "pw", "P1").await;
    assert!(matches!(reply, GatewayMsg::Accepted { .. }), "{reply:?}");
    assert_eq!(echo(&mut s, b"fine").await, b"fine");
    assert!(closes_within(&mut junk, Duration::from_secs(3)).await);
    assert_eq!(env.gw.stats().refused.tls_failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_connection_closed() {
    let node = FakeNode::start("n1", READY).await;
    let env = start_env(
        vec![node.node_addr()],
        vec![service("max", "pw", &[LOCAL], &["P1"])],
        |c| c.idle_timeout = Duration::from_millis(600),
    )
    .await;
    let (reply, mut s) = env.login("max", "pw", "P1").await;
    assert!(matches!(reply, GatewayMsg::Accepted { .. }), "{reply:?}");
    // Activity keeps it open past the timeout.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(echo(&mut s, b"k").await, b"k");
    }
    let started = Instant::now();
    assert!(closes_within(&mut s, Duration::from_secs(3)).await);
    assert!(started.elapsed() >= Duration::from_millis(400));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(env.gw.stats().idle_timeouts, 1);
    assert_eq!(env.gw.stats().open, 0);
}

/// Relayed connections end when the operator withdraws what admitted them (service disabled
/// or deleted, source address or partition no longer allowed); a rotated password, a lockout
/// and an unrelated change keep them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn withdrawn_access_closes_relayed_connections() {
    let node = FakeNode::start("n1", READY).await;
    let env = start_env(
        vec![node.node_addr()],
        vec![
            service("dis", "pw", &[LOCAL], &["P1"]),
            service("del", "pw", &[LOCAL], &["P1"]),
            service("addr", "pw", &[LOCAL], &["P1"]),
            service("part", "pw", &["127.0.0.1/32"], &["P1", "P2"]),
            service("keep", "pw", &[LOCAL], &["P1"]),
        ],
        |c| c.directory_cache_ttl = Duration::from_millis(100),
    )
    .await;
    let mut conns = Vec::new();
    for user in ["dis", "del", "addr", "part", "keep"] {
        let (reply, mut s) = env.login(user, "pw", "P1").await;
        assert!(matches!(reply, GatewayMsg::Accepted { .. }), "{reply:?}");
        assert_eq!(echo(&mut s, b"hi").await, b"hi");
        conns.push(s);
    }
    let change = |user: &str, f: &dyn Fn(&mut tresor_gateway::ServiceEntry)| {
        let mut e = env.dir.get(user).unwrap();
        f(&mut e);
        env.dir.put(e);
    };
    change("dis", &|e| e.record.disabled = true);
    env.dir.remove("del");
    change("addr", &|e| {
        e.record.allowlist = vec!["10.0.0.0/8".parse().unwrap()];
    });
    change("part", &|e| e.record.partitions = vec!["P2".into()]);
    // Locked out by somebody's wrong passwords: the authenticated connection stays.
    change("keep", &|e| {
        e.failures = 5;
        e.locked_until = i64::MAX;
    });
    let mut keep = conns.pop().unwrap();
    for (i, mut s) in conns.into_iter().enumerate() {
        assert!(
            closes_within(&mut s, Duration::from_secs(3)).await,
            "connection {i} still open"
        );
    }
    assert_eq!(echo(&mut keep, b"still").await, b"still");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(echo(&mut keep, b"still here").await, b"still here");
    assert_eq!(env.gw.stats().withdrawn, 4);
}

/// A directory that reports its changes (as the store-backed one does) reaches the gateway
/// at once, not when the cache expires: here the cache would keep entries for a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reported_directory_changes_take_effect_at_once() {
    let node = FakeNode::start("n1", READY).await;
    let env = start_env(
        vec![node.node_addr()],
        vec![
            service("dis", "pw", &[LOCAL], &["P1"]),
            service("keep", "pw", &[LOCAL], &["P1"]),
        ],
        |c| c.directory_cache_ttl = Duration::from_secs(60),
    )
    .await;
    // A name nobody has yet: refused, and the answer cached.
    let (reply, _) = env.login("late", "pw", "P1").await;
    assert_eq!(refused_code(&reply), Some(codes::SERVICE_AUTH_FAILED));
    let (reply, mut dis) = env.login("dis", "pw", "P1").await;
    assert!(matches!(reply, GatewayMsg::Accepted { .. }), "{reply:?}");
    let (reply, mut keep) = env.login("keep", "pw", "P1").await;
    assert!(matches!(reply, GatewayMsg::Accepted { .. }), "{reply:?}");
    assert_eq!(echo(&mut dis, b"hi").await, b"hi");

    let t0 = Instant::now();
    let mut e = env.dir.get("dis").unwrap();
    e.record.disabled = true;
    env.dir.put(e);
    assert!(
        closes_within(&mut dis, Duration::from_secs(2)).await,
        "the disabled service's connection stayed open"
    );
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(2), "closed after {took:?}");
    // The service added after the cached refusal is admitted without waiting for the cache.
    env.dir.put(service("late", "pw", &[LOCAL], &["P1"]));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (reply, _late) = env.login("late", "pw", "P1").await;
    assert!(matches!(reply, GatewayMsg::Accepted { .. }), "{reply:?}");
    // A new login of the disabled service is refused at once too.
    let (reply, _) = env.login("dis", "pw", "P1").await;
    assert!(refused_code(&reply).is_some(), "{reply:?}");
    assert_eq!(echo(&mut keep, b"still").await, b"still");
    let stats = env.gw.stats();
    assert_eq!(stats.withdrawn, 1);
    assert!(stats.directory_changes >= 2, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn per_source_connection_limit() {
    let node = FakeNode::start("n1", READY).await;
    let env = start_env(
        vec![node.node_addr()],
        vec![service("ned", "pw", &[LOCAL], &["P1"])],
        |c| c.max_connections_per_source = 1,
    )
    .await;
    let (reply, mut first) = env.login("ned", "pw", "P1").await;
    assert!(matches!(reply, GatewayMsg::Accepted { .. }), "{reply:?}");
    let mut s = env.tls().await.unwrap();
    let reply = read_msg(&mut s).await.unwrap();
    assert_eq!(refused_code(&reply), Some(codes::MAX_CONNECTIONS));
    assert_eq!(echo(&mut first, b"still").await, b"still");
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (reply, _) = env.login("ned", "pw", "P1").await;
    assert!(matches!(reply, GatewayMsg::Accepted { .. }), "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limited_per_user() {
    let node = FakeNode::start("n1", READY).await;
    let mut svc = service("olga", "pw", &[LOCAL], &["P1"]);
    svc.record.max_failures = 100;
    let env = start_env(vec![node.node_addr()], vec![svc], |c| {
        c.attempts_per_minute_per_user = 2;
    })
    .await;
    for _ in 0..2 {
        let (reply, _) = env.login("olga", "bad", "P1").await;
        assert_eq!(refused_code(&reply), Some(codes::SERVICE_AUTH_FAILED));
    }
    let (reply, _) = env.login("olga", "pw", "P1").await;
    assert_eq!(refused_code(&reply), Some(codes::RATE_LIMITED));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_closes_relayed_connections() {
    let node = FakeNode::start("n1", READY).await;
    let env = start_env(
        vec![node.node_addr()],
        vec![service("pat", "pw", &[LOCAL], &["P1"])],
        |_| {},
    )
    .await;
    let (reply, mut s) = env.login("pat", "pw", "P1").await;
    assert!(matches!(reply, GatewayMsg::Accepted { .. }), "{reply:?}");
    let addr = env.gw.local_addr();
    env.gw.shutdown().await;
    assert!(closes_within(&mut s, Duration::from_secs(3)).await);
    let mut b = [0u8; 1];
    if let Ok(mut t) = TcpStream::connect(addr).await {
        assert!(matches!(t.read(&mut b).await, Ok(0) | Err(_)));
    }
}
