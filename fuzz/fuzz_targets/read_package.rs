//! Arbitrary bytes into the package reader and verifier, and into the
//! FlowSpec parser: they must return errors, never panic, hang or allocate
//! without bound.
//!
//! `hack/fuzz.sh [MINUTES]` runs it on the stable toolchain, with the
//! chart's memory limit as libFuzzer's RSS limit (seeds: fuzz/seeds).
#![no_main]

use std::io::Cursor;

use ferry_package::{Limits, PackageReader, flowspec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_package_bytes: 8 << 20,
        max_entries: 10_000,
        max_ratio: 100,
        max_uncompressed_bytes: 64 << 20,
        ..Limits::default()
    };
    if let Ok(reader) = PackageReader::open(Cursor::new(data), &limits) {
        // A package that passes must be internally consistent.
        let summary = reader.summary();
        assert_eq!(summary.total_objects as usize, reader.objects().len());
    }
    if let Ok(doc) = flowspec::parse_document("fuzz.yaml", data) {
        let _ = flowspec::extract_objects(&doc);
    }
    if let Ok(doc) = flowspec::parse_document("fuzz.json", data) {
        let _ = flowspec::extract_objects(&doc);
    }
});
