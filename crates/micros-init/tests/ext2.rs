//! The ext2 formatter checked by the tools people trust: e2fsck, dumpe2fs
//! and debugfs from e2fsprogs, and the kernel's ext4 driver (a loop mount,
//! with an overlay on top as stage 1 stacks it: that test needs root).
//!
//! Every image starts with garbage at the start of each group, where the
//! metadata goes, so a block the plan forgets to write shows up as damage.
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use micros_init::ext2;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const UUID: [u8; 16] = [
    0x5e, 0xc0, 0x1d, 0x2a, 0x00, 0x11, 0x42, 0x22, 0x83, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99,
];
const UUID_TEXT: &str = "5ec01d2a-0011-4222-8333-445566778899";

/// A directory of its own for one test, removed afterwards.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!("micros-ext2-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Bytes no filesystem would leave: a xorshift stream, never all zero.
fn garbage(length: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8 | 1
        })
        .collect()
}

fn write_plan(file: &File, plan: &[ext2::Write]) {
    let zeros = vec![0; MIB as usize];
    for write in plan {
        file.write_all_at(&write.bytes, write.offset).unwrap();
        let mut at = write.offset + write.bytes.len() as u64;
        while at < write.end() {
            let length = (write.end() - at).min(MIB) as usize;
            file.write_all_at(&zeros[..length], at).unwrap();
            at += length as u64;
        }
    }
}

/// A sparse image of `size` bytes with garbage over the first 12 MiB of
/// every 8 MiB (1 KiB blocks, below 16 MiB) or 128 MiB (a group of 4 KiB
/// blocks): that covers each group's superblock copy, descriptors, bitmaps
/// and inode table (8 MiB at most), and the first directories. Then the
/// plan, minus the regions `skip` picks.
fn image_with(
    scratch: &Scratch,
    size: u64,
    label: &str,
    skip: impl Fn(usize, &ext2::Write) -> bool,
) -> PathBuf {
    let path = scratch.0.join("image");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    file.set_len(size).unwrap();
    let step = if size < 16 * MIB { 8 * MIB } else { 128 * MIB };
    for start in (0..size).step_by(step as usize) {
        let length = (12 * MIB).min(size - start) as usize;
        file.write_all_at(&garbage(length, start + 1), start)
            .unwrap();
    }
    let plan: Vec<ext2::Write> = ext2::format(size, UUID, label)
        .unwrap()
        .into_iter()
        .enumerate()
        .filter(|(index, write)| !skip(*index, write))
        .map(|(_, write)| write)
        .collect();
    write_plan(&file, &plan);
    file.sync_all().unwrap();
    path
}

fn image(scratch: &Scratch, size: u64, label: &str) -> PathBuf {
    image_with(scratch, size, label, |_, _| false)
}

fn run(program: &str, arguments: &[&str]) -> (bool, String, String) {
    let output = Command::new(program)
        .args(arguments)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (e2fsprogs installed?): {e}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `e2fsck -fn` (forced, read-only) finds nothing: exit 0, and no line but
/// the version, the five passes and the summary (`label: 11/16384 files
/// (0.0% non-contiguous), 1033/16384 blocks`), which it returns.
fn assert_clean(image: &Path, extra: &[&str]) -> String {
    let path = image.to_str().unwrap();
    let mut arguments = vec!["-fn"];
    arguments.extend_from_slice(extra);
    arguments.push(path);
    let (success, stdout, stderr) = run("e2fsck", &arguments);
    let complaints: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|line| {
            !(line.starts_with("Pass ")
                || line.starts_with("e2fsck 1.")
                || (line.contains(" files (") && line.ends_with(" blocks")))
        })
        .collect();
    assert!(
        success && complaints.is_empty(),
        "e2fsck -fn {extra:?} is not clean:\n{stdout}{stderr}"
    );
    stdout.lines().last().unwrap_or_default().to_owned()
}

/// `dumpe2fs -h` as field → value.
fn header(image: &Path) -> BTreeMap<String, String> {
    let (success, stdout, stderr) = run("dumpe2fs", &["-h", image.to_str().unwrap()]);
    assert!(success, "dumpe2fs -h failed: {stderr}");
    stdout
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

/// The groups that hold a superblock, from `dumpe2fs`'s group list.
fn superblock_groups(image: &Path) -> Vec<u32> {
    let (success, stdout, stderr) = run("dumpe2fs", &[image.to_str().unwrap()]);
    assert!(success, "dumpe2fs failed: {stderr}");
    let mut groups = Vec::new();
    let mut group = None;
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("Group ") {
            group = rest.split(':').next().and_then(|n| n.parse().ok());
        } else if line.contains("superblock at") {
            groups.push(group.expect("a superblock line inside a group"));
        }
    }
    groups
}

/// What every formatted image must show, whatever its size.
fn check(size: u64, block_size: u64, blocks: u64, groups: u32) {
    let scratch = Scratch::new(&format!("check-{size}"));
    let label = "micros-data";
    let image = image(&scratch, size, label);
    let summary = assert_clean(&image, &[]);
    assert!(summary.contains(": 11/"), "{summary}");

    let fields = header(&image);
    let field = |key: &str| fields.get(key).map(String::as_str).unwrap_or("");
    assert_eq!(field("Filesystem volume name"), label);
    assert_eq!(field("Filesystem UUID"), UUID_TEXT);
    assert_eq!(field("Filesystem magic number"), "0xEF53");
    assert_eq!(field("Filesystem revision #"), "1 (dynamic)");
    assert_eq!(
        field("Filesystem features"),
        "filetype sparse_super large_file"
    );
    assert_eq!(field("Filesystem state"), "clean");
    assert_eq!(field("Filesystem OS type"), "Linux");
    assert_eq!(field("Block size"), block_size.to_string());
    assert_eq!(field("Block count"), blocks.to_string());
    assert_eq!(field("Inode size"), "256");
    assert_eq!(field("Maximum mount count"), "-1");
    assert_eq!(field("Check interval"), "0 (<none>)");
    assert_eq!(field("First inode"), "11");
    assert_ne!(
        field("Directory Hash Seed"),
        "00000000-0000-0000-0000-000000000000"
    );

    // sparse_super: copies in groups 0, 1 and the powers of 3, 5 and 7.
    let expected: Vec<u32> = [0, 1, 3, 5, 7, 9, 25, 27, 49]
        .into_iter()
        .filter(|&group| group < groups)
        .collect();
    assert_eq!(superblock_groups(&image), expected);
    // Each copy (with its descriptors) checks out on its own too.
    let blocks_per_group = 8 * block_size;
    let first_data_block = u64::from(block_size == 1024);
    for &group in &expected[1..] {
        let block = (first_data_block + u64::from(group) * blocks_per_group).to_string();
        assert_clean(&image, &["-b", &block, "-B", &block_size.to_string()]);
    }

    let path = image.to_str().unwrap();
    let (_, listing, _) = run("debugfs", &["-R", "ls -l /", path]);
    assert!(listing.contains("40755") && listing.contains("lost+found"));
    let (_, lost_and_found, _) = run("debugfs", &["-R", "stat /lost+found", path]);
    assert!(lost_and_found.contains("Mode:  0700"), "{lost_and_found}");
}

#[test]
fn formats_1_mib_with_1_kib_blocks() {
    check(MIB, 1024, 1024, 1);
}

#[test]
fn formats_2_mib() {
    check(2 * MIB, 1024, 2048, 1);
}

#[test]
fn formats_12_mib_in_two_groups_of_1_kib_blocks() {
    check(12 * MIB, 1024, 12 * 1024, 2);
}

#[test]
fn formats_64_mib() {
    check(64 * MIB, 4096, 64 * 256, 1);
}

#[test]
fn formats_200_mib_with_a_partial_last_group() {
    check(200 * MIB, 4096, 200 * 256, 2);
}

#[test]
fn formats_1_gib() {
    check(GIB, 4096, 8 * 32768, 8);
}

#[test]
fn formats_3_gib_with_a_partial_last_group_holding_a_backup() {
    // 3 GiB + 136.5 MiB: groups 0-24 full, group 25 (5², a backup) partial.
    // A size that is not a whole number of blocks rounds down.
    let size = 3 * GIB + 136 * MIB + MIB / 2;
    check(size + 1000, 4096, size / 4096, 26);
}

#[test]
fn drops_a_last_group_too_short_for_its_metadata() {
    // 40 blocks past the first group could not hold a group's inode table.
    let scratch = Scratch::new("drop");
    let image = image(&scratch, 128 * MIB + 40 * 4096, "short");
    assert_clean(&image, &[]);
    assert_eq!(header(&image)["Block count"], "32768");
}

#[test]
fn e2fsck_notices_a_region_left_out() {
    // The harness itself must catch a formatter that forgets a region: the
    // second group's bitmaps and inode table stay garbage here.
    let scratch = Scratch::new("left-out");
    let image = image_with(&scratch, 200 * MIB, "broken", |_, write| {
        write.offset == 32768 * 4096
    });
    let (success, stdout, _) = run("e2fsck", &["-fn", image.to_str().unwrap()]);
    assert!(!success, "e2fsck accepted a damaged image:\n{stdout}");
}

/// Unmounts on drop, so a failing test leaves no mount behind.
struct Mounted(PathBuf);

impl Mounted {
    fn new(source: &str, target: &Path, arguments: &[&str]) -> Mounted {
        std::fs::create_dir_all(target).unwrap();
        let mut all = arguments.to_vec();
        all.extend([source, target.to_str().unwrap()]);
        let (success, _, stderr) = run("mount", &all);
        assert!(success, "mount {all:?} failed: {stderr}");
        Mounted(target.to_owned())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let (success, _, stderr) = run("umount", &[self.0.to_str().unwrap()]);
        if !success && !std::thread::panicking() {
            panic!("umount {} failed: {stderr}", self.0.display());
        }
    }
}

fn content(name: &str, length: usize) -> Vec<u8> {
    garbage(
        length,
        name.bytes().fold(7, |hash: u64, byte| {
            hash.wrapping_mul(31).wrapping_add(u64::from(byte))
        }),
    )
}

const BIG_FILE: usize = 160 << 20;

/// Files for the round trip: a tree of small files, and one file larger than
/// what the first group has free, so it spans groups.
fn tree() -> Vec<(String, usize)> {
    let mut files = Vec::new();
    for a in 0..4 {
        for b in 0..4 {
            for n in 0..40 {
                files.push((
                    format!("tree/{a}/{b}/file-{n}"),
                    1 + (a * 977 + b * 131 + n * 61) % 9000,
                ));
            }
        }
    }
    files.push(("big".to_owned(), BIG_FILE));
    files
}

#[test]
fn the_kernel_mounts_it_under_an_overlay_and_files_survive_a_remount() {
    let scratch = Scratch::new("mount");
    let image = image(&scratch, 200 * MIB, "micros-data");
    let source = image.to_str().unwrap();
    let data = scratch.0.join("data");
    let lower = scratch.0.join("lower");
    let merged = scratch.0.join("merged");
    std::fs::create_dir_all(lower.join("gone")).unwrap();
    std::fs::write(lower.join("gone/old"), b"from the read-only root").unwrap();
    std::fs::write(lower.join("kept"), b"lower").unwrap();
    let overlay_options = format!(
        "lowerdir={},upperdir={}/upper,workdir={}/work",
        lower.display(),
        data.display(),
        data.display()
    );

    {
        let _data = Mounted::new(source, &data, &["-o", "loop", "-t", "ext4"]);
        for (name, length) in tree() {
            let path = data.join(&name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, content(&name, length)).unwrap();
        }
        // large_file: a sparse file past 2 GiB.
        let sparse = File::create(data.join("sparse")).unwrap();
        sparse.set_len(3 * GIB).unwrap();
        sparse.write_all_at(b"the end", 3 * GIB - 7).unwrap();
        std::os::unix::fs::symlink("tree/0/0/file-0", data.join("link")).unwrap();
        for dir in ["upper", "work"] {
            std::fs::create_dir(data.join(dir)).unwrap();
        }
        // As stage 1 stacks it: overlayfs keeps whiteouts (device nodes)
        // and opaque directories (trusted.* extended attributes) on it.
        let _merged = Mounted::new(
            "overlay",
            &merged,
            &["-t", "overlay", "-o", &overlay_options],
        );
        std::fs::remove_dir_all(merged.join("gone")).unwrap();
        std::fs::create_dir(merged.join("gone")).unwrap();
        std::fs::write(merged.join("gone/new"), b"written at run time").unwrap();
        std::fs::remove_file(merged.join("kept")).unwrap();
    }

    let summary = assert_clean(&image, &[]);
    assert!(!summary.contains(": 11/"), "{summary}");

    let _data = Mounted::new(source, &data, &["-o", "loop", "-t", "ext4"]);
    for (name, length) in tree() {
        let read = std::fs::read(data.join(&name)).unwrap();
        assert!(read == content(&name, length), "{name} differs");
    }
    let sparse = File::open(data.join("sparse")).unwrap();
    assert_eq!(sparse.metadata().unwrap().len(), 3 * GIB);
    let mut end = [0; 7];
    sparse.read_exact_at(&mut end, 3 * GIB - 7).unwrap();
    assert_eq!(&end, b"the end");
    assert_eq!(
        std::fs::read_link(data.join("link")).unwrap(),
        Path::new("tree/0/0/file-0")
    );
    let _merged = Mounted::new(
        "overlay",
        &merged,
        &["-t", "overlay", "-o", &overlay_options],
    );
    let gone: Vec<_> = std::fs::read_dir(merged.join("gone"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(gone, ["new"], "the opaque directory lost its attribute");
    assert!(!merged.join("kept").exists(), "the whiteout is gone");
}
