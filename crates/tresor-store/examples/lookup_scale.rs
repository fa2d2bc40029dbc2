//! Scale check of the SQLite store: label lookups in one big partition.
//!
//! ```text
//! cargo run --release -p tresor-store --example lookup_scale -- [N] [DB_PATH]
//! ```
//!
//! Fills one partition with `N` objects (default 1,000,000) in commits of 10,000, each with a
//! random 32-byte sealed blob, then reopens the store and times 10,000 random label lookups
//! (`find_objects` with a label filter). Prints the fill rate, the time to open the filled
//! store, and p50/p99/max of the lookups. Without `DB_PATH` the database lives in a temporary
//! directory that is removed at the end.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tresor_store::{
    Mutation, ObjectFilter, ObjectRow, PartitionRow, SqliteStore, Store, WriteBatch,
};

const BATCH: u64 = 10_000;
const LOOKUPS: usize = 10_000;
const PARTITION: i64 = 7;

/// SplitMix64: a small deterministic generator, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|_| self.next().to_le_bytes())
            .take(n)
            .collect()
    }
}

fn label(i: u64) -> String {
    format!("key-{i:08}")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(idx).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u64 = match args.next() {
        Some(a) => a.replace('_', "").parse()?,
        None => 1_000_000,
    };
    let (_tmp, path) = match args.next() {
        Some(p) => (None, PathBuf::from(p)),
        None => {
            let dir = tempfile::tempdir()?;
            let path = dir.path().join("scale.db");
            (Some(dir), path)
        }
    };
    println!("objects: {n}, database: {}", path.display());

    let store = SqliteStore::open(&path).await?;
    let mut rng = Rng(0x7265_736f_7274);

    let existing = store.count_objects(PARTITION).await?;
    if existing == 0 {
        let mut b = WriteBatch::new();
        b.push(Mutation::InsertPartition(PartitionRow {
            id: PARTITION,
            name: "scale".into(),
            created: 0,
            version: 1,
            sealed: rng.bytes(32),
            so_failures: 0,
            user_failures: 0,
        }));
        store.commit(b).await?;

        let start = Instant::now();
        let mut next = 0u64;
        while next < n {
            let end = (next + BATCH).min(n);
            let mut b = WriteBatch::new();
            for i in next..end {
                let u = rng.bytes(16);
                b.push(Mutation::InsertObject(ObjectRow {
                    partition_id: PARTITION,
                    object_id: i as i64 + 1,
                    version: 1,
                    class: 3,
                    key_type: Some(0x40),
                    label: label(i),
                    ckaid: i.to_be_bytes().to_vec(),
                    uuid: format!(
                        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                        u32::from_le_bytes([u[0], u[1], u[2], u[3]]),
                        u16::from_le_bytes([u[4], u[5]]),
                        u16::from_le_bytes([u[6], u[7]]) & 0xfff,
                        u16::from_le_bytes([u[8], u[9]]) & 0xfff,
                        u64::from_le_bytes([u[10], u[11], u[12], u[13], u[14], u[15], 0, 0]),
                    ),
                    usage_count: 0,
                    sealed: rng.bytes(32),
                }));
            }
            store.commit(b).await?;
            next = end;
            if next % 100_000 == 0 || next == n {
                println!("  filled {next} ({:.1} s)", start.elapsed().as_secs_f64());
            }
        }
        let fill = start.elapsed();
        println!(
            "fill: {n} objects in {:.1} s ({:.0} objects/s, {:.1} ms per 10k-object commit)",
            fill.as_secs_f64(),
            n as f64 / fill.as_secs_f64(),
            fill.as_secs_f64() * 1000.0 / (n as f64 / BATCH as f64).ceil(),
        );
    } else {
        println!("reusing {existing} existing objects");
    }
    let n = store.count_objects(PARTITION).await? as u64;
    store.close().await;
    drop(store);

    let size: u64 = ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
        .map(|m| m.len())
        .sum();
    println!("database size: {:.1} MiB", size as f64 / (1024.0 * 1024.0));

    let start = Instant::now();
    let store = SqliteStore::open(&path).await?;
    let open = start.elapsed();
    let start = Instant::now();
    let first = store
        .find_objects(
            PARTITION,
            &ObjectFilter {
                label: Some(label(0)),
                ..Default::default()
            },
        )
        .await?;
    let first_query = start.elapsed();
    if first.len() != 1 {
        return Err(format!("label {} found {} times", label(0), first.len()).into());
    }
    println!(
        "open (pool + migration check): {:.2} ms, first lookup after open: {:.3} ms",
        open.as_secs_f64() * 1000.0,
        first_query.as_secs_f64() * 1000.0
    );

    let mut times = Vec::with_capacity(LOOKUPS);
    for _ in 0..LOOKUPS {
        let i = rng.next() % n;
        let filter = ObjectFilter {
            label: Some(label(i)),
            ..Default::default()
        };
        let start = Instant::now();
        let found = store.find_objects(PARTITION, &filter).await?;
        times.push(start.elapsed());
        if found.len() != 1 || found[0].object_id != i as i64 + 1 {
            return Err(format!("label {} found {} rows", label(i), found.len()).into());
        }
    }
    times.sort();
    println!(
        "label lookup over {n} objects, {LOOKUPS} random lookups: p50 {:.1} us, p99 {:.1} us, max {:.1} us",
        percentile(&times, 0.50).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e6,
    );
    store.close().await;
    Ok(())
}
