//! Everything stage 1 asks of Linux, over raw system calls: no C library,
//! no standard library. That is what lets `micros-system`'s build make
//! stage 1 for every platform from the toolchain's `rust-src` alone
//! (`-Zbuild-std=core,alloc`, linked by `rust-lld`), where rustup offers
//! no standard library for the target (32-bit ARM, riscv64).
//!
//! ```text
//! _start (per architecture, below) ─► start() ─► crate::main() -> !
//! syscall6 (per architecture)      ─► the safe wrappers: open, read_at,
//!                                     statx, getdents64, mount, execve, …
//! Pages                            ─► the global allocator (mmap/munmap)
//! ```
//!
//! All the unsafe code of the device binaries is in this file. Two programs
//! share it (`micros-init` and micros-update's device program, which
//! includes this file by path), each using a part of it.
#![allow(unsafe_code, dead_code)]

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

/// System call numbers. x86_64 and 32-bit ARM have their own tables;
/// aarch64 and riscv64 share the generic one. 32-bit ARM uses the 64-bit
/// time calls, so one `Timespec` fits all.
mod number {
    #[cfg(target_arch = "x86_64")]
    mod table {
        pub const READ: usize = 0;
        pub const WRITE: usize = 1;
        pub const CLOSE: usize = 3;
        pub const MMAP: usize = 9;
        pub const MUNMAP: usize = 11;
        pub const IOCTL: usize = 16;
        pub const PREAD64: usize = 17;
        pub const PWRITE64: usize = 18;
        pub const EXECVE: usize = 59;
        pub const FSYNC: usize = 74;
        pub const CHDIR: usize = 80;
        pub const CHROOT: usize = 161;
        pub const SYNC: usize = 162;
        pub const MOUNT: usize = 165;
        pub const REBOOT: usize = 169;
        pub const GETDENTS64: usize = 217;
        pub const CLOCK_GETTIME: usize = 228;
        pub const CLOCK_NANOSLEEP: usize = 230;
        pub const OPENAT: usize = 257;
        pub const MKDIRAT: usize = 258;
        pub const UNLINKAT: usize = 263;
        pub const FINIT_MODULE: usize = 313;
        pub const STATX: usize = 332;
        pub const GETPID: usize = 39;
        pub const SOCKET: usize = 41;
        pub const CONNECT: usize = 42;
        pub const BIND: usize = 49;
        pub const SETSOCKOPT: usize = 54;
        pub const FLOCK: usize = 73;
        pub const GETRANDOM: usize = 318;
        pub const EXIT_GROUP: usize = 231;
    }
    #[cfg(target_arch = "arm")]
    mod table {
        pub const READ: usize = 3;
        pub const WRITE: usize = 4;
        pub const CLOSE: usize = 6;
        pub const EXECVE: usize = 11;
        pub const CHDIR: usize = 12;
        pub const MOUNT: usize = 21;
        pub const SYNC: usize = 36;
        pub const IOCTL: usize = 54;
        pub const CHROOT: usize = 61;
        pub const REBOOT: usize = 88;
        pub const MUNMAP: usize = 91;
        pub const FSYNC: usize = 118;
        pub const PREAD64: usize = 180;
        pub const PWRITE64: usize = 181;
        /// mmap2: the offset is in pages (always 0 here).
        pub const MMAP: usize = 192;
        pub const GETDENTS64: usize = 217;
        pub const OPENAT: usize = 322;
        pub const MKDIRAT: usize = 323;
        pub const UNLINKAT: usize = 328;
        pub const FINIT_MODULE: usize = 379;
        pub const STATX: usize = 397;
        pub const GETPID: usize = 20;
        pub const SOCKET: usize = 281;
        pub const BIND: usize = 282;
        pub const CONNECT: usize = 283;
        pub const SETSOCKOPT: usize = 294;
        pub const FLOCK: usize = 143;
        pub const GETRANDOM: usize = 384;
        pub const EXIT_GROUP: usize = 248;
        pub const CLOCK_GETTIME: usize = 403; // clock_gettime64
        pub const CLOCK_NANOSLEEP: usize = 407; // clock_nanosleep_time64
    }
    #[cfg(any(target_arch = "aarch64", target_arch = "riscv64"))]
    mod table {
        pub const IOCTL: usize = 29;
        pub const MKDIRAT: usize = 34;
        pub const UNLINKAT: usize = 35;
        pub const MOUNT: usize = 40;
        pub const CHDIR: usize = 49;
        pub const CHROOT: usize = 51;
        pub const OPENAT: usize = 56;
        pub const CLOSE: usize = 57;
        pub const GETDENTS64: usize = 61;
        pub const READ: usize = 63;
        pub const WRITE: usize = 64;
        pub const PREAD64: usize = 67;
        pub const PWRITE64: usize = 68;
        pub const SYNC: usize = 81;
        pub const FSYNC: usize = 82;
        pub const CLOCK_GETTIME: usize = 113;
        pub const CLOCK_NANOSLEEP: usize = 115;
        pub const REBOOT: usize = 142;
        pub const MUNMAP: usize = 215;
        pub const EXECVE: usize = 221;
        pub const MMAP: usize = 222;
        pub const FINIT_MODULE: usize = 273;
        pub const STATX: usize = 291;
        pub const GETPID: usize = 172;
        pub const SOCKET: usize = 198;
        pub const BIND: usize = 200;
        pub const CONNECT: usize = 203;
        pub const SETSOCKOPT: usize = 208;
        pub const FLOCK: usize = 32;
        pub const GETRANDOM: usize = 278;
        pub const EXIT_GROUP: usize = 94;
    }
    pub use table::*;
    /// Calls added since Linux 5.1 have one number on every architecture.
    pub const OPENAT2: usize = 437;
}

/// Makes system call `number` with up to six arguments; returns the
/// kernel's result (a negative errno on failure).
///
/// # Safety
/// The arguments must be what the call expects: valid pointers to memory
/// of the right size that outlives the call.
#[inline(always)]
unsafe fn syscall6(number: usize, args: [usize; 6]) -> isize {
    let result: isize;
    #[cfg(target_arch = "x86_64")]
    core::arch::asm!(
        "syscall",
        inlateout("rax") number as isize => result,
        in("rdi") args[0], in("rsi") args[1], in("rdx") args[2],
        in("r10") args[3], in("r8") args[4], in("r9") args[5],
        lateout("rcx") _, lateout("r11") _,
        options(nostack),
    );
    #[cfg(target_arch = "aarch64")]
    core::arch::asm!(
        "svc 0",
        in("x8") number,
        inlateout("x0") args[0] as isize => result,
        in("x1") args[1], in("x2") args[2], in("x3") args[3],
        in("x4") args[4], in("x5") args[5],
        options(nostack),
    );
    #[cfg(target_arch = "arm")]
    core::arch::asm!(
        "svc 0",
        in("r7") number,
        inlateout("r0") args[0] as isize => result,
        in("r1") args[1], in("r2") args[2], in("r3") args[3],
        in("r4") args[4], in("r5") args[5],
        options(nostack),
    );
    #[cfg(target_arch = "riscv64")]
    core::arch::asm!(
        "ecall",
        in("a7") number,
        inlateout("a0") args[0] as isize => result,
        in("a1") args[1], in("a2") args[2], in("a3") args[3],
        in("a4") args[4], in("a5") args[5],
        options(nostack),
    );
    result
}

// The program's entry: the kernel starts PID 1 at `_start` with the stack
// pointer at argc, then argv and the environment (HOME, TERM and the
// command line's unknown `key=value` words), which stage 1 hands on to
// runit. Each architecture clears the frame pointer, passes that stack
// pointer, aligns the stack and calls `micros_init_start`, which never
// returns.
#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call micros_init_start",
    "ud2",
);
#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".globl _start",
    "_start:",
    "mov x29, #0",
    "mov x30, #0",
    "mov x0, sp",
    "and x1, x0, #-16",
    "mov sp, x1",
    "bl micros_init_start",
    "brk #0",
);
#[cfg(target_arch = "arm")]
core::arch::global_asm!(
    ".globl _start",
    "_start:",
    "mov fp, #0",
    "mov lr, #0",
    "mov r0, sp",
    "bic sp, sp, #15",
    "bl micros_init_start",
    "udf #0",
);
#[cfg(target_arch = "riscv64")]
core::arch::global_asm!(
    ".globl _start",
    "_start:",
    ".option push",
    ".option norelax",
    "lla gp, __global_pointer$",
    ".option pop",
    "mv a0, sp",
    "andi sp, sp, -16",
    "call micros_init_start",
    "unimp",
);

/// The environment the kernel gave PID 1 (`envp`), for [`execv`].
static ENVIRONMENT: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);
/// The initial stack (`argc`, then `argv`), for [`arguments`].
static STACK: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

#[no_mangle]
extern "C" fn micros_init_start(stack: *const usize) -> ! {
    // SAFETY: the kernel's initial stack: argc, argc argument pointers, a
    // null, then the environment's pointers.
    let environment = unsafe { stack.add(1 + *stack + 1) };
    ENVIRONMENT.store(environment as usize, core::sync::atomic::Ordering::Relaxed);
    STACK.store(stack as usize, core::sync::atomic::Ordering::Relaxed);
    crate::main()
}

/// The program's arguments (`argv`), lossily as text.
pub fn arguments() -> Vec<String> {
    let stack = STACK.load(core::sync::atomic::Ordering::Relaxed) as *const usize;
    if stack.is_null() {
        return Vec::new();
    }
    // SAFETY: the kernel's initial stack, as in `micros_init_start`: argc,
    // then argc pointers to NUL-terminated strings, which live as long as
    // the process.
    unsafe {
        (0..*stack)
            .map(|i| {
                let start = *stack.add(1 + i) as *const u8;
                let mut length = 0;
                while *start.add(length) != 0 {
                    length += 1;
                }
                String::from_utf8_lossy(core::slice::from_raw_parts(start, length)).into_owned()
            })
            .collect()
    }
}

/// This process's ID: 1 for the initrd's `/init`.
pub fn process_id() -> usize {
    call(number::GETPID, [0; 6]).unwrap_or(0)
}

/// Ends the process (a tool run, never PID 1).
pub fn exit(code: i32) -> ! {
    let _ = call(number::EXIT_GROUP, [code as usize, 0, 0, 0, 0, 0]);
    loop {
        sleep(Duration::from_secs(3600));
    }
}

/// A socket that receives the kernel's uevents (`NETLINK_KOBJECT_UEVENT`,
/// multicast group 1): what udev listens to. Read it with [`File::read`],
/// one event per read.
pub fn uevent_socket() -> Result<File> {
    const AF_NETLINK: usize = 16;
    const SOCK_DGRAM: usize = 2;
    const NETLINK_KOBJECT_UEVENT: usize = 15;
    let fd = call(
        number::SOCKET,
        [
            AF_NETLINK,
            SOCK_DGRAM | O_CLOEXEC,
            NETLINK_KOBJECT_UEVENT,
            0,
            0,
            0,
        ],
    )?;
    let socket = File(fd as i32);
    // struct sockaddr_nl: family (u16), padding (u16), port ID (u32: 0 lets
    // the kernel choose), groups (u32).
    let mut address = [0u8; 12];
    address[0..2].copy_from_slice(&(AF_NETLINK as u16).to_ne_bytes());
    address[8..12].copy_from_slice(&1u32.to_ne_bytes());
    call(
        number::BIND,
        [
            socket.0 as usize,
            address.as_ptr() as usize,
            address.len(),
            0,
            0,
            0,
        ],
    )?;
    Ok(socket)
}

/// A socket connected to an IPv4 address and port: TCP (`stream`) or UDP;
/// connecting, and then each read and write, give up after `timeout`.
pub fn connect(address: [u8; 4], port: u16, stream: bool, timeout: Duration) -> Result<File> {
    const AF_INET: usize = 2;
    const SOCK_STREAM: usize = 1;
    const SOCK_DGRAM: usize = 2;
    const SOL_SOCKET: usize = 1;
    const SO_RCVTIMEO: usize = 20;
    const SO_SNDTIMEO: usize = 21;
    let kind = if stream { SOCK_STREAM } else { SOCK_DGRAM };
    let fd = call(number::SOCKET, [AF_INET, kind | O_CLOEXEC, 0, 0, 0, 0])?;
    let socket = File(fd as i32);
    // struct timeval: two longs (the old layout, which 32-bit ARM keeps
    // for SO_RCVTIMEO).
    let time = [timeout.as_secs() as isize, timeout.subsec_micros() as isize];
    for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
        call(
            number::SETSOCKOPT,
            [
                socket.0 as usize,
                SOL_SOCKET,
                option,
                time.as_ptr() as usize,
                core::mem::size_of_val(&time),
                0,
            ],
        )?;
    }
    // struct sockaddr_in: family, port (big-endian), address, 8 zeros.
    let mut socket_address = [0u8; 16];
    socket_address[0..2].copy_from_slice(&(AF_INET as u16).to_ne_bytes());
    socket_address[2..4].copy_from_slice(&port.to_be_bytes());
    socket_address[4..8].copy_from_slice(&address);
    call(
        number::CONNECT,
        [
            socket.0 as usize,
            socket_address.as_ptr() as usize,
            socket_address.len(),
            0,
            0,
            0,
        ],
    )?;
    Ok(socket)
}

/// Fills `buffer` from the kernel's random number generator (waiting for
/// it to be seeded).
pub fn random(buffer: &mut [u8]) -> Result<()> {
    let mut filled = 0;
    while filled < buffer.len() {
        let rest = &mut buffer[filled..];
        filled += call(
            number::GETRANDOM,
            [rest.as_mut_ptr() as usize, rest.len(), 0, 0, 0, 0],
        )?;
    }
    Ok(())
}

/// An error number from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

pub const EEXIST: Errno = Errno(17);
pub const EINVAL: Errno = Errno(22);
pub const ENOSYS: Errno = Errno(38);

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self.0 {
            1 => "Operation not permitted",
            2 => "No such file or directory",
            4 => "Interrupted system call",
            5 => "Input/output error",
            6 => "No such device or address",
            8 => "Exec format error",
            12 => "Cannot allocate memory",
            13 => "Permission denied",
            16 => "Device or resource busy",
            17 => "File exists",
            19 => "No such device",
            20 => "Not a directory",
            21 => "Is a directory",
            22 => "Invalid argument",
            25 => "Inappropriate ioctl for device",
            28 => "No space left on device",
            30 => "Read-only file system",
            38 => "Function not implemented",
            40 => "Too many levels of symbolic links",
            61 => "No data available",
            95 => "Operation not supported",
            11 => "Timed out waiting for the other side",
            32 => "Broken pipe",
            101 => "Network is unreachable",
            104 => "Connection reset by peer",
            110 => "Connection timed out",
            111 => "Connection refused",
            113 => "No route to host",
            _ => "",
        };
        if text.is_empty() {
            write!(f, "error {}", self.0)
        } else {
            write!(f, "{text} (os error {})", self.0)
        }
    }
}

pub type Result<T> = core::result::Result<T, Errno>;

fn check(result: isize) -> Result<usize> {
    if (-4095..0).contains(&result) {
        Err(Errno(-result as i32))
    } else {
        Ok(result as usize)
    }
}

fn call(number: usize, args: [usize; 6]) -> Result<usize> {
    // SAFETY: each caller passes pointers into live buffers of the sizes
    // the call reads or writes, as documented at the caller.
    check(unsafe { syscall6(number, args) })
}

/// `text` as a NUL-terminated string; one with a NUL inside is invalid.
fn c_string(text: &str) -> Result<Vec<u8>> {
    if text.as_bytes().contains(&0) {
        return Err(EINVAL);
    }
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(0);
    Ok(bytes)
}

const AT_FDCWD: usize = -100isize as usize;
const AT_SYMLINK_NOFOLLOW: usize = 0x100;
const AT_REMOVEDIR: usize = 0x200;
const AT_EMPTY_PATH: usize = 0x1000;
const O_RDONLY: usize = 0;
const O_WRONLY: usize = 1;
const O_RDWR: usize = 2;
const O_CLOEXEC: usize = 0o2000000;

/// Writes all of `bytes` to `fd` (the console is fd 2).
pub fn write_all(fd: i32, mut bytes: &[u8]) -> Result<()> {
    while !bytes.is_empty() {
        let n = call(
            number::WRITE,
            [fd as usize, bytes.as_ptr() as usize, bytes.len(), 0, 0, 0],
        )?;
        if n == 0 {
            return Err(Errno(5));
        }
        bytes = &bytes[n..];
    }
    Ok(())
}

/// Prints to the console (stderr), as `eprintln!` would.
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        write_all(2, text.as_bytes()).map_err(|_| fmt::Error)
    }
}

/// An open file descriptor, closed when dropped.
pub struct File(i32);

impl File {
    pub fn open(path: &str) -> Result<File> {
        open_flags(path, O_RDONLY)
    }

    pub fn open_for_writing(path: &str) -> Result<File> {
        open_flags(path, O_WRONLY)
    }

    /// Opens a device or file for reading and writing (the update slots).
    pub fn open_for_reading_and_writing(path: &str) -> Result<File> {
        open_flags(path, O_RDWR)
    }

    /// Standard input, which the process owns (closed when dropped).
    pub fn standard_input() -> File {
        File(0)
    }

    /// Opens `path` for appending, creating it (mode 0644) if missing.
    pub fn open_for_appending(path: &str) -> Result<File> {
        const O_CREAT: usize = 0o100;
        const O_APPEND: usize = 0o2000;
        let path = c_string(path)?;
        let fd = call(
            number::OPENAT,
            [
                AT_FDCWD,
                path.as_ptr() as usize,
                O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                0o644,
                0,
                0,
            ],
        )?;
        Ok(File(fd as i32))
    }

    /// Writes all of `bytes`.
    pub fn write_all(&self, bytes: &[u8]) -> Result<()> {
        write_all(self.0, bytes)
    }

    /// Reads into `buffer`; 0 at the end.
    pub fn read(&self, buffer: &mut [u8]) -> Result<usize> {
        call(
            number::READ,
            [
                self.0 as usize,
                buffer.as_mut_ptr() as usize,
                buffer.len(),
                0,
                0,
                0,
            ],
        )
    }

    /// Everything from the current position to the end.
    pub fn read_to_end(&self) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let n = self.read(&mut buffer)?;
            if n == 0 {
                return Ok(bytes);
            }
            bytes.extend_from_slice(&buffer[..n]);
        }
    }

    /// pread64/pwrite64 take a 64-bit offset: one register on 64-bit
    /// machines; on 32-bit ARM an aligned register pair (r4, r5), r3 unused.
    fn at(&self, number: usize, buffer: usize, length: usize, offset: u64) -> Result<usize> {
        #[cfg(target_pointer_width = "64")]
        let args = [self.0 as usize, buffer, length, offset as usize, 0, 0];
        #[cfg(target_pointer_width = "32")]
        let args = [
            self.0 as usize,
            buffer,
            length,
            0,
            offset as u32 as usize,
            (offset >> 32) as usize,
        ];
        call(number, args)
    }

    /// Fills `buffer` from `offset`, or fails (a short device is an error).
    pub fn read_exact_at(&self, buffer: &mut [u8], offset: u64) -> Result<()> {
        self.all_at(
            number::PREAD64,
            buffer.as_mut_ptr() as usize,
            buffer.len(),
            offset,
        )
    }

    pub fn write_all_at(&self, bytes: &[u8], offset: u64) -> Result<()> {
        self.all_at(
            number::PWRITE64,
            bytes.as_ptr() as usize,
            bytes.len(),
            offset,
        )
    }

    /// pread64 or pwrite64 (`number`) until all `length` bytes at `buffer`
    /// are done; a device that ends first is an I/O error.
    fn all_at(&self, number: usize, buffer: usize, length: usize, offset: u64) -> Result<()> {
        let mut done = 0;
        while done < length {
            let n = self.at(number, buffer + done, length - done, offset + done as u64)?;
            if n == 0 {
                return Err(Errno(5));
            }
            done += n;
        }
        Ok(())
    }

    /// WDIOC_SETTIMEOUT on a watchdog device.
    pub fn set_watchdog_timeout(&self, seconds: u32) -> Result<()> {
        // _IOWR('W', 6, int)
        const WDIOC_SETTIMEOUT: usize = 0xC004_5706;
        let mut value = seconds as i32;
        call(
            number::IOCTL,
            [
                self.0 as usize,
                WDIOC_SETTIMEOUT,
                &mut value as *mut i32 as usize,
                0,
                0,
                0,
            ],
        )
        .map(drop)
    }

    /// Waits for an exclusive lock on the file (flock), held until the
    /// process ends.
    pub fn lock(&self) -> Result<()> {
        const LOCK_EX: usize = 2;
        call(number::FLOCK, [self.0 as usize, LOCK_EX, 0, 0, 0, 0]).map(|_| ())
    }

    pub fn sync(&self) -> Result<()> {
        call(number::FSYNC, [self.0 as usize, 0, 0, 0, 0, 0]).map(drop)
    }

    /// The size in bytes of a block device (BLKGETSIZE64) or a file.
    pub fn size(&self) -> Result<u64> {
        let status = self.status()?;
        if status.is_block_device() {
            // _IOR(0x12, 114, size_t): the size of size_t is in the number.
            let request = 0x8000_1272 | (core::mem::size_of::<usize>() << 16);
            let mut size = 0u64;
            call(
                number::IOCTL,
                [
                    self.0 as usize,
                    request,
                    &mut size as *mut u64 as usize,
                    0,
                    0,
                    0,
                ],
            )?;
            Ok(size)
        } else {
            Ok(status.size)
        }
    }

    pub fn status(&self) -> Result<Status> {
        statx(self.0 as usize, &[0], AT_EMPTY_PATH)
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let _ = call(number::CLOSE, [self.0 as usize, 0, 0, 0, 0, 0]);
    }
}

fn open_flags(path: &str, flags: usize) -> Result<File> {
    let path = c_string(path)?;
    let fd = call(
        number::OPENAT,
        [AT_FDCWD, path.as_ptr() as usize, flags | O_CLOEXEC, 0, 0, 0],
    )?;
    Ok(File(fd as i32))
}

/// Opens `path` inside the directory `root` as if `root` were `/`: its
/// symbolic links, absolute ones included, resolve within it (openat2's
/// RESOLVE_IN_ROOT). For checking the new root's init before switching.
pub fn open_in_root(root: &File, path: &str) -> Result<File> {
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    const RESOLVE_IN_ROOT: u64 = 0x10;
    let how = OpenHow {
        flags: (O_RDONLY | O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_IN_ROOT,
    };
    let path = c_string(path)?;
    let fd = call(
        number::OPENAT2,
        [
            root.0 as usize,
            path.as_ptr() as usize,
            &how as *const OpenHow as usize,
            core::mem::size_of::<OpenHow>(),
            0,
            0,
        ],
    )?;
    Ok(File(fd as i32))
}

/// A file's whole contents.
pub fn read(path: &str) -> Result<Vec<u8>> {
    File::open(path)?.read_to_end()
}

/// A file's whole contents as text (lossy).
pub fn read_to_string(path: &str) -> Result<String> {
    Ok(String::from_utf8_lossy(&read(path)?).into_owned())
}

/// Up to `length` bytes from the start of `path` (fewer if it is shorter
/// or cannot be read).
pub fn read_start(path: &str, length: usize) -> Vec<u8> {
    let mut buffer = alloc::vec![0; length];
    let mut total = 0;
    if let Ok(file) = File::open(path) {
        while total < length {
            match file.read(&mut buffer[total..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    }
    buffer.truncate(total);
    buffer
}

/// What statx says of a file.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    pub mode: u32,
    pub size: u64,
    /// The device holding it (major, minor).
    pub device: (u32, u32),
}

const S_IFMT: u32 = 0o170000;

impl Status {
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == 0o040000
    }
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == 0o100000
    }
    pub fn is_block_device(&self) -> bool {
        self.mode & S_IFMT == 0o060000
    }
}

fn statx(dirfd: usize, path: &[u8], flags: usize) -> Result<Status> {
    const STATX_BASIC_STATS: usize = 0x7ff;
    // struct statx is 256 bytes; u64s keep it aligned.
    let mut buffer = [0u64; 32];
    call(
        number::STATX,
        [
            dirfd,
            path.as_ptr() as usize,
            flags,
            STATX_BASIC_STATS,
            buffer.as_mut_ptr() as usize,
            0,
        ],
    )?;
    // Every platform MicrOS targets is little-endian.
    let low = |word: u64| word as u32;
    let high = |word: u64| (word >> 32) as u32;
    Ok(Status {
        // stx_mode: the u16 at byte 28.
        mode: high(buffer[3]) & 0xffff,
        // stx_size at byte 40; stx_dev_major and _minor at 136 and 140.
        size: buffer[5],
        device: (low(buffer[17]), high(buffer[17])),
    })
}

/// The file at `path`, following symbolic links (`follow`) or not.
pub fn status(path: &str, follow: bool) -> Result<Status> {
    let path = c_string(path)?;
    statx(
        AT_FDCWD,
        &path,
        if follow { 0 } else { AT_SYMLINK_NOFOLLOW },
    )
}

pub fn exists(path: &str) -> bool {
    status(path, true).is_ok()
}

/// The names in a directory, without `.` and `..`, sorted.
pub fn read_dir(path: &str) -> Result<Vec<String>> {
    let dir = File::open(path)?;
    let mut names = Vec::new();
    let mut buffer = [0u64; 1024];
    loop {
        let n = call(
            number::GETDENTS64,
            [
                dir.0 as usize,
                buffer.as_mut_ptr() as usize,
                8 * buffer.len(),
                0,
                0,
                0,
            ],
        )?;
        if n == 0 {
            break;
        }
        let bytes: Vec<u8> = buffer
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .take(n)
            .collect();
        // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name.
        let mut at = 0;
        while at + 19 <= n {
            let length = usize::from(u16::from_le_bytes([bytes[at + 16], bytes[at + 17]]));
            if length == 0 || at + length > n {
                break;
            }
            let name = &bytes[at + 19..at + length];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if name != b"." && name != b".." {
                names.push(String::from_utf8_lossy(name).into_owned());
            }
            at += length;
        }
    }
    names.sort();
    Ok(names)
}

/// mkdir -p, mode 0755.
pub fn create_dir_all(path: &str) -> Result<()> {
    let mut prefix = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        prefix.push('/');
        prefix.push_str(part);
        let c = c_string(&prefix)?;
        match call(
            number::MKDIRAT,
            [AT_FDCWD, c.as_ptr() as usize, 0o755, 0, 0, 0],
        ) {
            Ok(_) | Err(EEXIST) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Removes a file, or an empty directory when `dir`.
pub fn remove(path: &str, dir: bool) -> Result<()> {
    let c = c_string(path)?;
    let flags = if dir { AT_REMOVEDIR } else { 0 };
    call(
        number::UNLINKAT,
        [AT_FDCWD, c.as_ptr() as usize, flags, 0, 0, 0],
    )
    .map(drop)
}

pub const MS_RDONLY: usize = 1;
pub const MS_NOSUID: usize = 2;
pub const MS_NODEV: usize = 4;
pub const MS_NOEXEC: usize = 8;
pub const MS_MOVE: usize = 8192;

pub fn mount(source: &str, target: &str, fstype: &str, flags: usize, data: &str) -> Result<()> {
    let (source, target, fstype, data) = (
        c_string(source)?,
        c_string(target)?,
        c_string(fstype)?,
        c_string(data)?,
    );
    call(
        number::MOUNT,
        [
            source.as_ptr() as usize,
            target.as_ptr() as usize,
            fstype.as_ptr() as usize,
            flags,
            data.as_ptr() as usize,
            0,
        ],
    )
    .map(drop)
}

pub fn chdir(path: &str) -> Result<()> {
    let c = c_string(path)?;
    call(number::CHDIR, [c.as_ptr() as usize, 0, 0, 0, 0, 0]).map(drop)
}

pub fn chroot(path: &str) -> Result<()> {
    let c = c_string(path)?;
    call(number::CHROOT, [c.as_ptr() as usize, 0, 0, 0, 0, 0]).map(drop)
}

/// Loads a kernel module from an open file.
pub fn finit_module(file: &File, parameters: &str) -> Result<()> {
    let parameters = c_string(parameters)?;
    call(
        number::FINIT_MODULE,
        [file.0 as usize, parameters.as_ptr() as usize, 0, 0, 0, 0],
    )
    .map(drop)
}

/// Replaces this process with `program`, given `argv` and the environment
/// PID 1 was started with; returns only on failure.
pub fn execv(program: &str, argv: &[&str]) -> Errno {
    let Ok(program) = c_string(program) else {
        return EINVAL;
    };
    let Ok(strings) = argv.iter().map(|a| c_string(a)).collect::<Result<Vec<_>>>() else {
        return EINVAL;
    };
    let mut pointers: Vec<usize> = strings.iter().map(|s| s.as_ptr() as usize).collect();
    pointers.push(0);
    let empty = [0usize];
    let environment = match ENVIRONMENT.load(core::sync::atomic::Ordering::Relaxed) {
        0 => empty.as_ptr() as usize,
        pointer => pointer,
    };
    match call(
        number::EXECVE,
        [
            program.as_ptr() as usize,
            pointers.as_ptr() as usize,
            environment,
            0,
            0,
            0,
        ],
    ) {
        Ok(_) => EINVAL,
        Err(error) => error,
    }
}

#[repr(C)]
struct Timespec {
    seconds: i64,
    nanoseconds: i64,
}

const CLOCK_REALTIME: usize = 0;
const CLOCK_MONOTONIC: usize = 1;

/// Seconds since 1970 by the machine's clock, which may never have been
/// set (no RTC, no network time yet): for records, never for decisions.
pub fn unix_time() -> u64 {
    clock(CLOCK_REALTIME).seconds.max(0) as u64
}

/// Time since boot.
pub fn now() -> Duration {
    let time = clock(CLOCK_MONOTONIC);
    Duration::new(time.seconds as u64, time.nanoseconds as u32)
}

fn clock(id: usize) -> Timespec {
    let mut time = Timespec {
        seconds: 0,
        nanoseconds: 0,
    };
    let _ = call(
        number::CLOCK_GETTIME,
        [id, &mut time as *mut Timespec as usize, 0, 0, 0, 0],
    );
    time
}

pub fn sleep(duration: Duration) {
    let time = Timespec {
        seconds: duration.as_secs() as i64,
        nanoseconds: i64::from(duration.subsec_nanos()),
    };
    let _ = call(
        number::CLOCK_NANOSLEEP,
        [
            CLOCK_MONOTONIC,
            0,
            &time as *const Timespec as usize,
            0,
            0,
            0,
        ],
    );
}

pub fn sync() {
    let _ = call(number::SYNC, [0; 6]);
}

/// Restarts the machine now (the caller has synced).
pub fn reboot() {
    const MAGIC1: usize = 0xfee1_dead;
    const MAGIC2: usize = 672_274_793;
    const RESTART: usize = 0x0123_4567;
    let _ = call(number::REBOOT, [MAGIC1, MAGIC2, RESTART, 0, 0, 0]);
}

/// The allocator: every allocation is whole pages from mmap, returned by
/// munmap. Stage 1 makes a few thousand short-lived allocations; this is
/// the simplest allocator that is correct for them (neighbouring anonymous
/// mappings merge, so the kernel's map count does not grow).
struct Pages;

const PAGE: usize = 4096;

unsafe impl core::alloc::GlobalAlloc for Pages {
    unsafe fn alloc(&self, layout: core::alloc::Layout) -> *mut u8 {
        const PROT_READ_WRITE: usize = 3;
        const MAP_PRIVATE_ANONYMOUS: usize = 0x02 | 0x20;
        if layout.align() > PAGE {
            return core::ptr::null_mut();
        }
        let length = layout.size().max(1).div_ceil(PAGE) * PAGE;
        match call(
            number::MMAP,
            [
                0,
                length,
                PROT_READ_WRITE,
                MAP_PRIVATE_ANONYMOUS,
                usize::MAX,
                0,
            ],
        ) {
            Ok(address) => address as *mut u8,
            Err(_) => core::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: core::alloc::Layout) {
        let length = layout.size().max(1).div_ceil(PAGE) * PAGE;
        let _ = call(number::MUNMAP, [pointer as usize, length, 0, 0, 0, 0]);
    }
}

#[global_allocator]
static ALLOCATOR: Pages = Pages;
