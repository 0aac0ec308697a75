//! Every image reaches its destination the same way:
//!
//! ```text
//! out/
//! ├── root.squashfs          the previous good image, untouched until…
//! └── .root.squashfs.XXXXXX  …this temp file is complete and fsynced,
//!                            then renamed over it (atomic on POSIX)
//! ```
//!
//! An interrupted write (error, panic, kill, power loss) leaves either the
//! old image or the new one under the destination name, never a mix. The
//! temp file lives in the destination directory because a rename is only
//! atomic within one filesystem.
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::{Error, Result};

/// Creates a temp file next to `dest`, lets `write` fill it, fsyncs it,
/// renames it to `dest` and fsyncs the directory. If `write` fails, the temp
/// file is removed and `dest` is left as it was.
pub fn atomic_write<T>(dest: &Path, write: impl FnOnce(&mut File) -> Result<T>) -> Result<T> {
    let dir = match dest.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = dest
        .file_name()
        .ok_or_else(|| Error::Output {
            path: dest.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the destination has no file name",
            ),
        })?
        .to_string_lossy()
        .into_owned();
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        // An image is for reading by anyone (QEMU, a flasher), unlike
        // tempfile's private 0600 default.
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(Error::output(dir))?;
    let value = write(temp.as_file_mut())?;
    temp.as_file()
        .sync_all()
        .map_err(Error::output(temp.path()))?;
    temp.persist(dest)
        .map_err(|err| Error::output(dest)(err.error))?;
    // The rename itself is only durable once the directory is synced.
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(Error::output(dir))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_failed_write_keeps_the_previous_image_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("image.bin");
        atomic_write(&dest, |file| {
            file.write_all(b"good").map_err(Error::output("image.bin"))
        })
        .unwrap();
        let error = atomic_write(&dest, |file| {
            file.write_all(b"half of a new ima")
                .map_err(Error::output("image.bin"))?;
            Err::<(), _>(Error::ImageTooSmall {
                path: dest.clone(),
                message: "simulated failure halfway".into(),
            })
        })
        .unwrap_err();
        assert!(error.to_string().contains("simulated failure"));
        assert_eq!(std::fs::read(&dest).unwrap(), b"good");
        assert_eq!(entries(dir.path()), ["image.bin"]);
    }

    #[test]
    fn a_successful_write_replaces_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("image.bin");
        std::fs::write(&dest, b"old").unwrap();
        atomic_write(&dest, |file| {
            file.write_all(b"new").map_err(Error::output("image.bin"))
        })
        .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        assert_eq!(entries(dir.path()), ["image.bin"]);
    }
}
