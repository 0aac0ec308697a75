//! The manifest parser: what parses prints back to the same text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(manifest) = micros_update::manifest::Manifest::parse(text) {
            assert_eq!(manifest.to_text(), text);
        }
    }
});
