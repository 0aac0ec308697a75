//! The tar reader: file data always lies inside the input.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = micros_debian::tar::entries_of(data) {
        for entry in entries {
            assert!(entry.offset + entry.size <= data.len() as u64);
        }
    }
});
