//! Packages indexes, relation fields and version numbers from the network.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = micros_debian::index::parse_packages("fuzz", text);
        let _ = micros_debian::relation::parse(text);
        if let (Ok(a), Ok(b)) = (micros_debian::version::Version::parse(text), micros_debian::version::Version::parse("1.0-1")) {
            let _ = a.cmp(&b);
        }
    }
});
