//! micros_debian::tmpfiles::parse reads a package's file as hostile text: any
//! bytes give a result, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = micros_debian::tmpfiles::parse(text);
});
