//! Uploads: the files a call sends with it ([`Upload`]), and the
//! `multipart/form-data` body that carries them, streamed from where the
//! bytes are.
//!
//! A method's parameters are serialised as for JSON; an [`Upload`] met on
//! the way (as an [`InputFile`](super::generated::InputFile), at the top or
//! deep in a media group) is set aside under a part name of its own and
//! written as `attach://<name>`, which the Bot API accepts for every file
//! field. A call that set nothing aside goes as JSON, as before; one that
//! did goes as a form: each top-level parameter a field (strings as they
//! are, numbers, objects and arrays as JSON text), each upload a file part.
//!
//! The body is never held whole: each try opens its sources on the io
//! thread (a path is opened again, bytes are shared, a reader factory is
//! called again) and streams them through ureq's 16 KiB buffer. So a
//! transient failure can send the whole body again, and a 50 MB file costs
//! a few KiB of memory, not 50 MB. When every size is known (paths by their
//! metadata, bytes by their length, readers that declared one) the body's
//! `Content-Length` is computed and sent; otherwise it goes chunked.
//!
//! Must not: read a whole file into memory, or open files on the executor
//! thread.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use super::types::ChatId;
use super::wire::{self, Caller};
use crate::Error;

/// The deadline of a call that uploads files: long enough for 50 MB over a
/// slow uplink (~100 KB/s), unlike the 30 s of other calls.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// A file to upload with a call: from a path, from bytes in memory, or from
/// a reader. Pass it wherever a method takes an
/// [`InputFile`](super::generated::InputFile) (`photo`, `document`, an
/// `InputMedia*`'s `media`, a `thumbnail`…); the call then goes as
/// `multipart/form-data` (see the [Bot API on sending
/// files](https://core.telegram.org/bots/api#sending-files)).
///
/// It is streamed, never read whole, and opened again for every try, so a
/// transient failure (a 5xx, a dropped connection) sends it again whole: a
/// path is reopened, bytes are shared (`Arc`), a [`from_fn`](Upload::from_fn)
/// factory is called again. A one-shot [`reader`](Upload::reader) cannot be
/// sent twice: a retry of it fails with [`Error::File`] saying so.
///
/// Cheap to clone; clones are the same upload (sent once per call, under one
/// part name).
///
/// # Examples
/// ```
/// use smolgram::api::generated::methods::SendDocument;
/// use smolgram::api::{types::ChatId, Client, Token, Upload};
/// use smolgram::testkit::FakeApi;
///
/// let api = FakeApi::start();
/// let client = Client::new(&api.url(), &Token::parse(FakeApi::TOKEN).unwrap(), 2);
/// let report = Upload::bytes("report.csv", b"day,updates\nmonday,42\n".to_vec());
/// let rt = smolgram::Runtime::new();
/// let sent = rt.block_on(client.send(&SendDocument::new(ChatId(7), report))).unwrap().unwrap();
/// assert!(sent.document.is_some());
/// let got = &api.uploads()[0];
/// assert_eq!(got.file_name, "report.csv");
/// assert_eq!(got.bytes.as_deref(), Some(&b"day,updates\nmonday,42\n"[..]));
/// ```
#[derive(Clone)]
pub struct Upload {
    /// The file name Telegram is told (and shows for a document).
    file_name: String,
    /// The length a reader declared (paths and bytes know their own).
    len: Option<u64>,
    source: Arc<Source>,
}

enum Source {
    Path(PathBuf),
    Bytes(Arc<[u8]>),
    Factory(Box<dyn Fn() -> io::Result<Box<dyn Read + Send>> + Send + Sync>),
    /// Taken by the first try.
    Once(Mutex<Option<Box<dyn Read + Send>>>),
}

impl Upload {
    /// The file at `path`, named by its last component; opened (and its
    /// length read) on an io thread when the call is sent, and again for
    /// every retry.
    pub fn path(path: impl Into<PathBuf>) -> Upload {
        let path = path.into();
        let file_name = path
            .file_name()
            .map_or_else(|| "file".to_owned(), |n| n.to_string_lossy().into_owned());
        Upload::with(file_name, Source::Path(path))
    }

    /// `bytes` in memory, sent as `file_name`. Shared, not copied, by every
    /// try and every clone.
    pub fn bytes(file_name: impl Into<String>, bytes: impl Into<Arc<[u8]>>) -> Upload {
        Upload::with(file_name.into(), Source::Bytes(bytes.into()))
    }

    /// Whatever `open` reads, sent as `file_name`; `open` is called on an io
    /// thread for every try, so a retry reads from the start again. Without
    /// [`with_len`](Upload::with_len) the body goes chunked.
    pub fn from_fn<R, F>(file_name: impl Into<String>, open: F) -> Upload
    where
        R: Read + Send + 'static,
        F: Fn() -> io::Result<R> + Send + Sync + 'static,
    {
        let open = move || open().map(|r| Box::new(r) as Box<dyn Read + Send>);
        Upload::with(file_name.into(), Source::Factory(Box::new(open)))
    }

    /// What `reader` reads, sent as `file_name`, once: a call that has to be
    /// tried again fails with [`Error::File`] instead (use
    /// [`from_fn`](Upload::from_fn) for a source that can start over).
    pub fn reader(file_name: impl Into<String>, reader: impl Read + Send + 'static) -> Upload {
        let reader: Box<dyn Read + Send> = Box::new(reader);
        Upload::with(file_name.into(), Source::Once(Mutex::new(Some(reader))))
    }

    fn with(file_name: String, source: Source) -> Upload {
        Upload {
            file_name,
            len: None,
            source: Arc::new(source),
        }
    }

    /// Declares that a reader yields exactly `len` bytes, so the body gets a
    /// `Content-Length` instead of going chunked. A reader that ends sooner
    /// fails the try; bytes past `len` are not sent. Paths and bytes know
    /// their length and ignore this.
    pub fn with_len(mut self, len: u64) -> Upload {
        self.len = Some(len);
        self
    }

    /// This upload sent under another file name.
    pub fn file_name(mut self, file_name: impl Into<String>) -> Upload {
        self.file_name = file_name.into();
        self
    }

    /// The file name Telegram is told.
    pub fn name(&self) -> &str {
        &self.file_name
    }

    /// Opens the source for one try: its reader, cut to its length when
    /// known, and that length.
    fn open(&self) -> io::Result<(Box<dyn Read + Send>, Option<u64>)> {
        let (reader, len): (Box<dyn Read + Send>, _) = match &*self.source {
            Source::Path(path) => {
                let file = fs::File::open(path)?;
                let len = file.metadata()?.len();
                (Box::new(file), Some(len))
            }
            Source::Bytes(bytes) => {
                let len = bytes.len() as u64;
                (Box::new(io::Cursor::new(Arc::clone(bytes))), Some(len))
            }
            Source::Factory(open) => (open()?, self.len),
            Source::Once(reader) => {
                let taken = reader.lock().unwrap_or_else(PoisonError::into_inner).take();
                let reader = taken.ok_or_else(|| {
                    io::Error::other(
                        "a one-shot reader cannot be sent again; use Upload::from_fn to retry",
                    )
                })?;
                (reader, self.len)
            }
        };
        Ok(match len {
            Some(len) => (
                Box::new(Exact {
                    inner: reader,
                    left: len,
                }),
                Some(len),
            ),
            None => (reader, None),
        })
    }
}

/// Clones are the same upload; two uploads of the same path are not.
impl PartialEq for Upload {
    fn eq(&self, other: &Upload) -> bool {
        Arc::ptr_eq(&self.source, &other.source)
            && self.file_name == other.file_name
            && self.len == other.len
    }
}

impl Eq for Upload {}

impl fmt::Debug for Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &*self.source {
            Source::Path(path) => format!("path {}", path.display()),
            Source::Bytes(bytes) => format!("{} bytes", bytes.len()),
            Source::Factory(_) => "reader factory".to_owned(),
            Source::Once(_) => "one-shot reader".to_owned(),
        };
        f.debug_struct("Upload")
            .field("file_name", &self.file_name)
            .field("source", &source)
            .finish_non_exhaustive()
    }
}

/// A reader cut to exactly `left` more bytes: a source that ends sooner is
/// an error (the `Content-Length` already promised them).
struct Exact {
    inner: Box<dyn Read + Send>,
    left: u64,
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("upload ended {} bytes short of its length", self.left),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

thread_local! {
    /// The uploads set aside while a call's parameters are serialised on
    /// this thread; `None` outside [`encode`].
    static SET_ASIDE: RefCell<Option<Vec<(String, Upload)>>> = const { RefCell::new(None) };
}

/// The part name `upload` is sent under in the call being encoded (the
/// same one for a clone met twice); `None` outside a call's encoding.
pub(crate) fn attach(upload: &Upload) -> Option<String> {
    SET_ASIDE.with(|set| {
        let mut set = set.borrow_mut();
        let set = set.as_mut()?;
        if let Some((name, _)) = set.iter().find(|(_, u)| u == upload) {
            return Some(name.clone());
        }
        let name = format!("file{}", set.len());
        set.push((name.clone(), upload.clone()));
        Some(name)
    })
}

/// Ends the set-aside scope on every way out, panics included.
struct Scope(Option<Vec<(String, Upload)>>);

impl Scope {
    fn begin() -> Scope {
        Scope(SET_ASIDE.with(|set| set.borrow_mut().replace(Vec::new())))
    }

    fn end(mut self) -> Vec<(String, Upload)> {
        let outer = self.0.take();
        SET_ASIDE
            .with(|set| std::mem::replace(&mut *set.borrow_mut(), outer))
            .unwrap_or_default()
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let outer = self.0.take();
        SET_ASIDE.with(|set| *set.borrow_mut() = outer);
    }
}

/// A call's body: JSON, or a form with files.
#[derive(Clone)]
pub(super) enum Body {
    Json(Arc<[u8]>),
    Form(Arc<Form>),
}

/// Encodes `params`: as JSON, or as a form if they hold an [`Upload`].
pub(super) fn encode(method: &str, params: &impl Serialize) -> Result<Body, Error> {
    let scope = Scope::begin();
    let json = wire::encode(method, params);
    let files = scope.end();
    let json = json?;
    if files.is_empty() {
        return Ok(Body::Json(json));
    }
    Form::new(method, &json, files).map(|form| Body::Form(Arc::new(form)))
}

impl Body {
    /// The numeric `chat_id` the call is addressed to (see [`wire::target_chat`]).
    pub(super) fn target_chat(&self) -> Option<ChatId> {
        match self {
            Body::Json(json) => wire::target_chat(json),
            Body::Form(form) => form.field("chat_id")?.parse().ok().map(ChatId),
        }
    }

    /// This body sent to `chat` instead; `None` if it has no `chat_id`.
    pub(super) fn with_chat_id(&self, chat: ChatId) -> Option<Body> {
        match self {
            Body::Json(json) => wire::with_chat_id(json, chat).map(Body::Json),
            Body::Form(form) => {
                form.field("chat_id")?;
                let mut moved = Form::clone(form);
                for (name, value) in &mut moved.fields {
                    if name == "chat_id" {
                        *value = chat.0.to_string();
                    }
                }
                Some(Body::Form(Arc::new(moved)))
            }
        }
    }

    /// One try of the call on an io thread, within `deadline` (for `None`:
    /// the agent's, or [`UPLOAD_TIMEOUT`] for a form).
    pub(super) fn send<T: DeserializeOwned>(
        &self,
        caller: &Caller,
        method: String,
        deadline: Option<Duration>,
    ) -> Result<T, Error> {
        match self {
            Body::Json(json) => caller.send(method, json, deadline),
            Body::Form(form) => form.send(caller, method, deadline.or(Some(UPLOAD_TIMEOUT))),
        }
    }
}

/// A `multipart/form-data` body, ready to be opened for each try.
#[derive(Clone)]
pub(super) struct Form {
    boundary: String,
    /// Top-level parameters, as text.
    fields: Vec<(String, String)>,
    /// Part name and upload.
    files: Vec<(String, Upload)>,
}

impl Form {
    fn new(method: &str, json: &[u8], files: Vec<(String, Upload)>) -> Result<Form, Error> {
        let params: Map<String, Value> =
            serde_json::from_slice(json).map_err(|e| Error::Decode {
                method: method.to_owned(),
                detail: format!("parameters with files must be an object: {e}"),
            })?;
        let fields = params
            .into_iter()
            .filter_map(|(name, value)| match value {
                Value::Null => None,
                Value::String(text) => Some((name, text)),
                // The Bot API reads numbers, flags, objects and arrays of a form as JSON text.
                other => Some((name, other.to_string())),
            })
            .collect();
        // Random, so that no file's bytes can end its part early by chance.
        let boundary = format!(
            "smolgram-{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        );
        Ok(Form {
            boundary,
            fields,
            files,
        })
    }

    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Opens every file for one try: the body's reader and its length when
    /// every part's is known. The part heads are built here, small; the
    /// files stay where they are.
    fn open(&self) -> Result<(Multipart, Option<u64>), (String, io::Error)> {
        let mut pieces = VecDeque::new();
        let mut head = Vec::new();
        for (name, value) in &self.fields {
            head.extend_from_slice(format!("--{}\r\n", self.boundary).as_bytes());
            head.extend_from_slice(
                format!(
                    "content-disposition: form-data; name=\"{}\"\r\n\r\n",
                    quoted(name)
                )
                .as_bytes(),
            );
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        let mut len = Some(0u64);
        for (name, upload) in &self.files {
            head.extend_from_slice(
                format!(
                    "--{}\r\ncontent-disposition: form-data; name=\"{}\"; filename=\"{}\"\r\n\
                     content-type: application/octet-stream\r\n\r\n",
                    self.boundary,
                    quoted(name),
                    quoted(&upload.file_name)
                )
                .as_bytes(),
            );
            let (reader, file_len) = upload.open().map_err(|e| (upload.file_name.clone(), e))?;
            len = len.zip(file_len).map(|(a, b)| a + b);
            len = len.map(|l| l + head.len() as u64);
            pieces.push_back(Piece::Bytes(io::Cursor::new(std::mem::take(&mut head))));
            pieces.push_back(Piece::File(reader));
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        len = len.map(|l| l + head.len() as u64);
        pieces.push_back(Piece::Bytes(io::Cursor::new(head)));
        Ok((Multipart { pieces }, len))
    }

    fn send<T: DeserializeOwned>(
        &self,
        caller: &Caller,
        method: String,
        deadline: Option<Duration>,
    ) -> Result<T, Error> {
        // Opening fails for good (no such file, a one-shot reader already
        // sent): not worth a retry, so not a network error.
        let (body, len) = self.open().map_err(|(file, e)| Error::File {
            method: method.clone(),
            file,
            detail: e.to_string(),
        })?;
        let content_type = format!("multipart/form-data; boundary={}", self.boundary);
        caller.exchange(method, deadline, move |request| {
            let request = request.header("content-type", content_type);
            let request = match len {
                // Known: ureq sends exactly this many bytes, not chunks.
                Some(len) => request.header("content-length", len.to_string()),
                None => request,
            };
            request.send(ureq::SendBody::from_owned_reader(body))
        })
    }
}

/// A form's name or file name inside its quotes: `"`, CR and LF escaped as
/// browsers do (WHATWG's multipart/form-data encoding).
fn quoted(name: &str) -> String {
    name.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// One try's body: part heads and files, read in turn.
struct Multipart {
    pieces: VecDeque<Piece>,
}

enum Piece {
    Bytes(io::Cursor<Vec<u8>>),
    File(Box<dyn Read + Send>),
}

impl Read for Multipart {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(piece) = self.pieces.front_mut() {
            let n = match piece {
                Piece::Bytes(bytes) => bytes.read(buf)?,
                Piece::File(file) => file.read(buf)?,
            };
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            self.pieces.pop_front();
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(form: &Form) -> (Vec<u8>, Option<u64>) {
        let (mut reader, len) = form.open().unwrap();
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        (out, len)
    }

    #[test]
    fn params_without_uploads_stay_json() {
        let body = encode(
            "sendMessage",
            &serde_json::json!({"chat_id": 1, "text": "hi"}),
        )
        .unwrap();
        assert!(matches!(body, Body::Json(_)));
        assert_eq!(body.target_chat(), Some(ChatId(1)));
    }

    #[test]
    fn uploads_become_parts_and_the_rest_fields_with_a_known_length() {
        use crate::api::generated::InputFile;
        let a = Upload::bytes("a \"q\".txt", b"alpha".to_vec());
        #[derive(Serialize)]
        struct P {
            chat_id: i64,
            caption: &'static str,
            photo: InputFile,
            media: Vec<InputFile>,
            nothing: Option<u8>,
        }
        let p = P {
            chat_id: -5,
            caption: "x",
            photo: InputFile::Upload(a.clone()),
            media: vec![
                InputFile::Upload(a),
                InputFile::Upload(Upload::bytes("b", b"beta".to_vec())),
            ],
            nothing: None,
        };
        let Body::Form(form) = encode("sendPhoto", &p).unwrap() else {
            panic!("a form")
        };
        assert_eq!(form.field("photo"), Some("attach://file0"));
        assert_eq!(
            form.field("media"),
            Some(r#"["attach://file0","attach://file1"]"#),
            "a clone is one part; arrays are JSON text"
        );
        assert_eq!(form.field("chat_id"), Some("-5"));
        assert_eq!(form.field("nothing"), None);
        let (bytes, len) = body_of(&form);
        assert_eq!(len, Some(bytes.len() as u64));
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("filename=\"a %22q%22.txt\"\r\ncontent-type: application/octet-stream\r\n\r\nalpha\r\n"), "{text}");
        assert!(text.ends_with(&format!("--{}--\r\n", form.boundary)));
        assert_eq!(text.matches("filename=").count(), 2);
        let moved = Body::Form(form).with_chat_id(ChatId(-100)).unwrap();
        assert_eq!(moved.target_chat(), Some(ChatId(-100)));
    }

    #[test]
    fn an_upload_outside_a_call_does_not_serialise() {
        let file = crate::api::generated::InputFile::Upload(Upload::bytes("a", vec![1]));
        assert!(serde_json::to_string(&file).is_err());
    }

    #[test]
    fn a_reader_of_unknown_length_makes_the_length_unknown_and_a_short_one_fails() {
        let form = |upload: Upload| Form::new("m", b"{}", vec![("file0".into(), upload)]).unwrap();
        let (bytes, len) = body_of(&form(Upload::from_fn("r", || Ok(&b"xyz"[..]))));
        assert_eq!(len, None);
        assert!(String::from_utf8(bytes)
            .unwrap()
            .contains("\r\n\r\nxyz\r\n"));
        let short = form(Upload::from_fn("r", || Ok(&b"xy"[..])).with_len(3));
        let (mut reader, len) = short.open().unwrap();
        assert_eq!(len.map(|l| l > 3), Some(true));
        let e = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_one_shot_reader_opens_once_and_a_path_every_time() {
        let once = Upload::reader("once", &b"1"[..]);
        assert!(once.open().is_ok());
        let again = once.open().err().expect("a second open fails");
        assert!(again.to_string().contains("one-shot"), "{again}");
        let path = std::env::temp_dir().join(format!("smolgram-upload-{}", std::process::id()));
        fs::write(&path, b"twice").unwrap();
        let file = Upload::path(&path);
        for _ in 0..2 {
            let (mut r, len) = file.open().unwrap();
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!((out.as_slice(), len), (&b"twice"[..], Some(5)));
        }
        fs::remove_file(&path).unwrap();
        assert!(file.open().is_err());
    }
}
