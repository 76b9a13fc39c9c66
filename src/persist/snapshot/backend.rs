//! A read-only redb storage backend over a byte range of a file: the payload of a
//! snapshot is opened in place, so verifying a snapshot needs no extracted copy.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use parking_lot::Mutex;

/// `len` bytes of `file` starting at `offset`, read-only.
#[derive(Debug)]
pub(crate) struct SliceBackend {
    file: Mutex<File>,
    offset: u64,
    len: u64,
}

impl SliceBackend {
    /// The range `[offset, offset + len)` of `file`.
    pub(crate) fn new(file: File, offset: u64, len: u64) -> Self {
        SliceBackend {
            file: Mutex::new(file),
            offset,
            len,
        }
    }
}

fn read_only() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        "a snapshot is opened read-only",
    )
}

impl redb::StorageBackend for SliceBackend {
    fn len(&self) -> Result<u64, std::io::Error> {
        Ok(self.len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        let end = offset.checked_add(out.len() as u64);
        if end.is_none_or(|end| end > self.len) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "read past the end of the snapshot payload",
            ));
        }
        let mut file = self.file.lock();
        file.seek(SeekFrom::Start(self.offset + offset))?;
        file.read_exact(out)
    }

    fn set_len(&self, _: u64) -> Result<(), std::io::Error> {
        Err(read_only())
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        Ok(())
    }

    fn write(&self, _: u64, _: &[u8]) -> Result<(), std::io::Error> {
        Err(read_only())
    }
}
