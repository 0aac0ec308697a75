//! The fleet index parser, and the device's HTTP and DNS parsers: bytes
//! from a repository or the network never panic them, and a parsed index
//! prints as text that parses back to it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(index) = micros_update::fleet::Index::parse(text) {
            let body = index.body();
            assert_eq!(micros_update::fleet::Index::parse(&body), Ok(index));
        }
    }
    let _ = micros_update::fleet::Index::verify(data, &[[7; 32]]);
    let _ = micros_update::http::parse_head(data);
    let _ = micros_update::http::dns_answer(data, 0x1234);
});
