//! Power cuts under QEMU, checked write by write: a disk attached through
//! QEMU's `blklogwrites` driver logs every write a boot makes (U-Boot's
//! included); the log is replayed onto a copy of the disk as that boot
//! found it, and after every write, as a power cut could leave the disk,
//! the slot chooser's decision (`micros_update::state::choose`, which a
//! unit test holds the boot script to) must name a slot holding a whole
//! system, byte for byte one of the builds, and so must the good slot it
//! falls back to. Used by the power-cut tests of the `virt` disk and of the
//! Raspberry Pi card.
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use micros_update::slot::{Header, HEADER_SIZE};
use micros_update::state::{choose, BootState, Slot, SECTOR};

use super::{run, shown, Vm};

/// The parts of one version's slot, as built.
pub struct Build {
    pub kernel: Vec<u8>,
    pub initrd: Vec<u8>,
    pub root: Vec<u8>,
    /// The device trees (a Pi's), by name, from the build's bundle.
    pub trees: BTreeMap<String, Vec<u8>>,
}

impl Build {
    pub fn read(dir: &Path) -> Build {
        let kernel = if dir.join("kernel.gz").exists() {
            "kernel.gz"
        } else {
            "kernel"
        };
        let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
        // The bundle's last part, when its manifest names trees.
        let bundle = read("update.bundle");
        let (manifest, _) = super::device::bundle_manifest(&bundle);
        let sizes = manifest.trees.iter().map(|t| t.size);
        let (offsets, part) = micros_update::manifest::fdt_offsets(sizes);
        let fdt = &bundle[bundle.len() - part as usize..];
        let trees = manifest
            .trees
            .iter()
            .zip(offsets)
            .map(|(tree, at)| {
                let at = at as usize;
                (tree.name.clone(), fdt[at..at + tree.size as usize].to_vec())
            })
            .collect();
        Build {
            kernel: read(kernel),
            initrd: read("initrd"),
            root: read("root.squashfs"),
            trees,
        }
    }
}

/// Where the disk's partitions are, in bytes, from its GPT.
struct Partitions {
    state: usize,
    a: Range<usize>,
    b: Range<usize>,
}

impl Partitions {
    fn read(disk: &[u8]) -> Partitions {
        assert_eq!(&disk[512..520], b"EFI PART", "a GPT disk");
        let u64_at = |at: usize| u64::from_le_bytes(disk[at..at + 8].try_into().unwrap()) as usize;
        let entries = u64_at(512 + 72) * 512;
        let size = u32::from_le_bytes(disk[512 + 84..512 + 88].try_into().unwrap()) as usize;
        let range = |index: usize| {
            let entry = entries + index * size;
            u64_at(entry + 32) * 512..(u64_at(entry + 40) + 1) * 512
        };
        Partitions {
            state: range(1).start,
            a: range(2),
            b: range(3),
        }
    }

    fn slot(&self, slot: Slot) -> &Range<usize> {
        match slot {
            Slot::A => &self.a,
            Slot::B => &self.b,
        }
    }
}

/// The version a slot holds whole, or why it does not.
fn whole(
    disk: &[u8],
    range: &Range<usize>,
    builds: &BTreeMap<String, Build>,
) -> Result<String, String> {
    let bytes = &disk[range.clone()];
    let header =
        Header::parse(&bytes[bytes.len() - HEADER_SIZE as usize..]).map_err(|e| e.to_string())?;
    let version = header.version.to_string();
    let build = builds
        .get(&version)
        .ok_or_else(|| format!("its header names version {version}, which was never built"))?;
    let part = |at: u64, expected: &[u8]| {
        bytes.get(at as usize..at as usize + expected.len()) == Some(expected)
    };
    if !part(0, &build.root) {
        return Err(format!("its root is not version {version}'s"));
    }
    if header.kernel_size != (build.kernel.len() as u64).div_ceil(512) * 512
        || !part(header.kernel, &build.kernel)
    {
        return Err(format!("its kernel is not version {version}'s"));
    }
    if header.initrd_size != build.initrd.len() as u64 || !part(header.initrd, &build.initrd) {
        return Err(format!("its initrd is not version {version}'s"));
    }
    let names: Vec<&String> = header.trees.iter().map(|(name, _)| name).collect();
    if !names.iter().copied().eq(build.trees.keys())
        || !header
            .trees
            .iter()
            .all(|(name, at)| part(*at, &build.trees[name]))
    {
        return Err(format!("its device trees are not version {version}'s"));
    }
    Ok(version)
}

/// What replaying one boot's writes found.
#[derive(Default)]
pub struct Replayed {
    pub writes: usize,
    pub flushes: usize,
    /// How many prefixes chose each (slot, version), and how many chose a
    /// slot on trial.
    pub chosen: BTreeMap<String, usize>,
}

/// Replays the `blklogwrites` log (dm-log-writes' format: a superblock,
/// then per entry a sector of sector, count, flags, then the data) onto
/// `base`, checking the chooser's decision after every write.
pub fn replay(base: &Path, log: &Path, builds: &BTreeMap<String, Build>, replayed: &mut Replayed) {
    const FLUSH: u64 = 1;
    const DISCARD: u64 = 4;
    const MARK: u64 = 8;
    let mut disk = std::fs::read(base).unwrap();
    let partitions = Partitions::read(&disk);
    let log = std::fs::read(log).unwrap();
    let field = |at: usize| u64::from_le_bytes(log[at..at + 8].try_into().unwrap());
    assert_eq!(field(0), 0x006a_7366_7773_6872, "a write log");
    let sector_size = u32::from_le_bytes(log[24..28].try_into().unwrap()) as usize;
    assert_eq!(sector_size, SECTOR);
    let entries = field(16) as usize;
    // Verdicts per slot, dropped when a write touches the slot.
    let mut verdicts: [Option<Result<String, String>>; 2] = [None, None];
    let mut at = sector_size;
    for index in 0..entries {
        if at + sector_size > log.len() {
            break; // the last entry was cut with the power
        }
        let (sector, count, flags) = (field(at) as usize, field(at + 8) as usize, field(at + 16));
        let data = at + sector_size..at + sector_size + count * sector_size;
        at = data.end;
        if flags & FLUSH != 0 {
            replayed.flushes += 1;
        }
        if flags & MARK != 0 || count == 0 {
            continue;
        }
        if data.end > log.len() {
            break;
        }
        let target = sector * sector_size..(sector + count) * sector_size;
        if flags & DISCARD != 0 {
            disk[target.clone()].fill(0);
        } else {
            disk[target.clone()].copy_from_slice(&log[data]);
        }
        replayed.writes += 1;
        for (slot, verdict) in [Slot::A, Slot::B].iter().zip(verdicts.iter_mut()) {
            let range = partitions.slot(*slot);
            if target.start < range.end && range.start < target.end {
                *verdict = None;
            }
        }
        // The chooser's decision on the disk as it is now, and the good
        // slot it returns to after a trial.
        let sector_bytes = &disk[partitions.state..partitions.state + SECTOR];
        let state = BootState::parse(sector_bytes);
        let choice = choose(state);
        let mut slots = vec![choice.boot];
        if let Ok(state) = state {
            if state.good != choice.boot {
                slots.push(state.good);
            }
        }
        for slot in slots {
            let verdict = verdicts[slot as usize]
                .get_or_insert_with(|| whole(&disk, partitions.slot(slot), builds));
            match verdict {
                Ok(version) if slot == choice.boot => {
                    let trial = if choice.write.is_some() { ", on trial" } else { "" };
                    *replayed
                        .chosen
                        .entry(format!("slot {slot} (version {version}{trial})"))
                        .or_default() += 1;
                }
                Ok(_) => {}
                Err(why) => panic!(
                    "after write {index} of {} (sector {sector}, {count} sectors), the boot state {:?} makes slot {slot} {}, but it is not whole: {why}",
                    log.len(),
                    String::from_utf8_lossy(sector_bytes).trim_end_matches('\0'),
                    if slot == choice.boot { "the one to boot" } else { "the fallback" },
                ),
            }
        }
    }
}

/// A disk whose boots are logged and replayed.
pub struct LoggedDisk {
    /// The disk image the guest boots from.
    pub disk: PathBuf,
    dir: PathBuf,
    builds: BTreeMap<String, Build>,
    pub boots: usize,
    pub replayed: Replayed,
}

/// One boot of a [`LoggedDisk`].
pub struct LoggedBoot {
    pub vm: Vm,
    base: PathBuf,
    log: PathBuf,
}

impl LoggedDisk {
    /// `disk`, whose slots must always hold one of `builds` (by version);
    /// copies and logs go into `dir`.
    pub fn new(disk: PathBuf, dir: &Path, builds: BTreeMap<String, Build>) -> LoggedDisk {
        LoggedDisk {
            disk,
            dir: dir.to_owned(),
            builds,
            boots: 0,
            replayed: Replayed::default(),
        }
    }

    /// Boots QEMU as `command` makes it for the disk and the log file it
    /// is given (it attaches the disk through `blklogwrites` with that
    /// log), keeping a copy of the disk to replay the writes onto.
    pub fn boot(&mut self, command: impl FnOnce(&Path, &Path) -> Command) -> LoggedBoot {
        self.boots += 1;
        let base = self.dir.join(format!("base-{}.img", self.boots));
        let log = self.dir.join(format!("writes-{}.log", self.boots));
        copy_sparse(&self.disk, &base);
        std::fs::File::create(&log).unwrap();
        LoggedBoot {
            vm: Vm::start_command(command(&self.disk, &log)),
            base,
            log,
        }
    }

    /// Cuts the power (SIGKILL), then replays what the boot wrote; returns
    /// what its console showed.
    pub fn cut(&mut self, mut boot: LoggedBoot) -> String {
        boot.vm.kill();
        std::thread::sleep(Duration::from_millis(200));
        let console = boot.vm.console();
        drop(boot.vm);
        replay(&boot.base, &boot.log, &self.builds, &mut self.replayed);
        let _ = std::fs::remove_file(&boot.base);
        let _ = std::fs::remove_file(&boot.log);
        console
    }

    /// Holds the replay to having seen a slot chosen on trial, and prints
    /// its figures.
    pub fn report(&self, kills: usize) {
        let replayed = &self.replayed;
        assert!(
            replayed.chosen.keys().any(|k| k.contains("on trial")),
            "some prefix chose a slot on trial: {:?}",
            replayed.chosen
        );
        eprintln!(
            "figure: {kills} power cuts, every one came back on a whole version with its data; {} boots",
            self.boots
        );
        eprintln!(
            "figure: replayed {} writes ({} flushes) of {} boots; the chooser's decision after each: {:?}",
            replayed.writes, replayed.flushes, self.boots, replayed.chosen
        );
    }
}

/// A copy of a disk image that keeps its holes.
pub fn copy_sparse(from: &Path, to: &Path) {
    run(Command::new("cp").arg("--sparse=always").arg(from).arg(to));
}

/// Waits for `marker` on the console after byte `from`.
pub fn wait_for_after(vm: &mut Vm, marker: &str, from: usize, what: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(300) {
        if vm.console().get(from..).is_some_and(|c| c.contains(marker)) {
            return;
        }
        assert!(
            vm.exited().is_none(),
            "{what}: QEMU exited:\n{}",
            shown(&vm.console())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "{what}: \"{marker}\" never showed:\n{}",
        shown(&vm.console())
    );
}
