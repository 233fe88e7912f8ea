//! `checksum PATH`: the object checksum ostree would give a file (a directory: its dirmeta).

use rostree_store::format::{
    DirMeta, FileHeader, S_IFDIR, S_IFLNK, S_IFMT, Xattrs, content_checksum,
};
use rostree_store::{ObjectId, xattr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Options of `checksum`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The file; only the first is checksummed, as with ostree.
    paths: Vec<PathBuf>,
    /// Don't include xattrs in checksum.
    #[arg(long)]
    ignore_xattrs: bool,
}

/// Runs `checksum`; needs no repository.
pub fn run(_repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let path = args
        .paths
        .first()
        .ok_or_else(|| anyhow::anyhow!("A filename must be given"))?;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
    let md = std::fs::symlink_metadata(path).map_err(|e| {
        anyhow::anyhow!(
            "Error when getting information for file “{}”: {}",
            abs.display(),
            rostree_store::io_message(&e)
        )
    })?;
    let xattrs = if args.ignore_xattrs {
        Xattrs::default()
    } else {
        xattr::read_path(path).map_err(std::io::Error::from)?
    };
    let id = match md.mode() & S_IFMT {
        S_IFDIR => ObjectId::digest(
            &DirMeta {
                uid: md.uid(),
                gid: md.gid(),
                mode: md.mode(),
                xattrs,
            }
            .to_bytes(),
        ),
        S_IFLNK => {
            let target = std::fs::read_link(path)?;
            let header = FileHeader {
                uid: md.uid(),
                gid: md.gid(),
                mode: S_IFLNK | 0o777,
                symlink_target: target.to_string_lossy().into_owned(),
                xattrs,
            };
            content_checksum(&header, &[])
        }
        _ => {
            let header = FileHeader {
                uid: md.uid(),
                gid: md.gid(),
                mode: md.mode(),
                symlink_target: String::new(),
                xattrs,
            };
            let data = std::fs::read(path)?;
            content_checksum(&header, &data)
        }
    };
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}
