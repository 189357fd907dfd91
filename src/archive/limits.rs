//! Resource limits that keep a hostile archive from exhausting memory or disk.

/// Resource limits applied while reading an archive. Every front end takes them from the
/// command line or the environment; the defaults fit a tenant of a million objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size of the archive file itself, in bytes.
    pub max_archive_bytes: u64,
    /// Maximum sum of the uncompressed sizes of all entries, in bytes.
    pub max_total_uncompressed_bytes: u64,
    /// Maximum uncompressed size of one entry, in bytes.
    pub max_entry_bytes: u64,
    /// Maximum ratio of uncompressed to compressed size of one entry.
    pub max_compression_ratio: u64,
    /// Maximum number of entries in the archive.
    pub max_entries: u64,
    /// Maximum nesting depth of arrays and objects in a JSON document.
    pub max_json_depth: u32,
    /// Maximum size of one object, in bytes: one line of a line-based file, or one
    /// element of the `objects` array of format 2.
    pub max_line_bytes: u64,
    /// Maximum number of access numbers over all ranges of one archive. Every number
    /// becomes a database row, so one valid-looking range of 15-digit numbers could
    /// otherwise make an import write for days and fill the disk.
    pub max_access_numbers: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_archive_bytes: 1 << 30,
            max_total_uncompressed_bytes: 4 << 30,
            max_entry_bytes: 2 << 30,
            max_compression_ratio: 200,
            max_entries: 10_000,
            max_json_depth: 64,
            max_line_bytes: 1 << 20,
            max_access_numbers: 10_000_000,
        }
    }
}
