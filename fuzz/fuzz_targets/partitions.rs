//! Stage 1's partition-table reader (finding the root by PARTUUID= on a
//! disk of unknown content): any bytes and sector size give a list, never a
//! panic, and only partition numbers a table can hold.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u16, &[u8])| {
    let (sector, bytes) = input;
    for (number, _) in micros_init::device::partition_uuids(bytes, usize::from(sector)) {
        assert!((1..=128).contains(&number));
    }
});
