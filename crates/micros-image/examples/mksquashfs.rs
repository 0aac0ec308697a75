//! `mksquashfs SOURCE DEST [xz|zstd[:LEVEL]|gzip[:LEVEL]] [BLOCK_SIZE]`: the
//! benchmark's side of `bench/squashfs.sh`, writing a host directory with
//! this crate's squashfs writer.
use std::path::PathBuf;
use std::process::ExitCode;

use micros_image::host::tree_from_directory;
use micros_image::{write_squashfs, SquashfsCompressor, SquashfsOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [source, dest, rest @ ..] = args.as_slice() else {
        eprintln!("usage: mksquashfs SOURCE DEST [xz|zstd[:LEVEL]|gzip[:LEVEL]] [BLOCK_SIZE]");
        return ExitCode::from(2);
    };
    let compressor = match rest
        .first()
        .map(String::as_str)
        .unwrap_or("xz")
        .split_once(':')
    {
        None if rest.first().is_none_or(|c| c == "xz") => SquashfsCompressor::Xz,
        None if rest[0] == "zstd" => SquashfsCompressor::Zstd { level: 15 },
        None if rest[0] == "gzip" => SquashfsCompressor::Gzip { level: 9 },
        Some(("zstd", level)) => SquashfsCompressor::Zstd {
            level: level.parse().unwrap_or(15),
        },
        Some(("gzip", level)) => SquashfsCompressor::Gzip {
            level: level.parse().unwrap_or(9),
        },
        _ => {
            eprintln!("unknown compressor {:?}", rest[0]);
            return ExitCode::from(2);
        }
    };
    let block_size = rest
        .get(1)
        .and_then(|b| b.parse().ok())
        .unwrap_or(128 * 1024);
    let options = SquashfsOptions {
        compressor,
        block_size,
        threads: 0,
    };
    let result = tree_from_directory(&PathBuf::from(source), "host")
        .and_then(|tree| write_squashfs(&tree, &PathBuf::from(dest), &options));
    match result {
        Ok(summary) => {
            println!(
                "{} bytes, {} inodes, {} fragments",
                summary.bytes, summary.inodes, summary.fragments
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
