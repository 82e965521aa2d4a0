//! Damaged packages give errors, never panics: every truncation point and a
//! deterministic spread of byte flips of a real package (the cheap, always-on
//! cousin of the fuzz target in fuzz/).

use std::io::Cursor;

use ferry_package::fixtures::FixtureSpec;
use ferry_package::{Limits, PackageReader};

#[test]
fn truncations_and_byte_flips_never_panic() {
    let good = FixtureSpec::new()
        .tasks(4)
        .tables(1)
        .quality_rules(1)
        .service_apis(1)
        .file_resources(1)
        .functions(1)
        .to_bytes();
    assert!(PackageReader::open(Cursor::new(good.clone()), &Limits::default()).is_ok());
    for len in (0..good.len()).step_by(7) {
        assert!(
            PackageReader::open(Cursor::new(good[..len].to_vec()), &Limits::default()).is_err()
        );
    }
    let mut refused = 0;
    for (i, pos) in (0..good.len()).step_by(3).enumerate() {
        let mut bad = good.clone();
        bad[pos] ^= 1 << (i % 8);
        if PackageReader::open(Cursor::new(bad), &Limits::default()).is_err() {
            refused += 1;
        }
    }
    // Most flips land in compressed data, digests or headers and are caught.
    assert!(refused > good.len() / 3 / 2, "{refused}");
}
