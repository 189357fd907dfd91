//! ZIP structure checks, made from the central directory before anything is
//! decompressed, and the entry reader that counts, limits and hashes what it reads.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zip::{CompressionMethod, ZipArchive};

use super::{ArchiveError, InvalidArchive, Limits, Location};

/// Entries smaller than this are not held to the compression ratio limit, because a
/// small, repetitive file can legitimately compress far better than a large one. The
/// per-entry and total size limits still bound them.
pub const RATIO_CHECK_MIN_BYTES: u64 = 64 * 1024;

/// Maximum length of an entry name, in bytes; tenant archives use short names.
pub const MAX_ENTRY_NAME_BYTES: usize = 1024;

/// Signatures that start a ZIP file: local file header, empty archive, spanned archive.
const ZIP_SIGNATURES: [[u8; 4]; 3] = [*b"PK\x03\x04", *b"PK\x05\x06", *b"PK\x07\x08"];

/// The ZIP archive type every reader works on.
pub(crate) type Zip = ZipArchive<BufReader<File>>;

/// One checked entry of the central directory.
#[derive(Debug, Clone)]
pub(crate) struct EntryInfo {
    /// Entry name as stored.
    pub name: String,
    /// Index in the central directory.
    pub index: usize,
    /// Declared uncompressed size.
    pub size: u64,
}

/// The checked entries of an archive, by name.
#[derive(Debug, Default)]
pub(crate) struct Contents {
    /// Every file entry (directories left out), in central-directory order.
    pub entries: Vec<EntryInfo>,
    by_name: HashMap<String, usize>,
}

/// Reader of one entry that hashes what it reads and stops with an [`InvalidArchive`]
/// when the entry contains more bytes than its header declares or fails to decompress.
pub(crate) struct EntryReader<'a> {
    inner: zip::read::ZipFile<'a, BufReader<File>>,
    name: String,
    declared: u64,
    read: u64,
    hasher: Sha256,
    failure: Option<InvalidArchive>,
}

/// Size and SHA-256 of an entry that was read to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryDigest {
    /// Bytes read.
    pub size: u64,
    /// SHA-256, lower-case hex.
    pub sha256: String,
}

impl Contents {
    /// Returns the entry with exactly this name.
    pub fn get(&self, name: &str) -> Option<&EntryInfo> {
        self.by_name
            .get(name)
            .map(|position| &self.entries[*position])
    }

    /// Returns whether an entry with exactly this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }
}

impl<'a> EntryReader<'a> {
    /// Opens the entry for reading.
    pub fn open(zip: &'a mut Zip, entry: &EntryInfo) -> Result<Self, InvalidArchive> {
        let inner = zip.by_index(entry.index).map_err(|error| {
            invalid_file(
                &entry.name,
                format!("entry cannot be read: {error}; the archive is corrupted"),
            )
        })?;
        Ok(Self {
            inner,
            name: entry.name.clone(),
            declared: entry.size,
            read: 0,
            hasher: Sha256::new(),
            failure: None,
        })
    }

    /// Returns the entry name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Takes the problem that stopped reading, if there was one.
    pub fn take_failure(&mut self) -> Option<InvalidArchive> {
        self.failure.take()
    }

    /// Returns the problem behind `error`, an error of reading this entry: the problem
    /// that stopped reading, or else `error` itself.
    pub fn read_failure(&mut self, error: &io::Error) -> InvalidArchive {
        self.take_failure()
            .unwrap_or_else(|| invalid_file(&self.name, format!("entry cannot be read: {error}")))
    }

    /// Reads the rest of the entry, so its CRC is checked and its digest covers every
    /// byte, and returns the digest.
    pub fn finish(mut self) -> Result<EntryDigest, InvalidArchive> {
        let drained = io::copy(&mut self, &mut io::sink());
        if let Err(error) = drained {
            return Err(self.read_failure(&error));
        }
        Ok(EntryDigest {
            size: self.read,
            sha256: hex::encode(self.hasher.finalize_reset()),
        })
    }

    fn fail(&mut self, problem: String) -> io::Error {
        let error = io::Error::new(io::ErrorKind::InvalidData, problem.clone());
        self.failure = Some(invalid_file(&self.name, problem));
        error
    }
}

impl Read for EntryReader<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if let Some(failure) = &self.failure {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                failure.problem.clone(),
            ));
        }
        let count = match self.inner.read(buffer) {
            Ok(count) => count,
            Err(error) => {
                return Err(self.fail(format!(
                    "entry cannot be decompressed: {error}; the archive is corrupted"
                )));
            }
        };
        self.read += count as u64;
        if self.read > self.declared {
            return Err(self.fail(format!(
                "entry holds more than the {} bytes its ZIP header declares; the archive is corrupted or crafted",
                self.declared
            )));
        }
        self.hasher.update(&buffer[..count]);
        Ok(count)
    }
}

/// The open archive file, kept to hash it after its structure is checked.
#[derive(Debug)]
pub(crate) struct OpenedFile {
    file: File,
    path: PathBuf,
    size: u64,
}

impl OpenedFile {
    /// Returns the size of the file in bytes when it was opened.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Computes the size and SHA-256 of the whole file. Positioned reads leave the ZIP
    /// reader's file offset alone, and they read the file that was opened, so the
    /// digest describes the bytes that are read even when the path is replaced
    /// meanwhile.
    pub(crate) fn digest(&self) -> Result<EntryDigest, ArchiveError> {
        let mut hasher = Sha256::new();
        let mut buffer = vec![0_u8; 256 * 1024];
        let mut size = 0_u64;
        loop {
            let count = match self.file.read_at(&mut buffer, size) {
                Ok(0) => break,
                Ok(count) => count,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ArchiveError::Io {
                        path: self.path.clone(),
                        source,
                    });
                }
            };
            hasher.update(&buffer[..count]);
            size += count as u64;
        }
        Ok(EntryDigest {
            size,
            sha256: hex::encode(hasher.finalize()),
        })
    }
}

/// Opens the ZIP file at `path` and checks its structure against `limits`. The file is
/// not hashed here: [`OpenedFile::digest`] does that when the caller needs it.
pub(crate) fn open_zip(
    path: &Path,
    limits: &Limits,
) -> Result<(Zip, Contents, OpenedFile), ArchiveError> {
    let io_error = |source| ArchiveError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    let size = file.metadata().map_err(io_error)?.len();
    if size > limits.max_archive_bytes {
        return Err(invalid_archive(format!(
            "archive file is {size} bytes, more than the limit of {} bytes (--archive-max-bytes)",
            limits.max_archive_bytes
        ))
        .into());
    }

    let opened = OpenedFile {
        file: file.try_clone().map_err(io_error)?,
        path: path.to_owned(),
        size,
    };
    let mut reader = BufReader::new(file);
    let directory = read_directory_end(&mut reader, size);
    if let Some(directory) = &directory {
        if directory.entries > limits.max_entries {
            return Err(too_many_entries(directory.entries, limits).into());
        }
        // The ZIP library keeps one entry per name, so a repeated name must be found
        // in the raw central directory before it is indexed.
        if let Some((name, earlier)) = find_repeated_name(&mut reader, directory) {
            return Err(invalid_file(
                &name,
                format!(
                    "entry name appears twice (also as {:?}); names must be unique without regard to case",
                    crate::model::truncate_for_message(&earlier)
                ),
            )
            .into());
        }
    }
    let mut zip = ZipArchive::new(reader).map_err(|error| {
        invalid_archive(format!(
            "not a readable ZIP file: {error}; the central directory is missing, truncated or corrupted"
        ))
    })?;
    let contents = check_structure(&mut zip, limits)?;
    check_nested_archives(&mut zip, &contents)?;
    Ok((zip, contents, opened))
}

fn check_structure(zip: &mut Zip, limits: &Limits) -> Result<Contents, InvalidArchive> {
    let count = zip.len() as u64;
    if count > limits.max_entries {
        return Err(too_many_entries(count, limits));
    }

    let mut contents = Contents::default();
    let mut folded_names: HashMap<String, String> = HashMap::new();
    let mut total: u64 = 0;
    for index in 0..zip.len() {
        let entry = zip.by_index_raw(index).map_err(|error| {
            invalid_archive(format!(
                "central directory entry {index} cannot be read: {error}"
            ))
        })?;
        let name = std::str::from_utf8(entry.name_raw())
            .map_err(|_| {
                invalid_archive(format!(
                    "entry name {:?} is not valid UTF-8",
                    String::from_utf8_lossy(entry.name_raw())
                ))
            })?
            .to_owned();
        let is_dir = entry.is_dir();
        check_entry_name(&name, is_dir)?;

        let folded = name.to_lowercase();
        if let Some(other) = folded_names.insert(folded, name.clone()) {
            return Err(invalid_file(
                &name,
                format!(
                    "entry name appears twice (also as {:?}); names must be unique without regard to case",
                    crate::model::truncate_for_message(&other)
                ),
            ));
        }
        if entry.is_symlink() {
            return Err(invalid_file(
                &name,
                "entry is a symbolic link; archives must hold regular files only".to_owned(),
            ));
        }
        if entry.encrypted() {
            return Err(invalid_file(
                &name,
                "entry is encrypted; archives must not be encrypted".to_owned(),
            ));
        }
        let method = entry.compression();
        if method != CompressionMethod::Stored && method != CompressionMethod::Deflated {
            return Err(invalid_file(
                &name,
                format!(
                    "entry uses compression method {method}; only stored and deflate are allowed"
                ),
            ));
        }
        if is_nested_archive_name(&name) {
            return Err(invalid_file(
                &name,
                "entry is a nested archive; archives must not contain .zip or .jar files"
                    .to_owned(),
            ));
        }

        let size = entry.size();
        let compressed = entry.compressed_size();
        check_entry_size(&name, size, compressed, limits)?;
        total = total.saturating_add(size);
        if total > limits.max_total_uncompressed_bytes {
            return Err(invalid_archive(format!(
                "entries declare more than the limit of {} uncompressed bytes in total (--archive-max-uncompressed-bytes)",
                limits.max_total_uncompressed_bytes
            )));
        }

        if !is_dir {
            contents
                .by_name
                .insert(name.clone(), contents.entries.len());
            contents.entries.push(EntryInfo { name, index, size });
        }
    }
    Ok(contents)
}

fn too_many_entries(count: u64, limits: &Limits) -> InvalidArchive {
    invalid_archive(format!(
        "archive has {count} entries, more than the limit of {} (--archive-max-entries)",
        limits.max_entries
    ))
}

/// The end of central directory record: how many entries it declares and where the
/// central directory starts.
struct DirectoryEnd {
    entries: u64,
    offset: u64,
}

/// Reads the end of central directory record, so an archive of millions of tiny entries
/// is rejected before the ZIP library builds an index of them. Returns `None` when the
/// record is not found; the ZIP library then reports the archive as unreadable.
fn read_directory_end<R: Read + Seek>(reader: &mut R, size: u64) -> Option<DirectoryEnd> {
    // The record is 22 bytes plus a comment of at most 65535 bytes, at the very end.
    const RECORD: u64 = 22;
    let tail_len = size.min(RECORD + u64::from(u16::MAX));
    reader.seek(SeekFrom::Start(size - tail_len)).ok()?;
    let mut tail = vec![0_u8; usize::try_from(tail_len).ok()?];
    reader.read_exact(&mut tail).ok()?;
    let start = (0..tail.len().saturating_sub(RECORD as usize - 1))
        .rev()
        .find(|&at| tail[at..].starts_with(b"PK\x05\x06"))?;
    let count = u64::from(u16::from_le_bytes([tail[start + 10], tail[start + 11]]));
    let offset = u64::from(u32::from_le_bytes([
        tail[start + 16],
        tail[start + 17],
        tail[start + 18],
        tail[start + 19],
    ]));
    let classic = DirectoryEnd {
        entries: count,
        offset,
    };

    // A ZIP64 archive keeps the real count and offset in the ZIP64 record, which the
    // 20-byte locator just before the classic record points to.
    let Some(locator) = start.checked_sub(20) else {
        return Some(classic);
    };
    if !tail[locator..].starts_with(b"PK\x06\x07") {
        return Some(classic);
    }
    reader
        .seek(SeekFrom::Start(le_u64(&tail[locator + 8..locator + 16])))
        .ok()?;
    let mut record = [0_u8; 56];
    reader.read_exact(&mut record).ok()?;
    if !record.starts_with(b"PK\x06\x06") {
        return Some(classic);
    }
    Some(DirectoryEnd {
        entries: le_u64(&record[32..40]).max(count),
        offset: le_u64(&record[48..56]),
    })
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut array = [0_u8; 8];
    array.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(array)
}

/// Walks the raw central directory records and returns the first entry name that
/// repeats an earlier one without regard to case, with that earlier name. Returns `None`
/// when no name repeats or when the records cannot be walked.
// NOTE: data prepended to the archive shifts every offset. The walk then fails, so a
// repeated name in such an archive goes unnoticed.
fn find_repeated_name<R: Read + Seek>(
    reader: &mut R,
    directory: &DirectoryEnd,
) -> Option<(String, String)> {
    // A central directory file header is 46 bytes, then name, extra field and comment.
    const HEADER: usize = 46;
    reader.seek(SeekFrom::Start(directory.offset)).ok()?;
    let mut seen = HashMap::new();
    let mut header = [0_u8; HEADER];
    for _ in 0..directory.entries {
        reader.read_exact(&mut header).ok()?;
        if !header.starts_with(b"PK\x01\x02") {
            return None;
        }
        let name_len = u16::from_le_bytes([header[28], header[29]]);
        let extra_len = u16::from_le_bytes([header[30], header[31]]);
        let comment_len = u16::from_le_bytes([header[32], header[33]]);
        let mut name = vec![0_u8; usize::from(name_len)];
        reader.read_exact(&mut name).ok()?;
        reader
            .seek(SeekFrom::Current(
                i64::from(extra_len) + i64::from(comment_len),
            ))
            .ok()?;
        let name = String::from_utf8_lossy(&name).into_owned();
        if let Some(earlier) = seen.insert(name.to_lowercase(), name.clone()) {
            return Some((name, earlier));
        }
    }
    None
}

fn check_entry_size(
    name: &str,
    size: u64,
    compressed: u64,
    limits: &Limits,
) -> Result<(), InvalidArchive> {
    if size > limits.max_entry_bytes {
        return Err(invalid_file(
            name,
            format!(
                "entry declares {size} uncompressed bytes, more than the limit of {} (--archive-max-entry-bytes)",
                limits.max_entry_bytes
            ),
        ));
    }
    if size >= RATIO_CHECK_MIN_BYTES
        && size > compressed.saturating_mul(limits.max_compression_ratio)
    {
        return Err(invalid_file(
            name,
            format!(
                "entry compresses {compressed} bytes to {size}, a ratio above the limit of {} (--archive-max-compression-ratio); this looks like a zip bomb",
                limits.max_compression_ratio
            ),
        ));
    }
    Ok(())
}

/// Checks one entry name: relative, `/` separators, no `..` or empty segment, no
/// backslash, drive letter or control character. Directory entries may end in `/`.
pub(crate) fn check_entry_name(name: &str, is_dir: bool) -> Result<(), InvalidArchive> {
    let reject = |problem: &str| {
        Err(invalid_archive(format!(
            "entry name {:?} is invalid: {problem}",
            crate::model::truncate_for_message(name)
        )))
    };
    if name.is_empty() {
        return reject("it is empty");
    }
    if name.len() > MAX_ENTRY_NAME_BYTES {
        return reject(&format!(
            "it has {} bytes, more than the maximum of {MAX_ENTRY_NAME_BYTES}",
            name.len()
        ));
    }
    if let Some(bad) = name.chars().find(|c| c.is_control()) {
        return reject(&format!("it contains the control character {bad:?}"));
    }
    if name.contains('\\') {
        return reject("it contains a backslash; use '/' as the separator");
    }
    if name.starts_with('/') {
        return reject("it starts with '/'; names must be relative");
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return reject("it starts with a drive letter; names must be relative");
    }
    let path = if is_dir {
        name.strip_suffix('/').unwrap_or(name)
    } else {
        name
    };
    for segment in path.split('/') {
        if segment.is_empty() {
            return reject("it has an empty segment ('//' or a trailing '/')");
        }
        if segment == ".." {
            return reject("it has a '..' segment; names must stay inside the archive");
        }
    }
    Ok(())
}

fn is_nested_archive_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".zip") || lower.ends_with(".jar")
}

/// Rejects entries whose content starts with a ZIP signature, whatever their name.
fn check_nested_archives(zip: &mut Zip, contents: &Contents) -> Result<(), InvalidArchive> {
    for entry in &contents.entries {
        let mut reader = EntryReader::open(zip, entry)?;
        let mut head = [0_u8; 4];
        let mut filled = 0;
        while filled < head.len() {
            match reader.read(&mut head[filled..]) {
                Ok(0) => break,
                Ok(count) => filled += count,
                Err(error) => {
                    return Err(reader.take_failure().unwrap_or_else(|| {
                        invalid_file(&entry.name, format!("entry cannot be read: {error}"))
                    }));
                }
            }
        }
        if filled == head.len() && ZIP_SIGNATURES.contains(&head) {
            return Err(invalid_file(
                &entry.name,
                "entry content is a ZIP archive; nested archives are not allowed".to_owned(),
            ));
        }
    }
    Ok(())
}

/// Builds a problem located at the archive as a whole.
pub(crate) fn invalid_archive(problem: String) -> InvalidArchive {
    InvalidArchive {
        location: Location::Archive,
        problem,
    }
}

/// Builds a problem located at one entry.
pub(crate) fn invalid_file(name: &str, problem: String) -> InvalidArchive {
    InvalidArchive {
        location: Location::File(name.to_owned()),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_follow_the_rules() {
        for good in ["tenant.json", "objects/user.jsonl", "a/b/c.txt"] {
            assert!(check_entry_name(good, false).is_ok(), "{good:?} rejected");
        }
        assert!(check_entry_name("objects/", true).is_ok());
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a\\b",
            "C:/x",
            "a//b",
            "a/",
            "a\u{1}b",
            &"a".repeat(MAX_ENTRY_NAME_BYTES + 1),
        ] {
            assert!(check_entry_name(bad, false).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn nested_archive_names_are_detected() {
        assert!(is_nested_archive_name("x/inner.ZIP"));
        assert!(is_nested_archive_name("lib.jar"));
        assert!(!is_nested_archive_name("zip.json"));
    }
}
