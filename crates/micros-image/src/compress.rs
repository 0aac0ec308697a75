//! Whole-stream compression for the archive writers (cpio initrds, tar
//! layers). Each encoder is single-threaded and has no clock or random
//! input, so the compressed bytes are as reproducible as the archive.
use std::io::{self, Write};

/// How an archive stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    /// gzip, level 0–9.
    Gzip {
        level: u32,
    },
    /// xz with a CRC32 check: the Linux initramfs decoder supports no other.
    Xz {
        level: u32,
    },
    /// zstd, level 1–22.
    Zstd {
        level: i32,
    },
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip { .. } => "gzip",
            Compression::Xz { .. } => "xz",
            Compression::Zstd { .. } => "zstd",
        }
    }

    /// Checks the level before anything is written.
    pub(crate) fn validate(self) -> Result<(), String> {
        match self {
            Compression::None => Ok(()),
            Compression::Gzip { level } if level <= 9 => Ok(()),
            Compression::Xz { level } if level <= 9 => Ok(()),
            Compression::Zstd { level } if (1..=22).contains(&level) => Ok(()),
            other => Err(format!("{other:?} is out of range")),
        }
    }

    pub(crate) fn encoder<W: Write>(self, inner: W) -> io::Result<Encoder<W>> {
        Ok(match self {
            Compression::None => Encoder::None(inner),
            Compression::Gzip { level } => Encoder::Gzip(
                // No name and mtime 0 in the header: nothing from the host.
                flate2::GzBuilder::new()
                    .mtime(0)
                    .write(inner, flate2::Compression::new(level)),
            ),
            Compression::Xz { level } => {
                let stream =
                    liblzma::stream::Stream::new_easy_encoder(level, liblzma::stream::Check::Crc32)
                        .map_err(io::Error::other)?;
                Encoder::Xz(liblzma::write::XzEncoder::new_stream(inner, stream))
            }
            Compression::Zstd { level } => {
                Encoder::Zstd(zstd::stream::write::Encoder::new(inner, level)?)
            }
        })
    }
}

pub(crate) enum Encoder<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Xz(liblzma::write::XzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    /// Writes the stream's trailer and hands back the inner writer.
    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(inner) => Ok(inner),
            Encoder::Gzip(encoder) => encoder.finish(),
            Encoder::Xz(encoder) => encoder.finish(),
            Encoder::Zstd(encoder) => encoder.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(inner) => inner.write(buf),
            Encoder::Gzip(encoder) => encoder.write(buf),
            Encoder::Xz(encoder) => encoder.write(buf),
            Encoder::Zstd(encoder) => encoder.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(inner) => inner.flush(),
            Encoder::Gzip(encoder) => encoder.flush(),
            Encoder::Xz(encoder) => encoder.flush(),
            Encoder::Zstd(encoder) => encoder.flush(),
        }
    }
}

/// A writer that counts the bytes passing through, so archive writers can
/// pad to their alignment without seeking.
pub(crate) struct Counting<W> {
    pub(crate) inner: W,
    pub(crate) count: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.count += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
