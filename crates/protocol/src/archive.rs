//! The task archive: the flat `.tar.gz` a runner uploads for each task
//! ([`layout::RESULT_ARCHIVE`] or [`layout::ERROR_ARCHIVE`]), written by [`pack`] and read by
//! [`read_files`] (streaming) or [`unpack`] (into memory).
//!
//! Archives are flat (docs/decisions.md): only regular files at the top level count, named
//! `name` or `./name` (as `tar -C dir .` writes them). Readers leave out everything else
//! (directories, links, nested or absolute paths) and every repeat of a name, so what a task's
//! folder of the run archive holds never depends on how a runner packed its files.

use std::collections::HashSet;
use std::io::{self, Read};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use thiserror::Error;

#[cfg(doc)]
use crate::layout;

/// Why a task archive could not be read (whole).
#[derive(Debug, Error)]
pub enum ReadError {
    /// The bytes are not a gzipped tar, or they end early or fail their checksum.
    #[error("the archive is not a readable tar.gz: {0}")]
    NotTarGz(io::Error),
    /// A file's content could not be read to its end; what was passed on of it ends in zeros.
    #[error("{name} could not be read whole (the rest is zeros): {source}")]
    FileCut {
        /// The file's name in the archive.
        name: String,
        /// What went wrong.
        source: io::Error,
    },
    /// The caller's function failed on a file (e.g. writing it elsewhere).
    #[error(transparent)]
    Consumer(io::Error),
}

/// One file of a task archive, as [`read_files`] passes it on.
pub struct ArchiveFile<'a> {
    /// Its flat name, without a leading `./`.
    pub name: &'a str,
    /// Its size in bytes: reading [`ArchiveFile::content`] yields exactly this many.
    pub size: u64,
    /// Its modification time, in Unix seconds (0 when the header has none).
    pub mtime: u64,
    /// Its content.
    pub content: &'a mut dyn Read,
}

/// The flat name of an archive entry's path (`name` or `./name`), or `None` for the archive's
/// own directory and anything nested or odd.
pub fn flat_name(path: &[u8]) -> Option<&str> {
    let path = path.strip_prefix(b"./").unwrap_or(path);
    let name = std::str::from_utf8(path).ok()?;
    let plain =
        !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
    plain.then_some(name)
}

/// A task archive of `(name, content)` files with modification time `mtime` (Unix seconds).
///
/// # Panics
///
/// If a name is not flat (see [`flat_name`]): readers would leave that file out.
pub fn pack(files: &[(&str, &[u8])], mtime: u64) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for (name, content) in files {
        assert!(
            flat_name(name.as_bytes()).is_some(),
            "{name:?} is not a flat name: readers of task archives leave it out"
        );
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        builder
            .append_data(&mut header, name, *content)
            .expect("writing to memory cannot fail");
    }
    builder
        .into_inner()
        .and_then(GzEncoder::finish)
        .expect("writing to memory cannot fail")
}

/// Reads a task archive from `source`, passing each file the flatness rule keeps to `each`, in
/// archive order. Files passed on before an error stay passed on, whole: after a
/// [`ReadError::FileCut`] the last of them ends in zeros. The archive is read to its end, so
/// that the gzip checksum is checked too.
pub fn read_files<R: Read>(
    source: R,
    mut each: impl FnMut(ArchiveFile<'_>) -> io::Result<()>,
) -> Result<(), ReadError> {
    let mut archive = tar::Archive::new(GzDecoder::new(source));
    let mut seen = HashSet::new();
    for entry in archive.entries().map_err(ReadError::NotTarGz)? {
        let mut entry = entry.map_err(ReadError::NotTarGz)?;
        let path = entry.path_bytes().into_owned();
        let Some(name) = flat_name(&path) else {
            continue;
        };
        if !entry.header().entry_type().is_file() || !seen.insert(name.to_owned()) {
            continue;
        }
        let size = entry.size();
        let mtime = entry.header().mtime().unwrap_or(0);
        let mut content = ExactReader::new(&mut entry, size);
        each(ArchiveFile {
            name,
            size,
            mtime,
            content: &mut content,
        })
        .map_err(ReadError::Consumer)?;
        if let Some(source) = content.error {
            let name = name.to_owned();
            return Err(ReadError::FileCut { name, source });
        }
    }
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(ReadError::NotTarGz)?;
    Ok(())
}

/// Reads a whole task archive into memory: the files the flatness rule keeps, in archive order.
pub fn unpack(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, ReadError> {
    let mut files = Vec::new();
    read_files(bytes, |file| {
        let mut content = Vec::new();
        file.content.read_to_end(&mut content)?;
        files.push((file.name.to_owned(), content));
        Ok(())
    })?;
    Ok(files)
}

/// Yields exactly `size` bytes: the inner reader's, then zeros if it fails or ends early. A tar
/// builder copying a file writes as many bytes as it reads after a header that promised
/// `size`, so a short read would break every entry after it; a padded file keeps the copy
/// readable and the error is recorded.
struct ExactReader<R> {
    inner: R,
    remaining: u64,
    error: Option<io::Error>,
}

impl<R: Read> ExactReader<R> {
    fn new(inner: R, size: u64) -> Self {
        Self {
            inner,
            remaining: size,
            error: None,
        }
    }
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let want = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(out.len());
        if want == 0 {
            return Ok(0);
        }
        if self.error.is_none() {
            match self.inner.read(&mut out[..want]) {
                Ok(0) => {
                    self.error = Some(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the archive ended inside the file",
                    ));
                }
                Ok(n) => {
                    self.remaining -= n as u64;
                    return Ok(n);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => return self.read(out),
                Err(err) => self.error = Some(err),
            }
        }
        out[..want].fill(0);
        self.remaining -= want as u64;
        Ok(want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.tar.gz` with entries a runner's writer never makes, as other tools may.
    fn odd_archive() -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        let mut append = |name: &str, kind: tar::EntryType, content: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, name, content).unwrap();
        };
        append("./", tar::EntryType::Directory, b"");
        append("./output.txt", tar::EntryType::Regular, b"first");
        append("nested/meta.json", tar::EntryType::Regular, b"{}");
        append("dir", tar::EntryType::Directory, b"");
        append("output.txt", tar::EntryType::Regular, b"repeated");
        append("error.json", tar::EntryType::Regular, b"{}");
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn packed_files_read_back_in_order() {
        let archive = pack(
            &[("output.txt", b"hello"), ("meta.json", b"{}")],
            1_733_945_123,
        );
        let files = unpack(&archive).unwrap();
        assert_eq!(
            files,
            [
                ("output.txt".to_owned(), b"hello".to_vec()),
                ("meta.json".to_owned(), b"{}".to_vec())
            ]
        );
        read_files(archive.as_slice(), |file| {
            assert_eq!(file.mtime, 1_733_945_123);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn readers_keep_only_the_first_of_each_top_level_file() {
        let files = unpack(&odd_archive()).unwrap();
        let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["output.txt", "error.json"]);
        assert_eq!(files[0].1, b"first");
    }

    #[test]
    #[should_panic(expected = "not a flat name")]
    fn the_writer_refuses_nested_names() {
        pack(&[("a/b", b"")], 0);
    }

    #[test]
    fn only_top_level_names_are_flat() {
        assert_eq!(flat_name(b"output.txt"), Some("output.txt"));
        assert_eq!(flat_name(b"./meta.json"), Some("meta.json"));
        for odd in [
            &b"."[..],
            b"./",
            b"",
            b"..",
            b"a/b",
            b"../x",
            b"/etc/passwd",
            b"a\\b",
        ] {
            assert_eq!(flat_name(odd), None, "{odd:?}");
        }
    }

    #[test]
    fn what_is_not_a_whole_tar_gz_is_an_error() {
        let err = unpack(b"this is not gzip").unwrap_err();
        assert!(matches!(err, ReadError::NotTarGz(_)), "{err}");
        let archive = pack(&[("output.txt", &[7; 4096])], 0);
        let cut = &archive[..archive.len() / 2];
        assert!(unpack(cut).is_err());
    }

    #[test]
    fn exact_reader_pads_a_short_source_with_zeros() {
        let mut reader = ExactReader::new(&b"abc"[..], 6);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc\0\0\0");
        assert!(reader.error.is_some());

        let mut reader = ExactReader::new(&b"abcdef"[..], 4);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abcd");
        assert!(reader.error.is_none());
    }
}
