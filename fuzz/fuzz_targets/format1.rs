//! Fuzzes the format-1 parsers (export.properties and the two CSV files). The input
//! contains the three files separated by a line `%%`. They are packed into a stored
//! ZIP, so the reader sees a well-formed archive and the fuzzer spends its time in the
//! properties and CSV parsers rather than in the ZIP structure.

#![no_main]

mod common;

use std::io::{Cursor, Write};

use libfuzzer_sys::fuzz_target;
use zip::write::SimpleFileOptions;

/// The line that separates the three files in a fuzz input.
const SEPARATOR: &[u8] = b"\n%%\n";

/// Splits the input into export.properties, access_numbers.csv and objects.csv.
fn split(data: &[u8]) -> [&[u8]; 3] {
    let mut parts = [&data[..0]; 3];
    let mut rest = data;
    for part in parts.iter_mut().take(2) {
        match rest
            .windows(SEPARATOR.len())
            .position(|window| window == SEPARATOR)
        {
            Some(at) => {
                *part = &rest[..at];
                rest = &rest[at + SEPARATOR.len()..];
            }
            None => {
                *part = rest;
                rest = &rest[..0];
            }
        }
    }
    parts[2] = rest;
    parts
}

/// Packs the three files into a ZIP with stored entries.
fn zip_of(parts: [&[u8]; 3]) -> Option<Vec<u8>> {
    let names = ["export.properties", "access_numbers.csv", "objects.csv"];
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, part) in names.iter().zip(parts) {
        writer.start_file(*name, options).ok()?;
        writer.write_all(part).ok()?;
    }
    writer.finish().ok().map(Cursor::into_inner)
}

fuzz_target!(|data: &[u8]| {
    if let Some(bytes) = zip_of(split(data)) {
        common::open_and_stream(&bytes, 5);
    }
});
