//! The backup file, written by the server for `lienthong backup` and read
//! by `lienthong restore`:
//!
//! ```text
//! file       = magic version header record* end
//! magic      = "lienthong-backup"                 (16 bytes)
//! version    = u16                                (1)
//! header     = 0x01 len:u32 JSON                  (see Header)
//! record     = entry | attachment | file
//! entry      = 0x02 space:u8 len:u32 key len:u32 value
//! attachment = 0x03 sha256:[32] len:u64 content
//! file       = 0x04 len:u16 path secret:u8 len:u64 content
//! end        = 0xFF entries:u64 attachments:u64 files:u64 sha256:[32]
//! ```
//!
//! Integers are big-endian. An entry's `space` is a position in the
//! header's list of keyspace names, so that a restore maps keyspaces by
//! name. An attachment is one stored as a file, named by its SHA-256. A
//! file's path is where it goes in the data directory, `/`-separated;
//! `secret` is 1 for a private key. The last 32 bytes are the SHA-256 of
//! every byte before them: a file cut short or changed anywhere is refused
//! as a whole, before anything is written.

use std::fmt;
use std::io::{self, Read, Write};

use ring::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};

use crate::store::engine::Space;

const MAGIC: &[u8; 16] = b"lienthong-backup";
const VERSION: u16 = 1;

const HEADER: u8 = 0x01;
const ENTRY: u8 = 0x02;
const ATTACHMENT: u8 = 0x03;
const FILE: u8 = 0x04;
const END: u8 = 0xFF;

/// Bounds on lengths read before the checksum could be checked, so that
/// a damaged length is reported as such.
const MAX_HEADER: u64 = 1024 * 1024;
const MAX_KEY: u64 = 1024 * 1024;

/// What the backup says of itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    /// When the snapshot was taken, RFC 3339.
    pub created_at: String,
    /// The version of the server that wrote it.
    pub server_version: String,
    /// The keyspaces, by name, in the order entries refer to them.
    pub spaces: Vec<String>,
    /// Whether private keys are in it.
    pub include_secrets: bool,
}

/// How many records of each kind a backup holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub entries: u64,
    pub attachments: u64,
    pub files: u64,
}

/// Writes a backup file to `out`, keeping the SHA-256 of what it wrote.
pub struct Writer<W: Write> {
    out: W,
    digest: Context,
    counts: Counts,
}

fn too_long(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{what} is too long"))
}

impl<W: Write> Writer<W> {
    pub fn new(out: W, header: &Header) -> io::Result<Writer<W>> {
        let mut writer = Writer {
            out,
            digest: Context::new(&SHA256),
            counts: Counts::default(),
        };
        let json = serde_json::to_vec(header).map_err(io::Error::other)?;
        writer.put(MAGIC)?;
        writer.put(&VERSION.to_be_bytes())?;
        writer.put(&[HEADER])?;
        writer.put(
            &u32::try_from(json.len())
                .map_err(|_| too_long("header"))?
                .to_be_bytes(),
        )?;
        writer.put(&json)?;
        Ok(writer)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.digest.update(bytes);
        self.out.write_all(bytes)
    }

    fn put_u32_len(&mut self, bytes: &[u8], what: &str) -> io::Result<()> {
        let len = u32::try_from(bytes.len()).map_err(|_| too_long(what))?;
        self.put(&len.to_be_bytes())?;
        self.put(bytes)
    }

    fn put_u64_len(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.put(&(bytes.len() as u64).to_be_bytes())?;
        self.put(bytes)
    }

    /// One entry of the keyspace at `space` in the header's list.
    pub fn entry(&mut self, space: u8, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.put(&[ENTRY, space])?;
        self.put_u32_len(key, "a key")?;
        self.put_u32_len(value, "a value")?;
        self.counts.entries += 1;
        Ok(())
    }

    pub fn attachment(&mut self, sha256: &[u8; 32], content: &[u8]) -> io::Result<()> {
        self.put(&[ATTACHMENT])?;
        self.put(sha256)?;
        self.put_u64_len(content)?;
        self.counts.attachments += 1;
        Ok(())
    }

    pub fn file(&mut self, path: &str, secret: bool, content: &[u8]) -> io::Result<()> {
        let len = u16::try_from(path.len()).map_err(|_| too_long("a file's path"))?;
        self.put(&[FILE])?;
        self.put(&len.to_be_bytes())?;
        self.put(path.as_bytes())?;
        self.put(&[u8::from(secret)])?;
        self.put_u64_len(content)?;
        self.counts.files += 1;
        Ok(())
    }

    /// Writes the end and the checksum; returns the output and the counts.
    pub fn finish(mut self) -> io::Result<(W, Counts)> {
        let counts = self.counts;
        self.put(&[END])?;
        for n in [counts.entries, counts.attachments, counts.files] {
            self.put(&n.to_be_bytes())?;
        }
        let sum = self.digest.clone().finish();
        self.out.write_all(sum.as_ref())?;
        self.out.flush()?;
        Ok((self.out, counts))
    }
}

/// Why a file is not a backup that can be restored.
#[derive(Debug)]
pub enum FormatError {
    Io(io::Error),
    NotABackup,
    Version(u16),
    /// The file ends before its end record: cut short.
    Truncated {
        at: u64,
    },
    /// A record that cannot be: a damaged file.
    Damaged {
        at: u64,
        why: String,
    },
    /// Everything parses, but the SHA-256 at the end does not match.
    Checksum,
    /// A keyspace this build does not have.
    UnknownSpace(String),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::Io(e) => write!(f, "cannot read it: {e}"),
            FormatError::NotABackup => {
                write!(f, "it is not a lienthong backup (it does not begin with \"lienthong-backup\")")
            }
            FormatError::Version(v) => write!(
                f,
                "it is in backup format {v}, and this build reads format {VERSION}: restore it with the build that wrote it or a newer one"
            ),
            FormatError::Truncated { at } => write!(
                f,
                "it ends early, after {at} bytes: the backup is truncated (was a copy or a download cut short?)"
            ),
            FormatError::Damaged { at, why } => write!(f, "it is damaged at byte {at}: {why}"),
            FormatError::Checksum => f.write_str(
                "the SHA-256 at its end does not match its content: the file is damaged",
            ),
            FormatError::UnknownSpace(name) => write!(
                f,
                "it holds keyspace {name:?}, which this build does not have: restore it with the build that wrote it or a newer one"
            ),
        }
    }
}

impl std::error::Error for FormatError {}

/// One record of a backup after its header.
#[derive(Debug)]
pub enum Record {
    Entry {
        space: Space,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Attachment {
        sha256: [u8; 32],
        content: Vec<u8>,
    },
    File {
        path: String,
        secret: bool,
        content: Vec<u8>,
    },
}

/// Reads a backup file record by record, checking as it goes; the last
/// record is followed by a check of the counts and the checksum, so only a
/// reader that reached `Ok(None)` has read a whole, intact backup.
pub struct Reader<R: Read> {
    input: R,
    digest: Context,
    at: u64,
    header: Header,
    spaces: Vec<Space>,
    counts: Counts,
    ended: bool,
}

impl<R: Read> Reader<R> {
    /// Reads and checks the magic, the version and the header.
    pub fn open(input: R) -> Result<Reader<R>, FormatError> {
        let mut reader = Reader {
            input,
            digest: Context::new(&SHA256),
            at: 0,
            header: Header {
                created_at: String::new(),
                server_version: String::new(),
                spaces: Vec::new(),
                include_secrets: false,
            },
            spaces: Vec::new(),
            counts: Counts::default(),
            ended: false,
        };
        let mut magic = [0u8; 16];
        match reader.exact(&mut magic) {
            Err(FormatError::Truncated { .. }) => return Err(FormatError::NotABackup),
            other => other?,
        }
        if &magic != MAGIC {
            return Err(FormatError::NotABackup);
        }
        let version = u16::from_be_bytes(reader.array()?);
        if version != VERSION {
            return Err(FormatError::Version(version));
        }
        if reader.byte()? != HEADER {
            return Err(reader.damaged("the header is missing"));
        }
        let len = u64::from(u32::from_be_bytes(reader.array()?));
        let json = reader.bytes(len, MAX_HEADER, "the header")?;
        reader.header = serde_json::from_slice(&json)
            .map_err(|e| reader.damaged(format!("the header is not valid: {e}")))?;
        reader.spaces = reader
            .header
            .spaces
            .iter()
            .map(|name| {
                Space::from_name(name).ok_or_else(|| FormatError::UnknownSpace(name.clone()))
            })
            .collect::<Result<_, _>>()?;
        Ok(reader)
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The counts of the records read so far (all of them once `next`
    /// returned `Ok(None)`).
    pub fn counts(&self) -> Counts {
        self.counts
    }

    fn damaged(&self, why: impl Into<String>) -> FormatError {
        FormatError::Damaged {
            at: self.at,
            why: why.into(),
        }
    }

    fn exact(&mut self, buf: &mut [u8]) -> Result<(), FormatError> {
        match self.input.read_exact(buf) {
            Ok(()) => {
                self.digest.update(buf);
                self.at += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(FormatError::Truncated { at: self.at })
            }
            Err(e) => Err(FormatError::Io(e)),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        let mut out = [0u8; N];
        self.exact(&mut out)?;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, FormatError> {
        Ok(self.array::<1>()?[0])
    }

    /// `len` bytes, read as they come (a damaged length on a short file
    /// ends as truncated, without reserving memory for it first).
    fn bytes(&mut self, len: u64, max: u64, what: &str) -> Result<Vec<u8>, FormatError> {
        if len > max {
            return Err(self.damaged(format!("{what} claims {len} bytes")));
        }
        let mut out = Vec::new();
        (&mut self.input)
            .take(len)
            .read_to_end(&mut out)
            .map_err(FormatError::Io)?;
        self.digest.update(&out);
        self.at += out.len() as u64;
        if (out.len() as u64) < len {
            return Err(FormatError::Truncated { at: self.at });
        }
        Ok(out)
    }

    /// The next record, or `None` after the end record, once the counts
    /// and the checksum were found right and nothing follows.
    pub fn next_record(&mut self) -> Result<Option<Record>, FormatError> {
        if self.ended {
            return Ok(None);
        }
        let at = self.at;
        let record = match self.byte()? {
            ENTRY => {
                let index = usize::from(self.byte()?);
                let space = *self.spaces.get(index).ok_or_else(|| {
                    self.damaged(format!(
                        "an entry names keyspace {index}, which the header does not list"
                    ))
                })?;
                let len = u64::from(u32::from_be_bytes(self.array()?));
                let key = self.bytes(len, MAX_KEY, "a key")?;
                let len = u64::from(u32::from_be_bytes(self.array()?));
                let value = self.bytes(len, u64::MAX, "a value")?;
                self.counts.entries += 1;
                Record::Entry { space, key, value }
            }
            ATTACHMENT => {
                let sha256 = self.array()?;
                let len = u64::from_be_bytes(self.array()?);
                let content = self.bytes(len, u64::MAX, "an attachment")?;
                self.counts.attachments += 1;
                Record::Attachment { sha256, content }
            }
            FILE => {
                let len = u64::from(u16::from_be_bytes(self.array()?));
                let path = self.bytes(len, len, "a path")?;
                let path = String::from_utf8(path)
                    .map_err(|_| self.damaged("a file's path is not UTF-8"))?;
                let secret = self.byte()? == 1;
                let len = u64::from_be_bytes(self.array()?);
                let content = self.bytes(len, u64::MAX, "a file")?;
                self.counts.files += 1;
                Record::File {
                    path,
                    secret,
                    content,
                }
            }
            END => {
                self.end()?;
                return Ok(None);
            }
            other => {
                return Err(FormatError::Damaged {
                    at,
                    why: format!("no record begins with byte {other:#04x}"),
                })
            }
        };
        Ok(Some(record))
    }

    fn end(&mut self) -> Result<(), FormatError> {
        let stated = Counts {
            entries: u64::from_be_bytes(self.array()?),
            attachments: u64::from_be_bytes(self.array()?),
            files: u64::from_be_bytes(self.array()?),
        };
        let computed = self.digest.clone().finish();
        let mut sum = [0u8; 32];
        match self.input.read_exact(&mut sum) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(FormatError::Truncated { at: self.at })
            }
            Err(e) => return Err(FormatError::Io(e)),
        }
        self.at += 32;
        if sum != computed.as_ref() {
            return Err(FormatError::Checksum);
        }
        if stated != self.counts {
            return Err(self.damaged(format!(
                "its end counts {stated:?}, but it holds {:?}",
                self.counts
            )));
        }
        let mut after = [0u8; 1];
        if self.input.read(&mut after).map_err(FormatError::Io)? != 0 {
            return Err(self.damaged("bytes follow its end"));
        }
        self.ended = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let header = Header {
            created_at: "2026-11-20T14:05:03+07:00".into(),
            server_version: "test".into(),
            spaces: vec!["meta".into(), "documents".into()],
            include_secrets: false,
        };
        let mut w = Writer::new(Vec::new(), &header).unwrap_or_else(|e| panic!("{e}"));
        let ok = w
            .entry(0, b"schema", b"x")
            .and_then(|()| w.entry(1, &[1; 16], b"document"))
            .and_then(|()| w.attachment(&[7; 32], b"content"))
            .and_then(|()| w.file("service-key.pub.pem", false, b"pem"));
        ok.unwrap_or_else(|e| panic!("{e}"));
        w.finish().unwrap_or_else(|e| panic!("{e}")).0
    }

    fn read_all(bytes: &[u8]) -> Result<Counts, FormatError> {
        let mut r = Reader::open(bytes)?;
        while r.next_record()?.is_some() {}
        Ok(r.counts())
    }

    #[test]
    fn a_whole_file_reads_back() {
        let counts = read_all(&sample()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            counts,
            Counts {
                entries: 2,
                attachments: 1,
                files: 1
            }
        );
    }

    #[test]
    fn every_cut_and_every_changed_byte_is_refused() {
        let bytes = sample();
        for len in 0..bytes.len() {
            assert!(read_all(&bytes[..len]).is_err(), "cut at {len} was read");
        }
        for i in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[i] ^= 0x20;
            assert!(read_all(&changed).is_err(), "byte {i} changed was read");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(read_all(&longer).is_err());
    }
}
