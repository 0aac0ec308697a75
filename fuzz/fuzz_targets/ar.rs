//! The ar reader: members always lie inside the input.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(members) = micros_debian::ar::members_of(data) {
        for member in members {
            assert!(member.offset + member.size <= data.len() as u64);
        }
    }
});
