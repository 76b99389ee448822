//! Downloads: `getFile`, then the file streamed to a writer under a size
//! cap, on an io thread.
//!
//! Telegram serves a file at `{api_url}/file/bot{token}/{file_path}`: the
//! URL holds the token, so it is built in `wire` and never leaves the api
//! module; errors and log lines name the `file_id`, never the URL or the
//! `file_path`. A local Bot API server started with `--local` answers
//! `getFile` with an absolute `file_path` on its own disk instead (and that
//! path holds the token too): such a file is read from the local
//! filesystem, which works when the bot shares the server's `--dir`. Never
//! for Telegram's own API (`api.telegram.org`), whose paths are relative:
//! an absolute one from there is refused, so that nothing but a server the
//! operator chose can make the bot read its disk.
//!
//! A download is not retried: the writer already holds part of the file.
//!
//! Must not: log or format the file URL or a `file_path`, or hold a file in
//! memory.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::de::IgnoredAny;

use super::generated::methods::GetFile;
use super::generated::types::File;
use super::wire::{self, Caller};
use super::Client;
use crate::{Error, NetworkKind};

/// What download errors and log lines call the operation.
const METHOD: &str = "download";
/// The deadline of a download: 20 MB (the Bot API's limit) over a slow link.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Most bytes of an error body we read.
const ERROR_BODY: u64 = 64 * 1024;
/// The copy buffer.
const CHUNK: usize = 16 * 1024;

impl Client {
    /// [`getFile`](https://core.telegram.org/bots/api#getfile): the
    /// [`File`] whose `file_path` [`download`](Client::download) reads.
    /// Telegram keeps that path valid for at least an hour.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub async fn get_file(&self, file_id: impl Into<String>) -> Result<File, Error> {
        self.send(&GetFile::new(file_id)).await
    }

    /// Streams `file` (from [`get_file`](Client::get_file)) into `writer`
    /// on an io thread and hands the writer back; at most `cap` bytes.
    ///
    /// A file whose `file_size` is over `cap` is refused before a byte is
    /// read, and a stream that goes past `cap` is cut there (the writer then
    /// holds `cap` bytes). An absolute `file_path` (a local Bot API server's,
    /// `--local`) is read from this machine's filesystem. Not retried: call
    /// again with a fresh writer.
    ///
    /// # Errors
    /// [`Error::TooLarge`] over the cap; [`Error::File`] when `file` has no
    /// `file_path`, or the writer or a local file fails; [`Error::Api`],
    /// [`Error::Http`] or [`Error::Network`] when the download does. None of
    /// them shows the URL or the `file_path`.
    ///
    /// # Examples
    /// ```
    /// use smolgram::api::{Client, Token};
    /// use smolgram::testkit::FakeApi;
    ///
    /// let api = FakeApi::start();
    /// let file_id = api.add_file("notes.txt", b"buy milk".to_vec());
    /// let client = Client::new(&api.url(), &Token::parse(FakeApi::TOKEN).unwrap(), 2);
    /// let rt = smolgram::Runtime::new();
    /// let bytes = rt.block_on(async {
    ///     let file = client.get_file(file_id).await?;
    ///     client.download(&file, Vec::new(), 1024 * 1024).await
    /// });
    /// assert_eq!(bytes.unwrap().unwrap(), b"buy milk");
    /// ```
    pub async fn download<W: Write + Send + 'static>(
        &self,
        file: &File,
        writer: W,
        cap: u64,
    ) -> Result<W, Error> {
        self.fetch(file, cap, move || Ok(writer))
            .await
            .map(|(writer, _)| writer)
    }

    /// [`download`](Client::download) into a new file at `path` (replaced
    /// if it exists; removed again if the download fails); returns its
    /// length.
    ///
    /// # Errors
    /// As [`download`](Client::download); [`Error::File`] when `path`
    /// cannot be created.
    pub async fn download_to(
        &self,
        file: &File,
        path: impl AsRef<Path>,
        cap: u64,
    ) -> Result<u64, Error> {
        let path = path.as_ref().to_owned();
        let created = path.clone();
        let result = self
            .fetch(file, cap, move || fs::File::create(&created))
            .await;
        match result {
            Ok((mut out, len)) => {
                let flushed = self
                    .inner
                    .io
                    .run(METHOD, move |_| out.flush().and_then(|()| out.sync_all()))
                    .await?;
                flushed.map_err(|e| write_error(&file.file_id, &e))?;
                Ok(len)
            }
            Err(e) => {
                // Whatever was written is a part of the file, not the file.
                let _ = self
                    .inner
                    .io
                    .run(METHOD, move |_| fs::remove_file(path))
                    .await;
                Err(e)
            }
        }
    }

    /// Downloads `file` into the writer `open` makes on the io thread; the
    /// writer and how many bytes went into it.
    async fn fetch<W: Write + Send + 'static>(
        &self,
        file: &File,
        cap: u64,
        open: impl FnOnce() -> io::Result<W> + Send + 'static,
    ) -> Result<(W, u64), Error> {
        let id = file.file_id.clone();
        let Some(file_path) = file.file_path.clone() else {
            return Err(Error::File {
                method: METHOD.to_owned(),
                file: id,
                detail: "no file_path; get one with get_file".to_owned(),
            });
        };
        if let Some(size) = file.file_size.and_then(|s| u64::try_from(s).ok()) {
            if size > cap {
                return Err(too_large(Some(size), cap));
            }
        }
        let local = !crate::limit::is_telegram(&self.inner.api_url);
        let started = Instant::now();
        let file_id = id.clone();
        let result = self
            .inner
            .io
            .run(METHOD, move |caller| {
                let writer = open().map_err(|e| write_error(&file_id, &e))?;
                fetch(caller, &file_path, &file_id, writer, cap, local)
            })
            .await?;
        log::debug!(
            "download file_id={id} result={} ms={}",
            match &result {
                Ok((_, len)) => format!("ok bytes={len}"),
                Err(e) => e
                    .status()
                    .map_or_else(|| "failed".to_owned(), |s| s.to_string()),
            },
            started.elapsed().as_millis()
        );
        result
    }
}

/// On the io thread: the file at `file_path`, over HTTP, or from this
/// machine's disk when `local` files may be read, into `writer`.
fn fetch<W: Write>(
    caller: &Caller,
    file_path: &str,
    id: &str,
    writer: W,
    cap: u64,
    local: bool,
) -> Result<(W, u64), Error> {
    if Path::new(file_path).is_absolute() {
        if !local {
            return Err(Error::File {
                method: METHOD.to_owned(),
                file: id.to_owned(),
                detail:
                    "api.telegram.org gave an absolute file_path; only a local Bot API server may"
                        .to_owned(),
            });
        }
        // A local Bot API server (`--local`) hands out paths on its own disk.
        let local = fs::File::open(file_path).map_err(|e| Error::File {
            method: METHOD.to_owned(),
            file: id.to_owned(),
            detail: format!(
                "cannot open the local Bot API server's file: {e}; does this machine share its --dir?"
            ),
        })?;
        if let Some(len) = local.metadata().ok().map(|m| m.len()).filter(|&l| l > cap) {
            return Err(too_large(Some(len), cap));
        }
        return copy_capped(local, writer, cap, id, |e| Error::File {
            method: METHOD.to_owned(),
            file: id.to_owned(),
            detail: format!("cannot read the local Bot API server's file: {e}"),
        });
    }
    let mut response = caller.get_file(METHOD, file_path, DOWNLOAD_TIMEOUT)?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        let body = response
            .body_mut()
            .with_config()
            .limit(ERROR_BODY)
            .read_to_vec()
            .unwrap_or_default();
        return Err(
            match wire::decode::<IgnoredAny>(METHOD.to_owned(), status, &body) {
                Err(e) => e,
                Ok(_) => Error::Http {
                    method: METHOD.to_owned(),
                    status,
                },
            },
        );
    }
    if let Some(len) = response.body().content_length().filter(|&l| l > cap) {
        return Err(too_large(Some(len), cap));
    }
    let body = response.body_mut().as_reader();
    copy_capped(body, writer, cap, id, |e| Error::Network {
        method: METHOD.to_owned(),
        // The error may wrap ureq's, whose text may hold the URL: its kind only.
        kind: match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => NetworkKind::Timeout,
            _ => NetworkKind::Broken,
        },
    })
}

/// Copies `reader` into `writer`, at most `cap` bytes: one more is
/// [`Error::TooLarge`]. Read errors become `read_error`'s.
fn copy_capped<W: Write>(
    mut reader: impl Read,
    mut writer: W,
    cap: u64,
    id: &str,
    read_error: impl Fn(io::Error) -> Error,
) -> Result<(W, u64), Error> {
    let mut buf = vec![0; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok((writer, total)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(e)),
        };
        let room = usize::try_from(cap - total).unwrap_or(usize::MAX);
        writer
            .write_all(&buf[..n.min(room)])
            .map_err(|e| write_error(id, &e))?;
        if n > room {
            return Err(too_large(None, cap));
        }
        total += n as u64;
    }
}

fn too_large(size: Option<u64>, cap: u64) -> Error {
    Error::TooLarge {
        method: METHOD.to_owned(),
        size,
        cap,
    }
}

fn write_error(id: &str, e: &io::Error) -> Error {
    Error::File {
        method: METHOD.to_owned(),
        file: id.to_owned(),
        detail: format!("cannot write the download: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(data: &[u8], cap: u64) -> Result<(Vec<u8>, u64), Error> {
        copy_capped(data, Vec::new(), cap, "id", |_| unreachable!())
    }

    #[test]
    fn a_copy_stops_one_byte_past_the_cap() {
        assert_eq!(copy(b"abc", 3).unwrap(), (b"abc".to_vec(), 3));
        let big = vec![7u8; 3 * CHUNK + 5];
        assert_eq!(copy(&big, big.len() as u64).unwrap().1, big.len() as u64);
        let e = copy(&big, big.len() as u64 - 1).unwrap_err();
        assert!(
            matches!(e, Error::TooLarge { size: None, cap, .. } if cap == big.len() as u64 - 1),
            "{e:?}"
        );
        assert!(
            e.to_string().starts_with("download: file is over the cap"),
            "{e}"
        );
    }

    #[test]
    fn an_absolute_path_is_read_only_from_a_local_server() {
        let caller = Caller::new(
            ureq::Agent::new_with_defaults(),
            "http://127.0.0.1:9/botX/".into(),
            "http://127.0.0.1:9/file/botX/".into(),
        );
        let path = std::env::temp_dir().join(format!("smolgram-local-{}", std::process::id()));
        fs::write(&path, b"on this disk").unwrap();
        let path_str = path.to_str().unwrap();
        let refused = fetch(&caller, path_str, "F1", Vec::new(), 100, false).unwrap_err();
        let shown = refused.to_string();
        assert!(matches!(refused, Error::File { .. }), "{refused:?}");
        assert!(!shown.contains(path_str), "the path is not shown: {shown}");
        let (bytes, len) = fetch(&caller, path_str, "F1", Vec::new(), 100, true).unwrap();
        assert_eq!((bytes.as_slice(), len), (&b"on this disk"[..], 12));
        fs::remove_file(&path).unwrap();
    }
}
