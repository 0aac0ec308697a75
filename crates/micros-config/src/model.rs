//! The evaluated configuration as typed Rust values.
//!
//! Every struct denies unknown fields and no field has a serde default, so
//! the Nickel declarations and these types cannot drift apart unnoticed: a
//! test deserialises the default configuration and serialises it back,
//! comparing every path (`tests/options_consumed.rs`).
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::names::{EnvName, NameError, ServiceName, SysctlKey, UserName};

/// A set of names, as the Nickel side writes it: `{ htop = true }`.
pub type Set = BTreeMap<String, bool>;

/// The names in a set that are switched on, sorted.
pub fn enabled(set: &Set) -> Vec<&str> {
    set.iter()
        .filter(|(_, on)| **on)
        .map(|(name, _)| name.as_str())
        .collect()
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    pub platform: Platforms,
    pub packages: Packages,
    pub environment: Environment,
    pub boot: Boot,
    pub runit: Runit,
    /// The service modules' own options (`services.lighttpd.port`, …).
    /// Nickel's contracts check them and each module renders what it does
    /// into `runit.services`, `environment` and `packages`, which is all
    /// the build reads; so they are carried here as they were evaluated.
    pub services: serde_json::Value,
    pub users: Users,
    pub networking: Networking,
    pub file_systems: BTreeMap<String, FileSystem>,
    pub hardware: Hardware,
    pub virtualisation: Virtualisation,
    pub image: Image,
    /// Consumed by the evaluator, which stops on a failed assertion.
    pub assertions: Vec<Assertion>,
    /// Consumed by the evaluator, which prints them.
    pub warnings: Vec<String>,
    /// The seed's option names; the modules forward them to `platform` and
    /// `hardware.raspberryPi`, so Rust reads only the forwarded values.
    pub nixpkgs: SeedPlatforms,
    #[serde(rename = "not-os")]
    pub not_os: SeedRaspberryPi,
    /// `system.base` and the seed's `system.build`.
    pub system: System,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum Platform {
    #[serde(rename = "x86_64-linux")]
    X86_64,
    #[serde(rename = "aarch64-linux")]
    Aarch64,
    #[serde(rename = "armv7l-linux")]
    Armv7l,
    #[serde(rename = "armv6l-linux")]
    Armv6l,
    #[serde(rename = "riscv64-linux")]
    Riscv64,
}

impl Platform {
    /// Debian's name for the architecture.
    pub fn debian_arch(self) -> &'static str {
        match self {
            Platform::X86_64 => "amd64",
            Platform::Aarch64 => "arm64",
            Platform::Armv7l => "armhf",
            Platform::Armv6l => "armel",
            Platform::Riscv64 => "riscv64",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Platform::X86_64 => "x86_64-linux",
            Platform::Aarch64 => "aarch64-linux",
            Platform::Armv7l => "armv7l-linux",
            Platform::Armv6l => "armv6l-linux",
            Platform::Riscv64 => "riscv64-linux",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Platforms {
    pub host: Platform,
    pub build: Platform,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Packages {
    pub source: PackageSource,
    /// Package name → why it may be dropped; `None` keeps it.
    pub exclude: BTreeMap<String, Option<String>>,
    /// Package name → why what its maintainer scripts do is done already
    /// (the build says nothing about their lines; `micros why` still
    /// lists them).
    pub scripts_handled: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PackageSource {
    pub suite: String,
    pub components: Vec<String>,
    pub mirror: Option<String>,
    /// A snapshot archive's base URL, for locked packages the mirror dropped.
    pub snapshot: Option<String>,
    pub keyring: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Environment {
    pub packages: Set,
    pub etc: BTreeMap<String, EtcFile>,
    pub files: BTreeMap<String, File>,
    pub exclude_paths: Set,
    pub variables: BTreeMap<EnvName, String>,
    /// Alternative name → the path it points to.
    pub alternatives: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EtcFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub mode: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub mode: String,
    pub user: String,
    pub group: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Boot {
    pub kernel: Kernel,
    pub kernel_params: Vec<String>,
    pub console: Vec<String>,
    pub initrd: Initrd,
    pub kernel_modules: Set,
    /// Modules (or directories of the kernel's module tree, keys holding
    /// `/`) put in the root and loaded when a device needs them.
    pub available_kernel_modules: Set,
    pub blacklisted_kernel_modules: Set,
    pub root: String,
    pub root_wait: u32,
    pub overlay: Overlay,
    pub data_device: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    pub package: String,
    pub sysctl: BTreeMap<SysctlKey, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Initrd {
    pub kernel_modules: Set,
    pub available_kernel_modules: Set,
    pub compression: Compression,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Zstd,
    Xz,
    Gzip,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Overlay {
    Tmpfs,
    Data,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Runit {
    pub services: BTreeMap<ServiceName, Service>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Service {
    pub enable: bool,
    /// A systemd unit of a package to run (`mosquitto.service`); the
    /// fields set here override the unit's.
    pub from_unit: Option<String>,
    /// The command; the unit's `ExecStart` when null.
    pub command: Option<String>,
    /// Root when null (or the unit's `User`).
    pub user: Option<UserName>,
    pub group: Option<UserName>,
    pub environment: BTreeMap<EnvName, String>,
    /// `/` when null (or the unit's `WorkingDirectory`).
    pub working_directory: Option<String>,
    pub after: Vec<ServiceName>,
    pub ready: Option<String>,
    /// False when null (or the unit's `Type=oneshot`).
    pub oneshot: Option<bool>,
    pub log: Log,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Log {
    pub target: LogTarget,
    pub max_size: u64,
    pub max_files: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogTarget {
    Console,
    File,
    None,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Users {
    pub users: BTreeMap<UserName, User>,
    pub groups: BTreeMap<UserName, Group>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct User {
    pub uid: u32,
    pub group: UserName,
    pub extra_groups: Vec<UserName>,
    pub home: String,
    pub shell: String,
    pub hashed_password: Option<String>,
    pub authorized_keys: Vec<String>,
    /// A daemon's account: no home directory is made for it and its shell
    /// need not be in the image (`/usr/sbin/nologin`).
    pub is_system_user: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub gid: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Networking {
    pub host_name: String,
    pub interfaces: BTreeMap<String, Interface>,
    pub nameservers: Vec<String>,
    pub time_servers: Vec<String>,
    pub firewall: Firewall,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Firewall {
    pub enable: bool,
    #[serde(rename = "allowedTCPPorts")]
    pub allowed_tcp_ports: Vec<u16>,
    #[serde(rename = "allowedUDPPorts")]
    pub allowed_udp_ports: Vec<u16>,
    pub allow_ping: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    pub dhcp: bool,
    pub ipv4: Ipv4,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ipv4 {
    pub address: Option<String>,
    pub gateway: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileSystem {
    pub device: String,
    pub fs_type: String,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Hardware {
    pub raspberry_pi: RaspberryPi,
    /// Whether devices' modules are loaded for them (coldplug and hotplug).
    pub autoload: bool,
    /// Debian firmware packages, by name: which of their files go into
    /// `/usr/lib/firmware`.
    pub firmware: BTreeMap<String, FirmwareFiles>,
}

/// Which files of a firmware package the image takes: of those the image's
/// kernel modules can ask for (their `firmware=` entries), all, none, or
/// those matching the patterns (`brcm/brcmfmac43430-sdio.*`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum FirmwareFiles {
    All(bool),
    Matching(Vec<String>),
}

impl FirmwareFiles {
    pub fn is_enabled(&self) -> bool {
        !matches!(self, FirmwareFiles::All(false))
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RaspberryPi {
    pub rpi1: bool,
    pub rpi2: bool,
    pub rpi3: bool,
    pub rpi4: bool,
    pub firmware: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Virtualisation {
    pub qemu: Qemu,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Qemu {
    pub memory: u32,
    pub cores: u32,
    pub forward_ports: Vec<ForwardPort>,
    pub extra_args: Vec<String>,
    pub data_disk_size: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardPort {
    pub host: u16,
    pub guest: u16,
    pub protocol: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Image {
    pub rootfs: Rootfs,
    pub disk: Disk,
    /// Artifact name → size budget (`8M`).
    pub max_size: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rootfs {
    pub compression: Compression,
    pub block_size: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Disk {
    pub size: Option<String>,
    pub data_partition: bool,
    /// `types.Size` of the SD card's data partition.
    pub data_partition_size: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Assertion {
    pub assertion: bool,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeedPlatforms {
    pub host_platform: Option<serde_json::Value>,
    pub build_platform: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedRaspberryPi {
    pub rpi1: Option<bool>,
    pub rpi2: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct System {
    pub base: Base,
    pub build: SeedBuild,
    pub update: Update,
}

/// What an update bundle says of the system (`micros build -A update`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Update {
    pub enable: bool,
    pub version: String,
    pub trusted_keys: Vec<String>,
    pub compatible: Vec<String>,
    pub tries: u8,
    /// Seconds the hardware watchdog waits to be fed; 0 for none.
    pub watchdog: u16,
    /// `types.Size` of each system slot.
    pub slot_size: String,
    /// The update repository (`http://…`) the device checks, if any.
    pub url: Option<String>,
    /// Seconds between checks of `url`.
    pub interval: u32,
    /// `HH:MM-HH:MM` (UTC) when a self-updated device may reboot.
    pub window: Option<String>,
    pub health_check: HealthCheck,
}

/// What a new slot must pass to be confirmed (`system.update.healthCheck`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    pub services: Vec<String>,
    pub command: Option<String>,
    pub timeout: u16,
}

/// The base system (busybox and runit); the modules add its packages to
/// `environment.packages`, so Rust reads those.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Base {
    pub enable: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedBuild {
    #[serde(rename = "rpi-firmware")]
    pub rpi_firmware: Option<String>,
}

/// A `types.Size` option's value in bytes: `256M` → 268435456 (the
/// contract allows digits and one of K, M, G).
pub fn size_bytes(text: &str) -> u64 {
    let (digits, unit) = match text.char_indices().last() {
        Some((at, 'K')) => (&text[..at], 1 << 10),
        Some((at, 'M')) => (&text[..at], 1 << 20),
        Some((at, 'G')) => (&text[..at], 1 << 30),
        _ => (text, 1),
    };
    digits.parse::<u64>().unwrap_or(0).saturating_mul(unit)
}

#[cfg(test)]
mod tests {
    use super::size_bytes;

    #[test]
    fn sizes() {
        assert_eq!(size_bytes("256M"), 256 << 20);
        assert_eq!(size_bytes("4K"), 4096);
        assert_eq!(size_bytes("2G"), 2 << 30);
        assert_eq!(size_bytes("1000"), 1000);
        // Past u64: as large as it gets, for the size checks to refuse.
        assert_eq!(size_bytes("99999999999999999G"), u64::MAX);
    }
}
