//! One compressor per worker thread, configured as `mksquashfs` configures
//! it by default, so the same blocks compress to the same sizes and the
//! kernel (and `unsquashfs`) need no options beyond the superblock's id.
use std::io;

/// The compressors this writer offers, with the superblock id of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SquashfsCompressor {
    /// zlib streams, level 1–9 (mksquashfs' default is 9).
    Gzip { level: u32 },
    /// LZMA2 at preset 6 with a dictionary of one block and a CRC32 check,
    /// exactly mksquashfs' defaults (no BCJ filter).
    Xz,
    /// zstd, level 1–22 (mksquashfs' default is 15).
    Zstd { level: i32 },
}

pub(crate) const GZIP_DEFAULT_LEVEL: u32 = 9;
pub(crate) const ZSTD_DEFAULT_LEVEL: i32 = 15;

impl SquashfsCompressor {
    pub(crate) fn id(self) -> u16 {
        match self {
            SquashfsCompressor::Gzip { .. } => 1,
            SquashfsCompressor::Xz => 4,
            SquashfsCompressor::Zstd { .. } => 6,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SquashfsCompressor::Gzip { .. } => "gzip",
            SquashfsCompressor::Xz => "xz",
            SquashfsCompressor::Zstd { .. } => "zstd",
        }
    }

    pub(crate) fn validate(self) -> Result<(), String> {
        match self {
            SquashfsCompressor::Gzip { level } if !(1..=9).contains(&level) => {
                Err(format!("gzip level {level} is not in 1–9"))
            }
            SquashfsCompressor::Zstd { level } if !(1..=22).contains(&level) => {
                Err(format!("zstd level {level} is not in 1–22"))
            }
            _ => Ok(()),
        }
    }

    /// The compressor options block that follows the superblock, needed
    /// only when a setting differs from the format's default.
    pub(crate) fn options(self) -> Option<Vec<u8>> {
        match self {
            SquashfsCompressor::Gzip { level } if level != GZIP_DEFAULT_LEVEL => {
                let mut bytes = level.to_le_bytes().to_vec();
                bytes.extend_from_slice(&15u16.to_le_bytes()); // window bits
                bytes.extend_from_slice(&0u16.to_le_bytes()); // strategies
                Some(bytes)
            }
            SquashfsCompressor::Zstd { level } if level != ZSTD_DEFAULT_LEVEL => {
                Some((level as u32).to_le_bytes().to_vec())
            }
            _ => None,
        }
    }
}

pub(crate) enum BlockCompressor {
    Gzip(flate2::Compress),
    Xz(liblzma::stream::Filters),
    Zstd(Box<zstd::bulk::Compressor<'static>>),
}

impl BlockCompressor {
    pub(crate) fn new(kind: SquashfsCompressor, block_size: u32) -> io::Result<Self> {
        Ok(match kind {
            SquashfsCompressor::Gzip { level } => {
                BlockCompressor::Gzip(flate2::Compress::new(flate2::Compression::new(level), true))
            }
            SquashfsCompressor::Xz => {
                let mut options =
                    liblzma::stream::LzmaOptions::new_preset(6).map_err(io::Error::other)?;
                // The kernel sizes its dictionary from the block size when
                // the image carries no compressor options.
                options.dict_size(block_size.max(8192));
                let mut filters = liblzma::stream::Filters::new();
                filters.lzma2(&options);
                BlockCompressor::Xz(filters)
            }
            SquashfsCompressor::Zstd { level } => {
                BlockCompressor::Zstd(Box::new(zstd::bulk::Compressor::new(level)?))
            }
        })
    }

    /// Compresses one block or metadata block as a whole stream.
    pub(crate) fn compress(&mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        match self {
            BlockCompressor::Gzip(compress) => {
                compress.reset();
                let mut out = Vec::with_capacity(data.len() + data.len() / 1000 + 64);
                loop {
                    let consumed = compress.total_in() as usize;
                    let status = compress
                        .compress_vec(&data[consumed..], &mut out, flate2::FlushCompress::Finish)
                        .map_err(io::Error::other)?;
                    if status == flate2::Status::StreamEnd {
                        return Ok(out);
                    }
                    out.reserve(out.capacity().max(1024));
                }
            }
            BlockCompressor::Xz(filters) => {
                let mut stream = liblzma::stream::Stream::new_stream_encoder(
                    filters,
                    liblzma::stream::Check::Crc32,
                )
                .map_err(io::Error::other)?;
                let mut out = Vec::with_capacity(data.len() + data.len() / 64 + 128);
                loop {
                    let consumed = stream.total_in() as usize;
                    let status = stream
                        .process_vec(&data[consumed..], &mut out, liblzma::stream::Action::Finish)
                        .map_err(io::Error::other)?;
                    if status == liblzma::stream::Status::StreamEnd {
                        return Ok(out);
                    }
                    out.reserve(out.capacity().max(1024));
                }
            }
            BlockCompressor::Zstd(compressor) => compressor.compress(data),
        }
    }
}
