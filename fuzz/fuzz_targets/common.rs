//! Helpers shared by both fuzz targets: small limits, and opening and streaming an archive.
//! `tests/fuzz_regressions.rs` compiles this file too, so the main test suite catches a
//! change of the reader's interface that would break the fuzz build.

use std::io::Write;

use tenant_operator::archive::{Archive, ArchiveError, Limits};

/// Returns limits small enough that one run stays fast and bounded in memory.
pub fn small_limits() -> Limits {
    Limits {
        max_archive_bytes: 1 << 20,
        max_total_uncompressed_bytes: 4 << 20,
        max_entry_bytes: 2 << 20,
        max_compression_ratio: 200,
        max_entries: 64,
        max_json_depth: 32,
        max_line_bytes: 64 << 10,
        max_access_numbers: 100_000,
    }
}

/// Writes `bytes` to a temporary file, opens it as an archive and, when it opens,
/// streams every object in batches of `batch_size`. Panics when a validated archive
/// fails to stream or streams another number of objects than validation counted.
pub fn open_and_stream(bytes: &[u8], batch_size: usize) {
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if file.write_all(bytes).and_then(|()| file.flush()).is_err() {
        return;
    }
    let Ok(archive) = Archive::open(file.path(), &small_limits()) else {
        return;
    };
    let mut streamed = 0_u64;
    let result = archive.for_each_object_batch(batch_size, |batch| -> Result<(), ArchiveError> {
        assert!(batch.len() <= batch_size, "batch larger than requested");
        streamed += batch.len() as u64;
        Ok(())
    });
    assert!(
        result.is_ok(),
        "a validated archive failed to stream: {result:?}"
    );
    assert_eq!(
        streamed, archive.summary.objects,
        "streaming gave another object count than validation"
    );
}
