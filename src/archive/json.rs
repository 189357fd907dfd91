//! Bounded readers for JSON and line-based text: a nesting-depth scanner that fails
//! early without recursing, a line reader with a length limit, and the mapping of
//! parser errors to locations.

use std::cell::Cell;
use std::io::{self, BufRead, Read};

use serde::de::{DeserializeOwned, DeserializeSeed};

use super::entry::EntryReader;
use super::text::{self, TextEncoding};
use super::{InvalidArchive, Location};

/// Tracks the nesting depth of JSON text byte by byte, skipping brackets in strings.
#[derive(Debug, Default, Clone)]
pub(crate) struct DepthScanner {
    depth: u32,
    in_string: bool,
    escaped: bool,
    line: u64,
}

/// Passes bytes through a [`DepthScanner`] and stops once the nesting is too deep.
pub(crate) struct DepthLimitedReader<R> {
    inner: R,
    scanner: DepthScanner,
    max_depth: u32,
    exceeded_at_line: Option<u64>,
}

/// A byte limit for one part of a streamed document, such as one element of an array.
/// The parser reads through a buffer of 8 KiB, so the limit applies to within 8 KiB.
#[derive(Debug, Default)]
pub(crate) struct ByteBudget {
    consumed: Cell<u64>,
    end: Cell<Option<u64>>,
    exceeded: Cell<bool>,
}

/// Passes bytes through and fails once a [`ByteBudget`] in force is used up.
struct BudgetReader<'b, R> {
    inner: R,
    budget: &'b ByteBudget,
}

/// Reads lines of at most `max_bytes` bytes, without the line terminator.
pub(crate) struct LineReader<R> {
    inner: R,
    max_bytes: u64,
    line: u64,
    buffer: Vec<u8>,
}

/// Error of [`LineReader::next_line`].
#[derive(Debug)]
pub(crate) enum LineError {
    /// The line is longer than the limit.
    TooLong,
    /// The underlying reader failed.
    Io(io::Error),
}

impl DepthScanner {
    /// Scans `bytes`, returning the line (from 1) where the depth first exceeds `max`.
    pub fn scan(&mut self, bytes: &[u8], max: u32) -> Result<(), u64> {
        for &byte in bytes {
            if byte == b'\n' {
                self.line += 1;
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if byte == b'\\' {
                    self.escaped = true;
                } else if byte == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match byte {
                b'"' => self.in_string = true,
                b'[' | b'{' => {
                    self.depth += 1;
                    if self.depth > max {
                        return Err(self.line + 1);
                    }
                }
                b']' | b'}' => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
        }
        Ok(())
    }
}

impl<R: Read> DepthLimitedReader<R> {
    /// Wraps `inner`, allowing at most `max_depth` nested arrays and objects.
    pub fn new(inner: R, max_depth: u32) -> Self {
        Self {
            inner,
            scanner: DepthScanner::default(),
            max_depth,
            exceeded_at_line: None,
        }
    }
}

impl<R: Read> Read for DepthLimitedReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.exceeded_at_line.is_some() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "too deep"));
        }
        let count = self.inner.read(buffer)?;
        if let Err(line) = self.scanner.scan(&buffer[..count], self.max_depth) {
            self.exceeded_at_line = Some(line);
            return Err(io::Error::new(io::ErrorKind::InvalidData, "too deep"));
        }
        Ok(count)
    }
}

impl ByteBudget {
    /// Allows `max_bytes` more bytes from here until [`ByteBudget::stop`].
    pub fn start(&self, max_bytes: u64) {
        self.end
            .set(Some(self.consumed.get().saturating_add(max_bytes)));
    }

    /// Lifts the limit.
    pub fn stop(&self) {
        self.end.set(None);
    }

    /// Returns whether reading stopped because the limit was used up.
    pub fn exceeded(&self) -> bool {
        self.exceeded.get()
    }
}

impl<R: Read> Read for BudgetReader<'_, R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let count = self.inner.read(buffer)?;
        let consumed = self.budget.consumed.get() + count as u64;
        self.budget.consumed.set(consumed);
        if self.budget.end.get().is_some_and(|end| consumed > end) {
            self.budget.exceeded.set(true);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "part of the document is larger than its limit",
            ));
        }
        Ok(count)
    }
}

impl<R: BufRead> LineReader<R> {
    /// Wraps `inner`, which starts after any byte-order mark.
    pub fn new(inner: R, max_bytes: u64) -> Self {
        Self {
            inner,
            max_bytes,
            line: 0,
            buffer: Vec::new(),
        }
    }

    /// Returns the next line and its number, or `None` at the end.
    pub fn next_line(&mut self) -> Result<Option<(u64, &[u8])>, LineError> {
        self.buffer.clear();
        let mut seen_any = false;
        loop {
            let available = self.inner.fill_buf().map_err(LineError::Io)?;
            if available.is_empty() {
                break;
            }
            seen_any = true;
            let (take, done) = match available.iter().position(|byte| *byte == b'\n') {
                Some(position) => (position + 1, true),
                None => (available.len(), false),
            };
            let content = if done { take - 1 } else { take };
            if (self.buffer.len() + content) as u64 > self.max_bytes {
                self.line += 1;
                return Err(LineError::TooLong);
            }
            self.buffer.extend_from_slice(&available[..content]);
            self.inner.consume(take);
            if done {
                break;
            }
        }
        if !seen_any {
            return Ok(None);
        }
        self.line += 1;
        if self.buffer.last() == Some(&b'\r') {
            self.buffer.pop();
        }
        Ok(Some((self.line, &self.buffer)))
    }

    /// Returns the number of the line read last.
    pub fn line(&self) -> u64 {
        self.line
    }
}

/// Reads a whole JSON document from an entry through the depth limit.
pub(crate) fn read_document<T: DeserializeOwned>(
    entry: &mut EntryReader<'_>,
    max_depth: u32,
) -> Result<T, InvalidArchive> {
    read_document_with(
        entry,
        max_depth,
        &ByteBudget::default(),
        std::marker::PhantomData::<T>,
    )
}

/// Reads a whole JSON document from an entry through the depth limit and `budget`,
/// with a seed that can stream parts of it. The seed starts and stops the budget; the
/// caller reports a budget that was used up.
pub(crate) fn read_document_with<'de, S: DeserializeSeed<'de>>(
    entry: &mut EntryReader<'_>,
    max_depth: u32,
    budget: &ByteBudget,
    seed: S,
) -> Result<S::Value, InvalidArchive> {
    let name = entry.name().to_owned();
    let text = text::open_text(entry, TextEncoding::Utf8)?;
    let mut limited = DepthLimitedReader::new(text, max_depth);
    let result = {
        let budgeted = BudgetReader {
            inner: &mut limited,
            budget,
        };
        let mut deserializer = serde_json::Deserializer::from_reader(io::BufReader::new(budgeted));
        seed.deserialize(&mut deserializer)
            .and_then(|value| deserializer.end().map(|()| value))
    };
    let exceeded = limited.exceeded_at_line;
    result.map_err(|error| {
        if let Some(line) = exceeded {
            return too_deep(&name, line, max_depth);
        }
        if let Some(failure) = entry.take_failure() {
            return failure;
        }
        json_error(&name, None, &error)
    })
}

/// Parses one line of a JSON Lines file, after checking its depth.
pub(crate) fn parse_line<T: DeserializeOwned>(
    file: &str,
    line: u64,
    bytes: &[u8],
    max_depth: u32,
) -> Result<T, InvalidArchive> {
    let text = std::str::from_utf8(bytes).map_err(|error| InvalidArchive {
        location: Location::Line {
            file: file.to_owned(),
            line,
        },
        problem: format!(
            "line is not valid UTF-8 (at byte {} of the line); text must be UTF-8",
            error.valid_up_to() + 1
        ),
    })?;
    if DepthScanner::default().scan(bytes, max_depth).is_err() {
        return Err(too_deep(file, line, max_depth));
    }
    serde_json::from_str(text).map_err(|error| json_error(file, Some(line), &error))
}

/// Checks the depth of a JSON value held in a text field, then parses it.
pub(crate) fn parse_field_json<T: DeserializeOwned>(
    text: &str,
    max_depth: u32,
) -> Result<T, String> {
    if DepthScanner::default()
        .scan(text.as_bytes(), max_depth)
        .is_err()
    {
        return Err(format!(
            "JSON nesting is deeper than the limit of {max_depth} levels (--archive-max-json-depth)"
        ));
    }
    serde_json::from_str(text).map_err(|error| format!("invalid JSON: {}", describe(&error)))
}

/// Builds the problem of a document nested deeper than the limit.
pub(crate) fn too_deep(file: &str, line: u64, max_depth: u32) -> InvalidArchive {
    InvalidArchive {
        location: Location::Line {
            file: file.to_owned(),
            line,
        },
        problem: format!(
            "JSON nesting is deeper than the limit of {max_depth} levels (--archive-max-json-depth)"
        ),
    }
}

/// Maps a parser error to a location: the line within a JSON Lines file, or the line
/// that the parser reports within a document.
fn json_error(file: &str, line: Option<u64>, error: &serde_json::Error) -> InvalidArchive {
    let line = line.unwrap_or(error.line() as u64);
    let location = if line == 0 {
        Location::File(file.to_owned())
    } else {
        Location::Line {
            file: file.to_owned(),
            line,
        }
    };
    InvalidArchive {
        location,
        problem: format!("invalid JSON: {}", describe(error)),
    }
}

/// Returns the parser's message with the column, without its own line number. The
/// message is cut short, because serde quotes whole values in type errors.
fn describe(error: &serde_json::Error) -> String {
    const KEEP: usize = 200;
    let text = error.to_string();
    let message = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(message, _)| message);
    // serde_json reports invalid UTF-8 inside a string with this wording.
    if message == "invalid unicode code point" {
        return format!(
            "a string is not valid UTF-8 (column {}); text must be UTF-8",
            error.column()
        );
    }
    let message = match message.char_indices().nth(KEEP) {
        Some((end, _)) => format!("{}...", &message[..end]),
        None => message.to_owned(),
    };
    if error.column() > 0 {
        format!("{message} (column {})", error.column())
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_scanner_ignores_brackets_in_strings() {
        let mut scanner = DepthScanner::default();
        assert!(scanner.scan(br#"{"a": "[[[[\"{{{{"}"#, 1).is_ok());
    }

    #[test]
    fn depth_scanner_reports_line_of_excess() {
        let mut scanner = DepthScanner::default();
        assert_eq!(scanner.scan(b"[\n[\n[", 2), Err(3));
    }

    #[test]
    fn line_reader_limits_and_strips() {
        let text = b"one\r\n\ntwo\nthree-long";
        let mut reader = LineReader::new(&text[..], 8);
        assert_eq!(
            reader
                .next_line()
                .ok()
                .flatten()
                .map(|(n, l)| (n, l.to_vec())),
            Some((1, b"one".to_vec()))
        );
        assert_eq!(
            reader
                .next_line()
                .ok()
                .flatten()
                .map(|(n, l)| (n, l.to_vec())),
            Some((2, Vec::new()))
        );
        assert_eq!(
            reader
                .next_line()
                .ok()
                .flatten()
                .map(|(n, l)| (n, l.to_vec())),
            Some((3, b"two".to_vec()))
        );
        assert!(matches!(reader.next_line(), Err(LineError::TooLong)));
        assert_eq!(reader.line(), 4);
    }

    #[test]
    fn describe_shortens_quoted_values() {
        let long = format!("\"{}\"", "x".repeat(100_000));
        let error = serde_json::from_str::<Vec<u8>>(&long).err();
        let text = error.map(|error| describe(&error)).unwrap_or_default();
        assert!(text.len() < 300, "{} bytes", text.len());
        assert!(text.starts_with("invalid type: string"), "{text}");
    }

    #[test]
    fn describe_names_invalid_utf8() {
        let error = serde_json::from_slice::<serde_json::Value>(b"{\"a\": \"A\xFFe\"}").err();
        let text = error.map(|error| describe(&error)).unwrap_or_default();
        assert!(text.contains("not valid UTF-8"), "{text}");
    }

    #[test]
    fn budget_stops_a_large_part() {
        let budget = ByteBudget::default();
        let text = [b'x'; 100];
        let mut reader = BudgetReader {
            inner: &text[..],
            budget: &budget,
        };
        budget.start(10);
        let mut buffer = [0_u8; 64];
        assert!(reader.read(&mut buffer).is_err());
        assert!(budget.exceeded());
    }

    #[test]
    fn describe_drops_parser_line() {
        let error = serde_json::from_str::<serde_json::Value>("{\n,").err();
        let text = error.map(|error| describe(&error)).unwrap_or_default();
        assert!(text.contains("column"), "{text}");
        assert!(!text.contains("at line"), "{text}");
    }
}
