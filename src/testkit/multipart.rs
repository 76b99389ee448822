//! The fake's side of files: multipart uploads streamed off the socket and
//! recorded, the upload methods' answers (a `Message` with the file's ids),
//! `getFile`, and downloads at `/file/bot<token>/<file_path>`.
//!
//! A body is parsed as it arrives, through a 16 KiB buffer: a 50 MB upload
//! costs the fake its length and [`Digest`], and its bytes only up to
//! [`FakeApi::KEPT_BYTES`], so that a test of memory can measure the
//! client's, not the fake's. Chunked bodies (a reader of unknown length)
//! are decoded here too.
//!
//! Must not: hold a body whole beyond [`FakeApi::KEPT_BYTES`], or panic on
//! any body a client sends.

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::http::{Conn, Request, Response, Streamed};
use super::state::{bot_json, chat_json, unix_now, Shared, State};
use super::{FakeApi, Fault};
use crate::api::types::ChatId;

/// Most bytes of a multipart body (Telegram takes 50 MB of file).
const MAX_UPLOAD: u64 = 64 * 1024 * 1024;
/// Most bytes of one form field, or of one part's headers.
const MAX_FIELD: usize = 1024 * 1024;
/// The read buffer.
const CHUNK: usize = 16 * 1024;

/// One file the fake received in a multipart request, in arrival order
/// (see [`FakeApi::uploads`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Uploaded {
    /// The method, lowercase (`sendphoto`).
    pub method: String,
    /// The part's name (what `attach://` names).
    pub part: String,
    /// The part's `filename`.
    pub file_name: String,
    /// The `file_id` the fake gave it (its answer holds it too).
    pub file_id: String,
    /// How many bytes arrived.
    pub len: u64,
    /// The [`Digest`] of those bytes.
    pub digest: u64,
    /// The bytes, if at most [`FakeApi::KEPT_BYTES`] arrived (see
    /// [`FakeApi::keep_upload_bytes`]).
    pub bytes: Option<Vec<u8>>,
}

/// FNV-1a (64 bits) of a byte stream, fed in pieces of any size: what
/// [`Uploaded::digest`] holds, to compare a large upload with its source
/// without keeping either.
///
/// ```
/// use smolgram::testkit::Digest;
///
/// let mut d = Digest::new();
/// d.update(b"hello ");
/// d.update(b"world");
/// assert_eq!(d.value(), Digest::of(b"hello world"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest(u64);

impl Digest {
    /// The digest of nothing yet.
    pub fn new() -> Digest {
        Digest(0xcbf2_9ce4_8422_2325)
    }

    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// The digest so far.
    pub fn value(&self) -> u64 {
        self.0
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> u64 {
        let mut d = Digest::new();
        d.update(bytes);
        d.value()
    }
}

impl Default for Digest {
    fn default() -> Self {
        Digest::new()
    }
}

/// The uploads and the files `getFile` serves.
#[derive(Debug)]
pub(crate) struct Files {
    uploads: Vec<Uploaded>,
    stored: Vec<Stored>,
    /// Bytes of an upload kept whole at most (see [`FakeApi::keep_upload_bytes`]).
    keep: u64,
}

impl Default for Files {
    fn default() -> Self {
        Files {
            uploads: Vec::new(),
            stored: Vec::new(),
            keep: FakeApi::KEPT_BYTES,
        }
    }
}

#[derive(Debug)]
struct Stored {
    file_id: String,
    file_path: String,
    file_name: String,
    size: u64,
    /// `None`: only the digest was kept (a large upload), or a local file.
    bytes: Option<Arc<[u8]>>,
}

impl Files {
    fn store(&mut self, file_name: &str, size: u64, bytes: Option<Arc<[u8]>>) -> &Stored {
        let n = self.stored.len() + 1;
        self.stored.push(Stored {
            file_id: format!("testkit-file-{n}"),
            file_path: format!("documents/file_{n}"),
            file_name: file_name.to_owned(),
            size,
            bytes,
        });
        &self.stored[n - 1]
    }

    fn by_id(&self, file_id: &str) -> Option<&Stored> {
        self.stored.iter().find(|f| f.file_id == file_id)
    }
}

impl FakeApi {
    /// Files of up to this many bytes are kept whole in [`Uploaded::bytes`]
    /// (and can be downloaded again); larger ones only by length and digest.
    pub const KEPT_BYTES: u64 = 4 * 1024 * 1024;

    /// Every file received by an upload method, in arrival order (a faulted
    /// request's files are not among them).
    pub fn uploads(&self) -> Vec<Uploaded> {
        self.shared.with(|s| s.files.uploads.clone())
    }

    /// Keeps the bytes of uploads of at most `max` bytes (instead of
    /// [`KEPT_BYTES`](FakeApi::KEPT_BYTES)); 0 keeps only lengths and
    /// digests, so that a test of the client's memory measures the client.
    pub fn keep_upload_bytes(&self, max: u64) {
        self.shared.with(|s| s.files.keep = max);
    }

    /// The last file received under `file_name`, if any.
    pub fn upload(&self, file_name: &str) -> Option<Uploaded> {
        self.shared.with(|s| {
            s.files
                .uploads
                .iter()
                .rev()
                .find(|u| u.file_name == file_name)
                .cloned()
        })
    }

    /// Registers a file the bot may fetch with `getFile` and download (as
    /// if a user had sent it) and returns its `file_id`.
    pub fn add_file(&self, file_name: &str, bytes: Vec<u8>) -> String {
        let size = bytes.len() as u64;
        self.shared.with(|s| {
            let id = s
                .files
                .store(file_name, size, Some(bytes.into()))
                .file_id
                .clone();
            s.touch();
            id
        })
    }

    /// Registers a file on this machine's disk as a local Bot API server
    /// (`--local`) does: `getFile` answers with its absolute `path` as the
    /// `file_path`, and the fake does not serve it over HTTP.
    pub fn add_local_file(&self, path: &Path) -> String {
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        self.shared.with(|s| {
            let stored = s.files.store(&name, size, None);
            let id = stored.file_id.clone();
            let last = s.files.stored.len() - 1;
            s.files.stored[last].file_path = path.to_string_lossy().into_owned();
            s.touch();
            id
        })
    }
}

/// One part of a received form.
#[derive(Debug)]
pub(crate) struct Part {
    name: String,
    file_name: String,
    len: u64,
    digest: Digest,
    bytes: Option<Vec<u8>>,
}

/// A received form: its fields, and its file parts.
#[derive(Debug, Default)]
pub(crate) struct Form {
    pub(crate) fields: Vec<(String, String)>,
    files: Vec<Part>,
}

impl Form {
    /// The bytes of the file part called `name`, if it came and was kept.
    pub(crate) fn file(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|part| part.name == name)
            .and_then(|part| part.bytes.as_deref())
    }
}

/// What reading a multipart body came to.
pub(crate) enum Received {
    /// The whole form.
    Form(Form),
    /// Answer this and close (a bad body, or a [`Fault::MidUpload`]).
    Refused(Response),
    /// The client left.
    Gone,
}

/// Streams `req`'s multipart body off `conn` into a [`Form`], serving a
/// [`Fault::MidUpload`] armed for its method.
pub(crate) async fn receive(
    conn: &mut Conn,
    req: &Request,
    streamed: Streamed,
    shared: &Shared,
) -> Received {
    let method = req
        .path
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let cut = shared.with(|s| match s.next_fault(&method) {
        Some(Fault::MidUpload { after, code }) => {
            let cut = (*after, *code);
            s.take_fault(&method);
            Some(cut)
        }
        _ => None,
    });
    let Some(boundary) = req.header("content-type").and_then(boundary) else {
        return Received::Refused(bad("multipart body without a boundary"));
    };
    let mut parser = Parser::new(&boundary);
    parser.keep = shared.with(|s| s.files.keep);
    let mut dechunk = Dechunk::default();
    let mut buf = vec![0; CHUNK];
    let mut taken = 0u64;
    loop {
        let room = match streamed {
            Streamed::Length(len) if taken >= len => break,
            Streamed::Length(len) => buf.len().min(usize::try_from(len - taken).unwrap_or(CHUNK)),
            Streamed::Chunked => buf.len(),
        };
        let n = conn.read_body(&mut buf[..room]).await;
        if n == 0 {
            return Received::Gone;
        }
        taken += n as u64;
        let fed = match streamed {
            Streamed::Length(_) => parser.feed(&buf[..n]).map(|()| n),
            Streamed::Chunked => dechunk.feed(&buf[..n], &mut parser),
        };
        let used = match fed {
            Ok(used) => used,
            Err(reason) => return Received::Refused(bad(reason)),
        };
        if let Some((after, code)) = cut.filter(|(after, _)| taken >= *after) {
            log::debug!("testkit: {method} cut after={after} of its body");
            shared.with(|s| s.record_call(&method, Value::Object(Map::new())));
            return Received::Refused(Response::json(
                code,
                &json!({"ok": false, "error_code": code, "description": "Bad Gateway"}),
            ));
        }
        if taken > MAX_UPLOAD {
            return Received::Refused(Response::raw(413, "upload too large"));
        }
        if dechunk.done {
            conn.unread(&buf[used..n]);
            break;
        }
    }
    match parser.finish() {
        Ok(form) => Received::Form(form),
        Err(reason) => Received::Refused(bad(reason)),
    }
}

fn bad(reason: &str) -> Response {
    Response::json(
        400,
        &json!({"ok": false, "error_code": 400, "description": format!("Bad Request: {reason}")}),
    )
}

/// The `boundary` parameter of a `multipart/form-data` content type.
fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case("boundary")
            .then(|| v.trim_matches('"').to_owned())
            .filter(|b| !b.is_empty())
    })
}

/// Where a streaming parse is.
#[derive(Debug, PartialEq, Eq)]
enum At {
    /// In a part's bytes (or the preamble), looking for the next delimiter.
    Body,
    /// Right after a delimiter: `\r\n` (a part follows) or `--` (the end).
    Delimiter,
    /// In a part's headers.
    Headers,
    /// After the closing delimiter: the epilogue is ignored.
    Done,
}

/// A `multipart/form-data` body parsed as it streams in.
struct Parser {
    /// `\r\n--boundary`.
    delimiter: Vec<u8>,
    buf: Vec<u8>,
    at: At,
    /// The part being read; `None` in the preamble.
    part: Option<Part>,
    is_file: bool,
    /// Most bytes of a file kept whole.
    keep: u64,
    form: Form,
}

impl Parser {
    fn new(boundary: &str) -> Parser {
        Parser {
            delimiter: format!("\r\n--{boundary}").into_bytes(),
            // The first delimiter has no CRLF before it: lend it one.
            buf: b"\r\n".to_vec(),
            at: At::Body,
            part: None,
            is_file: false,
            keep: FakeApi::KEPT_BYTES,
            form: Form::default(),
        }
    }

    fn feed(&mut self, data: &[u8]) -> Result<(), &'static str> {
        self.buf.extend_from_slice(data);
        loop {
            match self.at {
                At::Body => match find(&self.buf, &self.delimiter) {
                    Some(i) => {
                        let bytes = self.buf[..i].to_vec();
                        self.take(&bytes)?;
                        self.buf.drain(..i + self.delimiter.len());
                        self.end_part()?;
                        self.at = At::Delimiter;
                    }
                    None => {
                        // The tail may be the start of a delimiter.
                        let safe = self.buf.len().saturating_sub(self.delimiter.len() - 1);
                        let bytes: Vec<u8> = self.buf.drain(..safe).collect();
                        return self.take(&bytes);
                    }
                },
                At::Delimiter => {
                    if self.buf.len() < 2 {
                        return Ok(());
                    }
                    self.at = match &self.buf[..2] {
                        b"--" => At::Done,
                        b"\r\n" => At::Headers,
                        _ => return Err("malformed multipart delimiter"),
                    };
                    self.buf.drain(..2);
                }
                At::Headers => {
                    let Some(end) = find(&self.buf, b"\r\n\r\n") else {
                        return if self.buf.len() > MAX_FIELD {
                            Err("multipart part headers too large")
                        } else {
                            Ok(())
                        };
                    };
                    let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                    self.buf.drain(..end + 4);
                    self.begin_part(&head)?;
                    self.at = At::Body;
                }
                At::Done => {
                    self.buf.clear();
                    return Ok(());
                }
            }
        }
    }

    fn begin_part(&mut self, head: &str) -> Result<(), &'static str> {
        let disposition = head
            .split("\r\n")
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("content-disposition")
                    .then_some(value)
            })
            .ok_or("multipart part without content-disposition")?;
        let param = |key: &str| {
            disposition.split(';').skip(1).find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                (k == key).then(|| v.trim_matches('"').replace("%22", "\""))
            })
        };
        let name = param("name").ok_or("multipart part without a name")?;
        let file_name = param("filename");
        self.is_file = file_name.is_some();
        self.part = Some(Part {
            name,
            file_name: file_name.unwrap_or_default(),
            len: 0,
            digest: Digest::new(),
            bytes: Some(Vec::new()),
        });
        Ok(())
    }

    fn take(&mut self, bytes: &[u8]) -> Result<(), &'static str> {
        let Some(part) = &mut self.part else {
            return Ok(()); // the preamble
        };
        part.len += bytes.len() as u64;
        part.digest.update(bytes);
        let keep = if self.is_file {
            self.keep
        } else {
            MAX_FIELD as u64
        };
        if part.len > keep {
            if !self.is_file {
                return Err("multipart field too large");
            }
            part.bytes = None;
        } else if let Some(kept) = &mut part.bytes {
            kept.extend_from_slice(bytes);
        }
        Ok(())
    }

    fn end_part(&mut self) -> Result<(), &'static str> {
        let Some(part) = self.part.take() else {
            return Ok(());
        };
        if self.is_file {
            self.form.files.push(part);
        } else {
            let value = part.bytes.unwrap_or_default();
            let value = String::from_utf8(value).map_err(|_| "multipart field is not UTF-8")?;
            self.form.fields.push((part.name, value));
        }
        Ok(())
    }

    fn finish(self) -> Result<Form, &'static str> {
        if self.at == At::Done {
            Ok(self.form)
        } else {
            Err("multipart body ended before its closing delimiter")
        }
    }
}

/// Where `needle` starts in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = hay.get(from..)?.iter().position(|&b| b == needle[0]) {
        let i = from + p;
        if hay[i..].starts_with(needle) {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// A `Transfer-Encoding: chunked` body decoded as it streams in.
#[derive(Debug, Default)]
struct Dechunk {
    /// Data bytes left in the current chunk.
    left: u64,
    /// A size or trailer line being read.
    line: Vec<u8>,
    /// In a chunk's data (or the CRLF after it, when `left` is 0).
    in_data: bool,
    /// After the last chunk, in the trailer.
    trailer: bool,
    done: bool,
}

impl Dechunk {
    /// Decodes `input` into `parser`; how many bytes of it belonged to the
    /// body (the rest is the next request's).
    fn feed(&mut self, input: &[u8], parser: &mut Parser) -> Result<usize, &'static str> {
        let mut i = 0;
        while i < input.len() && !self.done {
            if self.in_data && self.left > 0 {
                let n = (input.len() - i).min(usize::try_from(self.left).unwrap_or(usize::MAX));
                parser.feed(&input[i..i + n])?;
                self.left -= n as u64;
                i += n;
                continue;
            }
            let b = input[i];
            i += 1;
            if b != b'\n' {
                self.line.push(b);
                if self.line.len() > 1024 {
                    return Err("chunk line too long");
                }
                continue;
            }
            let line = std::mem::take(&mut self.line);
            let line = line.strip_suffix(b"\r").unwrap_or(&line);
            if self.in_data {
                // The CRLF after a chunk's data.
                if !line.is_empty() {
                    return Err("chunk data longer than its size");
                }
                self.in_data = false;
            } else if self.trailer {
                self.done = line.is_empty();
            } else {
                let size = std::str::from_utf8(line).ok().and_then(|l| {
                    let hex = l.split(';').next()?.trim();
                    u64::from_str_radix(hex, 16).ok()
                });
                match size.ok_or("malformed chunk size")? {
                    0 => self.trailer = true,
                    size => {
                        self.left = size;
                        self.in_data = true;
                    }
                }
            }
        }
        Ok(i)
    }
}

/// Whether `method` (lowercase) is one [`send_media`] answers.
pub(crate) fn is_upload(method: &str) -> bool {
    kind_of(method).is_some() || method == "sendmediagroup"
}

/// Which message field a method's file goes in.
fn kind_of(method: &str) -> Option<&'static str> {
    Some(match method {
        "sendphoto" => "photo",
        "senddocument" => "document",
        "sendaudio" => "audio",
        "sendvideo" => "video",
        "sendanimation" => "animation",
        "sendvoice" => "voice",
        "sendvideonote" => "video_note",
        "sendsticker" => "sticker",
        _ => return None,
    })
}

/// Answers an upload method (`None` for any other): records the form's
/// files and returns the message (or messages, for `sendMediaGroup`) with
/// their ids, as Telegram does.
pub(crate) fn send_media(
    state: &mut State,
    method: &str,
    params: &Map<String, Value>,
    form: Option<Form>,
) -> Option<Response> {
    if !is_upload(method) {
        return None;
    }
    let kind = kind_of(method);
    let Some(chat) = params.get("chat_id").and_then(|v| match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }) else {
        return Some(bad("chat_id is empty"));
    };
    // Every part is recorded, referenced or not: what the client sent.
    let mut parts = Vec::new();
    for part in form.map(|f| f.files).unwrap_or_default() {
        let bytes = part.bytes.clone().map(Arc::from);
        let stored = state.files.store(&part.file_name, part.len, bytes);
        let file_id = stored.file_id.clone();
        state.files.uploads.push(Uploaded {
            method: method.to_owned(),
            part: part.name.clone(),
            file_name: part.file_name,
            file_id: file_id.clone(),
            len: part.len,
            digest: part.digest.value(),
            bytes: part.bytes,
        });
        parts.push((part.name, file_id));
    }
    state.touch();
    let text = |key: &str| match params.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    let message = |state: &mut State, kind: &str, reference: &str, caption: Option<String>| {
        let file = file_json(kind, resolve(state, &parts, reference)?);
        let id = state.next_message_id(ChatId(chat));
        state.note_bot_message(ChatId(chat), id, caption.as_deref().unwrap_or_default());
        let mut message = json!({
            "message_id": id,
            "from": bot_json(),
            "chat": chat_json(ChatId(chat)),
            "date": unix_now(),
        });
        message[kind] = file;
        if let Some(caption) = caption {
            message["caption"] = caption.into();
        }
        Ok(message)
    };
    let result = match kind {
        Some(kind) => {
            let reference = text(kind).unwrap_or_default();
            message(state, kind, &reference, text("caption")).map(|m| vec![m])
        }
        None => {
            let media: Vec<Value> = match params.get("media") {
                Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_default(),
                Some(Value::Array(a)) => a.clone(),
                _ => Vec::new(),
            };
            if !(2..=10).contains(&media.len()) {
                return Some(bad("media must hold 2 to 10 items"));
            }
            media
                .iter()
                .map(|item| {
                    let kind = match item["type"].as_str() {
                        Some(k @ ("photo" | "video" | "document" | "audio")) => k,
                        _ => return Err("unsupported media type"),
                    };
                    let reference = item["media"].as_str().unwrap_or_default();
                    let caption = item["caption"].as_str().map(str::to_owned);
                    message(state, kind, reference, caption).map(|mut m| {
                        m["media_group_id"] = "testkit-group".into();
                        m
                    })
                })
                .collect()
        }
    };
    Some(match result {
        Err(reason) => bad(reason),
        Ok(mut messages) if kind.is_some() => ok(messages.remove(0)),
        Ok(messages) => ok(Value::Array(messages)),
    })
}

/// The stored file a method's file field names: `attach://part`, a
/// `file_id` the fake knows, or a URL (stored as a new, empty file).
fn resolve<'s>(
    state: &'s mut State,
    parts: &[(String, String)],
    reference: &str,
) -> Result<&'s Stored, &'static str> {
    let id = if let Some(name) = reference.strip_prefix("attach://") {
        parts
            .iter()
            .find(|(part, _)| part == name)
            .map(|(_, id)| id.clone())
            .ok_or("attach:// names no part of the request")?
    } else if reference.starts_with("http://") || reference.starts_with("https://") {
        let name = reference.rsplit('/').next().unwrap_or_default().to_owned();
        state
            .files
            .store(&name, 0, Some(Arc::from(&[][..])))
            .file_id
            .clone()
    } else {
        reference.to_owned()
    };
    state
        .files
        .by_id(&id)
        .ok_or("wrong file identifier/HTTP URL specified")
}

/// The object of `kind` (`photo` is a list of sizes) for `file`.
fn file_json(kind: &str, file: &Stored) -> Value {
    let mut object = json!({
        "file_id": file.file_id,
        "file_unique_id": format!("u-{}", file.file_id),
        "file_size": file.size,
    });
    let extra = match kind {
        "photo" => {
            object["width"] = 320.into();
            object["height"] = 320.into();
            return Value::Array(vec![object]);
        }
        "document" => json!({ "file_name": file.file_name }),
        "audio" | "voice" => json!({ "duration": 1 }),
        "video" | "animation" => json!({ "width": 320, "height": 240, "duration": 1 }),
        "video_note" => json!({ "length": 240, "duration": 1 }),
        "sticker" => json!({
            "type": "regular", "width": 512, "height": 512,
            "is_animated": false, "is_video": false,
        }),
        _ => json!({}),
    };
    if let (Value::Object(object), Value::Object(extra)) = (&mut object, extra) {
        object.extend(extra);
    }
    object
}

/// `getFile`: the file's ids, size and path.
pub(crate) fn get_file(state: &State, params: &Map<String, Value>) -> Response {
    let id = params
        .get("file_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match state.files.by_id(id) {
        Some(file) => ok(json!({
            "file_id": file.file_id,
            "file_unique_id": format!("u-{}", file.file_id),
            "file_size": file.size,
            "file_path": file.file_path,
        })),
        None => bad("invalid file_id"),
    }
}

/// Serves `/file/bot<token>/<file_path>`: the file's bytes, or 404 (a wrong
/// token, an unknown path, a file kept by digest only). `false`: close.
pub(crate) async fn serve_file(conn: &mut Conn, shared: &Shared, req: &Request) -> bool {
    let bytes = req
        .path
        .strip_prefix("/file/bot")
        .and_then(|rest| rest.split_once('/'))
        .filter(|(token, _)| *token == FakeApi::TOKEN)
        .and_then(|(_, path)| {
            shared.with(|s| {
                s.files
                    .stored
                    .iter()
                    .find(|f| f.file_path == path)
                    .and_then(|f| f.bytes.clone())
            })
        });
    let written = match bytes {
        Some(bytes) => conn.write_bytes(&bytes, req.keep_alive).await,
        None => {
            let missing = json!({"ok": false, "error_code": 404, "description": "Not Found"});
            conn.write(&Response::json(404, &missing), req.keep_alive)
                .await
        }
    };
    written.is_ok() && req.keep_alive
}

fn ok(result: Value) -> Response {
    Response::json(200, &json!({ "ok": true, "result": result }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(boundary: &str) -> Vec<u8> {
        format!(
            "preamble\r\n--{boundary}\r\ncontent-disposition: form-data; name=\"chat_id\"\r\n\r\n7\r\n\
             --{boundary}\r\ncontent-disposition: form-data; name=\"file0\"; filename=\"a%22b.bin\"\r\n\
             content-type: application/octet-stream\r\n\r\n\r\n--Xy-not-quite\r\nb--{boundary}\r\n\
             --{boundary}--\r\nepilogue"
        )
        .into_bytes()
    }

    fn parse_in_pieces(bytes: &[u8], piece: usize) -> Form {
        let mut parser = Parser::new("XyZ");
        for chunk in bytes.chunks(piece) {
            parser.feed(chunk).unwrap();
        }
        parser.finish().unwrap()
    }

    #[test]
    fn a_form_parses_the_same_in_pieces_of_any_size() {
        let bytes = body("XyZ");
        for piece in [1, 2, 3, 7, 64, bytes.len()] {
            let form = parse_in_pieces(&bytes, piece);
            assert_eq!(form.fields, [("chat_id".to_owned(), "7".to_owned())]);
            let file = &form.files[0];
            assert_eq!(
                (file.name.as_str(), file.file_name.as_str()),
                ("file0", "a\"b.bin")
            );
            // A line that only starts like the delimiter is data.
            let want = b"\r\n--Xy-not-quite\r\nb--XyZ".to_vec();
            assert_eq!(file.bytes.as_deref(), Some(&want[..]), "piece {piece}");
            assert_eq!(file.digest.value(), Digest::of(&want));
        }
    }

    #[test]
    fn a_body_cut_short_or_garbled_is_an_error() {
        let bytes = body("XyZ");
        let mut parser = Parser::new("XyZ");
        parser.feed(&bytes[..bytes.len() - 20]).unwrap();
        assert!(parser.finish().is_err());
        let mut parser = Parser::new("XyZ");
        assert!(parser.feed(b"--XyZ\r\nno-disposition: x\r\n\r\n").is_err());
    }

    #[test]
    fn chunked_bodies_decode_and_leave_the_next_request() {
        let form = body("XyZ");
        let mut chunked = Vec::new();
        for piece in form.chunks(5) {
            chunked.extend_from_slice(format!("{:x};ext=1\r\n", piece.len()).as_bytes());
            chunked.extend_from_slice(piece);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\nx-trailer: y\r\n\r\nGET /next");
        for piece in [1, 3, 100, chunked.len()] {
            let mut dechunk = Dechunk::default();
            let mut parser = Parser::new("XyZ");
            let mut rest = Vec::new();
            for part in chunked.chunks(piece) {
                if dechunk.done {
                    rest.extend_from_slice(part);
                    continue;
                }
                let used = dechunk.feed(part, &mut parser).unwrap();
                rest.extend_from_slice(&part[used..]);
            }
            assert!(dechunk.done);
            assert_eq!(rest, b"GET /next");
            assert_eq!(parser.finish().unwrap().files[0].len, 24);
        }
    }

    #[test]
    fn the_boundary_is_read_quoted_or_not() {
        assert_eq!(
            boundary("multipart/form-data; boundary=ab").as_deref(),
            Some("ab")
        );
        assert_eq!(
            boundary("multipart/form-data; Boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(boundary("multipart/form-data"), None);
    }
}
