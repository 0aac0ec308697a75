//! The device's check of an update bundle: whatever arrives, in whatever
//! pieces, it refuses or hands on blocks in order, never panics, and never
//! accepts an unsigned bundle (the only trusted key here signs nothing).
#![no_main]
use libfuzzer_sys::fuzz_target;
use micros_update::bundle::{Expectations, Verifier};

fuzz_target!(|data: &[u8]| {
    let (split, bytes) = match data.split_first() {
        Some((split, rest)) => (*split as usize + 1, rest),
        None => return,
    };
    let mut verifier = Verifier::new(Expectations {
        trusted_keys: vec![[0x42; 32]],
        platform: "aarch64-linux".into(),
        board: "qemu-virt".into(),
        installed: None,
        allow_downgrade: false,
    });
    for piece in bytes.chunks(split) {
        match verifier.feed(piece) {
            Ok(blocks) => assert!(blocks.is_empty(), "no block without a trusted signature"),
            Err(_) => return,
        }
    }
    assert!(verifier.finish().is_err());
});
