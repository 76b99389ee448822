//! The state file's bytes: its header, its records, their CRC-32, and
//! reading a log back up to its first torn or corrupt record.
//!
//! The layout is in the parent module's doc. Must not: touch the store's
//! map or its writer thread; open, lock or truncate files (it reads what it
//! is given and says where the good part ends).

use std::collections::HashMap;
use std::io::{self, Read};

/// The file's first bytes: what says it is ours.
pub(super) const MAGIC: &[u8; 14] = b"SMOLGRAM-STATE";

/// The layout this build writes and reads.
pub(super) const VERSION: u16 = 1;

/// The header's length: the magic, then the version (u16 LE).
pub(super) const HEADER_LEN: u64 = MAGIC.len() as u64 + 2;

/// Bytes a record takes beyond its key and value: length, CRC, op, key
/// length, expiry, value length.
pub(super) const OVERHEAD: usize = 4 + 4 + 1 + 4 + 8 + 4;

/// A payload longer than this is taken as corrupt, not allocated.
const MAX_PAYLOAD: usize = 1 << 30;

const OP_SET: u8 = 1;
const OP_REMOVE: u8 = 2;

/// CRC-32 (IEEE, reflected, as zlib's): the table, made at compile time.
const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// The CRC-32 of `bytes`.
pub(super) fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c = CRC_TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// The header a new file starts with.
pub(super) fn header() -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&VERSION.to_le_bytes());
    out
}

/// One change, as a record holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Op {
    /// `key` is `value` until `expires` (unix ms; 0: for good).
    Set {
        key: String,
        value: Vec<u8>,
        expires: u64,
    },
    /// `key` is gone.
    Remove { key: String },
}

/// Appends `op`'s record to `out`.
pub(super) fn encode(op: &Op, out: &mut Vec<u8>) {
    let (code, key, expires, value) = match op {
        Op::Set {
            key,
            value,
            expires,
        } => (OP_SET, key, *expires, &value[..]),
        Op::Remove { key } => (OP_REMOVE, key, 0, &[][..]),
    };
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    out.push(code);
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&expires.to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
    let payload = &out[start + 8..];
    let (len, crc) = (payload.len() as u32, crc32(payload));
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// A payload's change, or `None` if it does not parse (its CRC matched, so
/// this is a bug or a deliberate forgery; either way the log ends there).
pub(super) fn decode(payload: &[u8]) -> Option<Op> {
    let mut rest = payload;
    let code = *take(&mut rest, 1)?.first()?;
    let key_len = u32::from_le_bytes(take(&mut rest, 4)?.try_into().ok()?) as usize;
    let key = String::from_utf8(take(&mut rest, key_len)?.to_vec()).ok()?;
    let expires = u64::from_le_bytes(take(&mut rest, 8)?.try_into().ok()?);
    let value_len = u32::from_le_bytes(take(&mut rest, 4)?.try_into().ok()?) as usize;
    let value = take(&mut rest, value_len)?.to_vec();
    if !rest.is_empty() {
        return None;
    }
    match code {
        OP_SET => Some(Op::Set {
            key,
            value,
            expires,
        }),
        OP_REMOVE => Some(Op::Remove { key }),
        _ => None,
    }
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if rest.len() < n {
        return None;
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Some(head)
}

/// What a log held, as far as it was whole.
#[derive(Debug, Default)]
pub(super) struct Loaded {
    /// Key to value and expiry (unix ms; 0: none), expired ones included.
    pub(super) entries: HashMap<String, (Vec<u8>, u64)>,
    /// Whole records read.
    pub(super) records: u64,
    /// Where the last whole record ends: the length to keep.
    pub(super) good_len: u64,
}

/// Why a file is not read.
#[derive(Debug)]
pub(super) enum LoadError {
    /// Reading failed.
    Io(io::Error),
    /// Its first bytes are not [`MAGIC`].
    NotOurs,
    /// Ours, in a layout this build does not read.
    Version(u16),
}

/// Reads a whole log from `reader` (the file's start). A file shorter than
/// the header whose bytes are the header's start is taken as new (a crash
/// while creating it); `good_len` is then 0.
pub(super) fn load(reader: &mut impl Read) -> Result<Loaded, LoadError> {
    let mut head = [0u8; HEADER_LEN as usize];
    let got = read_full(reader, &mut head).map_err(LoadError::Io)?;
    if head[..got.min(MAGIC.len())] != MAGIC[..got.min(MAGIC.len())] {
        return Err(LoadError::NotOurs);
    }
    if got < head.len() {
        return Ok(Loaded::default());
    }
    let version = u16::from_le_bytes([head[14], head[15]]);
    if version != VERSION {
        return Err(LoadError::Version(version));
    }
    let mut loaded = Loaded {
        good_len: HEADER_LEN,
        ..Loaded::default()
    };
    while let Some((op, len)) = next_record(reader).map_err(LoadError::Io)? {
        apply(&mut loaded.entries, op);
        loaded.records += 1;
        loaded.good_len += len;
    }
    Ok(loaded)
}

/// The next whole, unbroken record and its length; `None` at the end or at
/// a torn or corrupt one.
fn next_record(reader: &mut impl Read) -> io::Result<Option<(Op, u64)>> {
    let mut prefix = [0u8; 8];
    if read_full(reader, &mut prefix)? < prefix.len() {
        return Ok(None);
    }
    let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    let crc = u32::from_le_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
    if len > MAX_PAYLOAD {
        return Ok(None);
    }
    let mut payload = vec![0u8; len];
    if read_full(reader, &mut payload)? < len || crc32(&payload) != crc {
        return Ok(None);
    }
    Ok(decode(&payload).map(|op| (op, 8 + len as u64)))
}

/// Reads until `buf` is full or the input ends; how much it read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn apply(entries: &mut HashMap<String, (Vec<u8>, u64)>, op: Op) {
    match op {
        Op::Set {
            key,
            value,
            expires,
        } => {
            entries.insert(key, (value, expires));
        }
        Op::Remove { key } => {
            entries.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_zlibs() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn a_record_decodes_to_what_was_encoded() {
        let ops = [
            Op::Set {
                key: "form:c1:u2".into(),
                value: b"{\"step\":3}".to_vec(),
                expires: 1_700_000_000_000,
            },
            Op::Set {
                key: String::new(),
                value: Vec::new(),
                expires: 0,
            },
            Op::Remove { key: "k".into() },
        ];
        for op in ops {
            let mut out = Vec::new();
            encode(&op, &mut out);
            let len = u32::from_le_bytes(out[..4].try_into().unwrap()) as usize;
            assert_eq!(out.len(), 8 + len);
            assert_eq!(
                crc32(&out[8..]),
                u32::from_le_bytes(out[4..8].try_into().unwrap())
            );
            assert_eq!(decode(&out[8..]), Some(op));
        }
    }

    #[test]
    fn a_log_reads_back_up_to_its_first_broken_record() {
        let mut log = header();
        let set = |key: &str| Op::Set {
            key: key.into(),
            value: b"v".to_vec(),
            expires: 0,
        };
        encode(&set("a"), &mut log);
        encode(&set("b"), &mut log);
        encode(&Op::Remove { key: "a".into() }, &mut log);
        let whole = log.len() as u64;
        encode(&set("c"), &mut log);
        let last = log.len() - 1;
        log[last] ^= 0x40;
        let loaded = load(&mut &log[..]).unwrap();
        assert_eq!(loaded.records, 3);
        assert_eq!(loaded.good_len, whole);
        assert_eq!(loaded.entries.keys().collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn a_foreign_file_or_version_is_refused_and_a_torn_header_is_new() {
        assert!(matches!(
            load(&mut &b"hello world, no"[..]),
            Err(LoadError::NotOurs)
        ));
        let mut other = MAGIC.to_vec();
        other.extend_from_slice(&9u16.to_le_bytes());
        assert!(matches!(load(&mut &other[..]), Err(LoadError::Version(9))));
        let loaded = load(&mut &MAGIC[..5]).unwrap();
        assert_eq!((loaded.good_len, loaded.records), (0, 0));
    }
}
