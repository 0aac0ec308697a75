//! The QEMU test harness itself: which boots it runs again. Only a kernel
//! crash before MicrOS's code runs is the emulator's; anything after, PID 1
//! dying above all, fails the test on its first boot.
mod support;
use std::time::Duration;

use support::{boot, boot_ledger, build, emulator_fault, project, BOOTS};

const BEFORE_INIT: &str = "[    0.9] Freeing unused kernel image\n";

#[test]
fn only_a_kernel_crash_before_init_is_the_emulators() {
    let double_fault = format!("{BEFORE_INIT}[    1.2] Oops: double fault: 0000 [#1] PREEMPT SMP NOPTI\n[    1.2] RIP: 0010:__kmalloc+0x1c/0x2a0\n[    1.3] Kernel panic - not syncing: Fatal exception\n");
    assert!(emulator_fault(&double_fault));
    let initcall =
        format!("{BEFORE_INIT}[    1.5] Oops: 0000 [#1] SMP\n[    1.5] RIP: do_sync_core\n");
    assert!(emulator_fault(&initcall));

    let clean = format!("{BEFORE_INIT}[    2.2] Run /init as init process\nmicros-init: ...\n- runit: enter stage: /etc/runit/2\n");
    assert!(!emulator_fault(&clean));
    let after_init = format!("{clean}[    5.0] Oops: double fault: 0000 [#1]\n[    5.0] Kernel panic - not syncing: Fatal exception\n");
    assert!(
        !emulator_fault(&after_init),
        "MicrOS was running: its failure"
    );
    let init_died = format!("{BEFORE_INIT}[    2.2] Run /init as init process\n[    2.4] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\n");
    assert!(!emulator_fault(&init_died));
    let hang = format!("{clean}(nothing more)\n");
    assert!(!emulator_fault(&hang));
    assert_eq!(BOOTS, 2, "one boot again at most");
}

/// A test may have one boot run again for the emulator, not two: the
/// second fails the test, whichever boot it was.
#[test]
fn a_second_emulator_crash_in_one_test_fails_it() {
    let test = "harness::a_test_whose_guests_keep_crashing";
    assert_eq!(support::count_retry(test), Ok(1));
    let second = support::count_retry(test).unwrap_err();
    assert!(
        second.contains("would have brought a guest down 2 times"),
        "{second}"
    );
    assert_eq!(
        support::count_retry("harness::another_test"),
        Ok(1),
        "counted per test"
    );
}

/// A system whose PID 1 exits: the kernel panics with "Attempted to kill
/// init", and the harness boots it once, not again.
#[test]
fn needs_network_and_qemu_an_init_that_dies_is_not_booted_again() {
    let dir = project(
        r#"  { networking.hostName = "dies", boot.kernelParams = ["micros.init=/usr/bin/true"] },"#,
    );
    build(dir.path(), "result");
    let mine = |ledger: &str| {
        let me = std::env::args().next().unwrap_or_default();
        ledger
            .lines()
            .filter(|l| l.starts_with("boot ") && l.ends_with(&me))
            .count()
    };
    let before = mine(&std::fs::read_to_string(boot_ledger()).unwrap_or_default());
    let result = boot(dir.path(), &[], "never printed", Duration::from_secs(120));
    let after = mine(&std::fs::read_to_string(boot_ledger()).unwrap_or_default());
    assert!(
        result.console.contains("Attempted to kill init"),
        "{}",
        support::shown(&result.console)
    );
    assert_eq!(after - before, 1, "booted once, not again");
}
