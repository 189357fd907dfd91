//! Memory of the reader and generator on a tenant of a million objects.
//!
//! Ignored by default because it writes and reads about 50 MB per format and takes
//! minutes with a debug build. Run it alone, so no other test adds to the process's
//! peak memory: `cargo test --test archive_large -- --ignored`.

use std::time::Instant;

use tenant_operator::archive::{Archive, ArchiveError, Limits};
use tenant_operator::generator::{self, GenerateOptions};

/// Returns the peak resident memory of this process, in KiB, from /proc (Linux only).
fn peak_resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

#[test]
#[ignore = "writes and reads 100 MB; run alone with --ignored"]
fn million_objects_stay_in_flat_memory() {
    let dir = tempfile::tempdir().expect("temporary folder");
    for format in [3, 2] {
        let options = GenerateOptions {
            seed: 11,
            objects: 1_000_000,
            ranges: 20_000,
            numbers: 500_000,
            format,
            tenant_url: "large.cc.example.com".to_owned(),
            tenant_name: "Large Tenant".to_owned(),
            number_start: "14155550000".to_owned(),
        };
        let path = dir.path().join(format!("large-v{format}.zip"));
        let started = Instant::now();
        generator::generate_file(&options, &path).expect("generate archive");
        let generated = started.elapsed();

        let archive = Archive::open(&path, &Limits::default()).expect("open archive");
        assert_eq!(archive.summary.objects, 1_000_000);
        assert_eq!(archive.summary.numbers, 500_000);
        let mut streamed = 0_u64;
        archive
            .for_each_object_batch(1000, |batch| -> Result<(), ArchiveError> {
                streamed += batch.len() as u64;
                Ok(())
            })
            .expect("stream objects");
        assert_eq!(streamed, 1_000_000);

        let peak = peak_resident_kib();
        eprintln!(
            "format {format}: generated in {generated:?}, read twice in {:?}, peak {peak} KiB",
            started.elapsed() - generated
        );
        // Holding the objects would take several hundred MB, so 100 MB leaves room for
        // the ranges, buffers and allocator without letting a leak through.
        assert!(peak < 100 * 1024, "peak resident memory {peak} KiB");
    }
}
