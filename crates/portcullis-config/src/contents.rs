//! The bytes of the files one load of a config names — `${file:}` references, certificates,
//! keys, CA bundles — each read once. Every reader of one load (the references, the config
//! hash, the TLS material) goes through the same [`Contents`], so what is checked, hashed and
//! served is one reading of each file, even when the file changes on disk meanwhile.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Why a file could not be read: the I/O error's kind and text, never the file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub kind: io::ErrorKind,
    pub message: String,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

type Read = Result<Arc<[u8]>, ReadError>;

/// The most a file the config names may hold. Certificates, keys, secrets, WSDLs and API
/// documents are far smaller; the bound keeps a wrong path (a device, a log) from filling
/// memory.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The files read by one load, by absolute path. Cloning shares them (a clone of a
/// [`crate::Loaded`] is the same load).
#[derive(Debug, Clone, Default)]
pub struct Contents(Arc<Mutex<BTreeMap<PathBuf, Read>>>);

impl Contents {
    /// The bytes of `path`: read from disk the first time (a regular file of at most
    /// [`MAX_FILE_BYTES`]), from this load's copy after.
    ///
    /// # Errors
    /// The file cannot be read (the same error each time for one load).
    pub fn read(&self, path: &Path) -> Result<Arc<[u8]>, ReadError> {
        // A reader that panicked left no half-written entry: the map is always whole.
        let mut files = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        files.entry(path.to_path_buf()).or_insert_with(|| read_bounded(path)).clone()
    }

    /// The text of `path` (UTF-8), as [`Self::read`].
    ///
    /// # Errors
    /// The file cannot be read or is not UTF-8.
    pub fn read_text(&self, path: &Path) -> Result<String, ReadError> {
        let bytes = self.read(path)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| ReadError {
            kind: io::ErrorKind::InvalidData,
            message: "stream did not contain valid UTF-8".to_owned(),
        })
    }

    /// How many files have been read (once each).
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A regular file of at most [`MAX_FILE_BYTES`], read no further than one byte past that, so a
/// path to a pipe, a device or a huge file neither hangs nor fills memory.
fn read_bounded(path: &Path) -> Read {
    use std::io::Read as _;
    let failed = |e: io::Error| ReadError { kind: e.kind(), message: e.to_string() };
    let file = std::fs::File::open(path).map_err(failed)?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err(ReadError { kind: io::ErrorKind::InvalidInput, message: "not a regular file".to_owned() });
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(failed)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        let message = format!("larger than the {MAX_FILE_BYTES} bytes a file the config names may hold");
        return Err(ReadError { kind: io::ErrorKind::FileTooLarge, message });
    }
    Ok(Arc::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::Contents;

    #[test]
    fn a_file_is_read_once_per_load_and_a_missing_one_says_so() {
        let dir = std::env::temp_dir().join(format!("portcullis-contents-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let file = dir.join("cert.pem");
        std::fs::write(&file, "first").expect("write");
        let contents = Contents::default();
        assert_eq!(&*contents.read(&file).expect("readable"), b"first");
        std::fs::write(&file, "second").expect("rewrite");
        let shared = contents.clone();
        assert_eq!(&*shared.read(&file).expect("readable"), b"first", "one load sees one reading");
        assert_eq!(&*Contents::default().read(&file).expect("readable"), b"second", "a new load reads anew");
        let missing = contents.read(&dir.join("missing.pem")).expect_err("missing");
        assert_eq!(missing.kind, std::io::ErrorKind::NotFound);
        std::fs::write(&file, [0xff, 0xfe]).expect("rewrite");
        assert!(Contents::default().read_text(&file).is_err(), "not UTF-8");
        assert_eq!(contents.len(), 2);
        let folder = contents.read(&dir).expect_err("a folder");
        assert_eq!(folder.message, "not a regular file");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
