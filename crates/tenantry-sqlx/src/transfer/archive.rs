//! The archive file: a gzip-compressed tar written and read on a blocking thread (the `tar`
//! and `flate2` crates are synchronous), fed by or feeding the async side through a bounded
//! channel, so neither the runtime's threads block on the file nor does a large tenant sit in
//! memory.

use std::io::{self, Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::manifest::{END_ENTRY, MANIFEST_ENTRY, invalid, parse_data_entry};
use crate::error::{Error, Result};

/// Entries in flight between the database and the file.
const CHANNEL_DEPTH: usize = 4;

/// Bytes of a data entry handed over at a time when reading.
const READ_CHUNK: usize = 1 << 20;

/// The largest manifest or end entry read (they are small JSON documents).
const MAX_JSON_ENTRY: u64 = 64 << 20;

/// What the async side sends the writing thread.
enum Msg {
    File(String, Vec<u8>),
    Finish,
}

/// Counts the bytes written through it.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes entries into a tar.gz on a blocking thread.
pub(crate) struct ArchiveWriter<W> {
    tx: mpsc::Sender<Msg>,
    thread: JoinHandle<io::Result<(W, u64)>>,
}

impl<W: Write + Send + 'static> ArchiveWriter<W> {
    /// Starts the writing thread over `out`.
    pub(crate) fn start(out: W) -> Self {
        let (tx, mut rx) = mpsc::channel::<Msg>(CHANNEL_DEPTH);
        let thread = tokio::task::spawn_blocking(move || {
            let counting = Counting {
                inner: out,
                written: 0,
            };
            let mut tar = tar::Builder::new(GzEncoder::new(counting, Compression::new(6)));
            let mtime = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            while let Some(msg) = rx.blocking_recv() {
                match msg {
                    Msg::File(name, bytes) => {
                        let mut header = tar::Header::new_gnu();
                        header.set_entry_type(tar::EntryType::Regular);
                        header.set_size(bytes.len() as u64);
                        header.set_mode(0o644);
                        header.set_mtime(mtime);
                        tar.append_data(&mut header, &name, bytes.as_slice())?;
                    }
                    Msg::Finish => {
                        let mut counting = tar.into_inner()?.finish()?;
                        counting.flush()?;
                        return Ok((counting.inner, counting.written));
                    }
                }
            }
            // The export failed: the archive is left unfinished (a reader refuses it).
            Err(io::Error::other("export abandoned"))
        });
        Self { tx, thread }
    }

    /// Adds one entry.
    pub(crate) async fn add(&mut self, name: String, bytes: Vec<u8>) -> Result<()> {
        if self.tx.send(Msg::File(name, bytes)).await.is_err() {
            // The thread stopped: its error says why.
            return Err(self.stopped().await);
        }
        Ok(())
    }

    /// Ends the archive; returns the writer and the archive's size.
    pub(crate) async fn finish(mut self) -> Result<(W, u64)> {
        if self.tx.send(Msg::Finish).await.is_err() {
            return Err(self.stopped().await);
        }
        match (&mut self.thread).await {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(e)) => Err(Error::ArchiveIo(e)),
            Err(e) => Err(Error::ArchiveIo(io::Error::other(e))),
        }
    }

    async fn stopped(&mut self) -> Error {
        match (&mut self.thread).await {
            Ok(Err(e)) => Error::ArchiveIo(e),
            Ok(Ok(_)) => Error::ArchiveIo(io::Error::other("archive writer ended early")),
            Err(e) => Error::ArchiveIo(io::Error::other(e)),
        }
    }
}

/// One piece of an archive, in file order.
#[derive(Debug)]
pub(crate) enum Part {
    /// `manifest.json`.
    Manifest(Vec<u8>),
    /// Up to [`READ_CHUNK`] bytes of a data entry of table number `table`.
    Data {
        /// The table's number (its place in the manifest).
        table: usize,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// `end.json`.
    End(Vec<u8>),
}

/// Reads an archive's entries on a blocking thread.
#[derive(Debug)]
pub(crate) struct ArchiveReader {
    rx: mpsc::Receiver<std::result::Result<Part, String>>,
    /// Compressed bytes read so far (shared with the thread).
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Counts the bytes read through it.
struct CountingRead<R> {
    inner: R,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for CountingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

impl ArchiveReader {
    /// Starts the reading thread over `input`.
    pub(crate) fn start<R: Read + Send + 'static>(input: R) -> Self {
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = std::sync::Arc::clone(&read);
        tokio::task::spawn_blocking(move || {
            let input = CountingRead {
                inner: io::BufReader::new(input),
                read: counter,
            };
            if let Err(e) = read_entries(input, &tx) {
                // Nobody listening any more is fine: the import stopped first.
                let _ = tx.blocking_send(Err(e));
            }
        });
        Self { rx, read }
    }

    /// The next piece, `None` after the last.
    pub(crate) async fn next(&mut self) -> Result<Option<Part>> {
        match self.rx.recv().await {
            Some(Ok(part)) => Ok(Some(part)),
            Some(Err(e)) => Err(invalid(e)),
            None => Ok(None),
        }
    }

    /// Compressed bytes read so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.read.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The thread's body: every entry, then the rest of the gzip stream (its checksum is verified
/// at its end).
fn read_entries(
    input: impl Read,
    tx: &mpsc::Sender<std::result::Result<Part, String>>,
) -> std::result::Result<(), String> {
    let mut archive = tar::Archive::new(GzDecoder::new(input));
    let stopped = || "import stopped".to_owned();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let name = entry
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        if name == MANIFEST_ENTRY || name == END_ENTRY {
            let mut bytes = Vec::new();
            (&mut entry)
                .take(MAX_JSON_ENTRY)
                .read_to_end(&mut bytes)
                .map_err(|e| format!("{name}: {e}"))?;
            let part = if name == MANIFEST_ENTRY {
                Part::Manifest(bytes)
            } else {
                Part::End(bytes)
            };
            tx.blocking_send(Ok(part)).map_err(|_| stopped())?;
        } else if let Some((table, _)) = parse_data_entry(&name) {
            loop {
                let mut bytes = Vec::with_capacity(READ_CHUNK);
                let n = (&mut entry)
                    .take(READ_CHUNK as u64)
                    .read_to_end(&mut bytes)
                    .map_err(|e| format!("{name}: {e}"))?;
                if n == 0 {
                    break;
                }
                tx.blocking_send(Ok(Part::Data { table, bytes }))
                    .map_err(|_| stopped())?;
            }
        } else {
            return Err(format!("unexpected entry {name:?}"));
        }
    }
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(|e| e.to_string())?;
    Ok(())
}
