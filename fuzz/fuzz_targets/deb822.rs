//! deb822 paragraphs and the Release parser built on them must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(paragraphs) = micros_debian::deb822::parse(text) {
            for paragraph in &paragraphs {
                let _ = paragraph.get("Package");
            }
        }
        let _ = micros_debian::release::Release::parse(text);
        let _ = micros_debian::sources::parse_deb822_sources(text);
        let _ = micros_debian::sources::parse_one_line_sources(text);
    }
});
