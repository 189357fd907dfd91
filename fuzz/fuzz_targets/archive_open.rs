//! Fuzzes the archive reader with whole files: the input is written to a temporary
//! file, opened with small limits and, when it opens, every object is streamed.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::open_and_stream(data, 7);
});
