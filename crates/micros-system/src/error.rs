//! What a build can fail with: one enum for the pipeline and every output,
//! each variant naming what to act on.
use std::path::{Path, PathBuf};

use micros_debian::deb::DebError;

use crate::kernel::KernelError;
use crate::rootfs::RootfsError;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("no .deb file was given for the locked package {package}: run `micros fetch` to fetch the lock's packages")]
    FileNotFetched { package: String },
    #[error(transparent)]
    Deb(#[from] DebError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Initrd(#[from] crate::initrd::InitrdError),
    #[error(transparent)]
    Image(#[from] micros_image::Error),
    #[error(transparent)]
    Tree(#[from] micros_image::TreeError),
    #[error("{artifact} is {} ({size} bytes), over its budget image.maxSize.\"{artifact}\" = \"{limit}\"\n{report}", crate::report::human(*size))]
    OverBudget {
        artifact: String,
        size: u64,
        limit: String,
        report: String,
    },
    #[error("sdImage: {0}\nhint: enable a model (hardware.raspberryPi.rpi2 = true, …); the firmware comes from Debian's raspi-firmware or hardware.raspberryPi.firmware")]
    Firmware(String),
    #[error("{option}: {message}")]
    Option {
        option: &'static str,
        message: String,
    },
    #[error("an update bundle is signed: give the signing key with --key FILE (or MICROS_UPDATE_KEY)\nhint: make one with `micros keygen update.key` and put the public half from update.key.pub in system.update.trustedKeys")]
    NoSigningKey,
    #[error("the lock has no package {0}: run `micros lock`")]
    NotLocked(String),
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_owned(),
        source,
    }
}
