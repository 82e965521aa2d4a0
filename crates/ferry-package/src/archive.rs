//! A minimal reader of the zip central directory.
//!
//! Verification needs what a general zip library hides or normalises: every
//! raw entry name (including duplicates, which libraries fold into one map
//! key), the external attributes (symlinks), and the entry count *before*
//! anything allocates per entry. So the central directory is scanned here,
//! bounded, and the zip library is only used afterwards to decompress
//! entries this scan has already vetted.

use std::io::{BufReader, Read, Seek, SeekFrom};

/// One central-directory record, as declared (not trusted: sizes are
/// enforced again while streaming).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEntry {
    /// The name as text (lossy if it was not UTF-8).
    pub name: String,
    /// Whether the raw name bytes were valid UTF-8.
    pub utf8: bool,
    pub compressed_size: u64,
    pub size: u64,
    pub method: u16,
    pub external_attributes: u32,
    /// The "version made by" host system (3 is Unix).
    pub host_os: u8,
}

/// Unix file-type bits.
const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;

/// What kind of file system object an entry claims to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Directory,
    Symlink,
    /// A device, FIFO or socket.
    Special,
}

impl RawEntry {
    /// The Unix mode, when the entry was made on Unix and carries one.
    pub fn unix_mode(&self) -> Option<u32> {
        let mode = self.external_attributes >> 16;
        (self.host_os == 3 && mode != 0).then_some(mode)
    }

    pub fn kind(&self) -> EntryKind {
        match self.unix_mode().map(|m| m & S_IFMT) {
            Some(S_IFLNK) => EntryKind::Symlink,
            Some(S_IFDIR) => EntryKind::Directory,
            Some(S_IFREG) | Some(0) | None => {
                if self.name.ends_with('/') || self.external_attributes & 0x10 != 0 {
                    EntryKind::Directory
                } else {
                    EntryKind::File
                }
            }
            Some(_) => EntryKind::Special,
        }
    }
}

/// Why the central directory could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanError {
    /// More entries than allowed; nothing past the count was read.
    TooManyEntries { count: u64 },
    /// Not a zip, truncated, or inconsistent.
    Corrupt(String),
}

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const CDH_SIG: u32 = 0x0201_4b50;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]]))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8).map(|s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_le_bytes(a)
    })
}

fn corrupt(msg: impl Into<String>) -> ScanError {
    ScanError::Corrupt(msg.into())
}

/// Reads the central directory of the zip in `r`, refusing more than
/// `max_entries` entries before reading any of them.
pub fn scan<R: Read + Seek>(r: &mut R, max_entries: u64) -> Result<Vec<RawEntry>, ScanError> {
    let io = |e: std::io::Error| corrupt(format!("read error: {e}"));
    let len = r.seek(SeekFrom::End(0)).map_err(io)?;
    if len < 22 {
        return Err(corrupt("too short to be a zip archive"));
    }
    // The end-of-central-directory record sits in the last 22 + 65535 bytes.
    let tail_len = len.min(22 + 65535);
    let tail_start = len - tail_len;
    r.seek(SeekFrom::Start(tail_start)).map_err(io)?;
    let mut tail = vec![0u8; tail_len as usize];
    r.read_exact(&mut tail).map_err(io)?;
    let eocd_rel = (0..=tail.len() - 22)
        .rev()
        .find(|&i| u32_at(&tail, i) == Some(EOCD_SIG))
        .ok_or_else(|| corrupt("no end-of-central-directory record: not a zip, or truncated"))?;
    let eocd_pos = tail_start + eocd_rel as u64;
    let e = &tail[eocd_rel..];
    // The record and its comment end the file exactly. Bytes after them, or
    // a "comment" that hides another end record, are read differently by
    // different zip readers (security review 1.4): what is verified here
    // must be what any reader of the stored package sees.
    let comment_len = usize::from(u16_at(e, 20).unwrap_or(0));
    if eocd_rel + 22 + comment_len != tail.len() {
        return Err(corrupt(
            "the end-of-central-directory record does not end the file (trailing data, or more than one end record)",
        ));
    }
    let mut count = u64::from(u16_at(e, 10).unwrap_or(0));
    let mut cd_size = u64::from(u32_at(e, 12).unwrap_or(0));
    let mut cd_offset = u64::from(u32_at(e, 16).unwrap_or(0));
    if u16_at(e, 4) != Some(0) || u16_at(e, 6) != Some(0) {
        return Err(corrupt("multi-disk archives are not supported"));
    }
    // Where the central directory must end: right before its end record
    // (zip64: before the zip64 record). Anything between is a place for a
    // second directory that another reader might pick.
    let mut dir_end = eocd_pos;
    if count == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
        // Zip64: the locator sits just before the classic record.
        let loc_pos = eocd_pos
            .checked_sub(20)
            .ok_or_else(|| corrupt("zip64 locator missing"))?;
        let mut loc = [0u8; 20];
        r.seek(SeekFrom::Start(loc_pos)).map_err(io)?;
        r.read_exact(&mut loc).map_err(io)?;
        if u32_at(&loc, 0) != Some(ZIP64_LOCATOR_SIG) {
            return Err(corrupt("zip64 locator missing"));
        }
        let z_pos = u64_at(&loc, 8).unwrap_or(u64::MAX);
        if z_pos >= loc_pos {
            return Err(corrupt("zip64 record out of range"));
        }
        let mut z = [0u8; 56];
        r.seek(SeekFrom::Start(z_pos)).map_err(io)?;
        r.read_exact(&mut z).map_err(io)?;
        if u32_at(&z, 0) != Some(ZIP64_EOCD_SIG) {
            return Err(corrupt("zip64 end-of-central-directory record missing"));
        }
        dir_end = z_pos;
        count = u64_at(&z, 32).unwrap_or(0);
        cd_size = u64_at(&z, 40).unwrap_or(0);
        cd_offset = u64_at(&z, 48).unwrap_or(0);
    }
    if count > max_entries {
        return Err(ScanError::TooManyEntries { count });
    }
    let cd_end = cd_offset
        .checked_add(cd_size)
        .ok_or_else(|| corrupt("central directory out of range"))?;
    if cd_end > eocd_pos {
        return Err(corrupt(
            "central directory extends past its end record: truncated or corrupt",
        ));
    }
    // Some writers add zip64 records that nothing needs; they may sit
    // between the directory and the classic end record.
    let mut zip64_between = || -> Result<bool, ScanError> {
        let Some(loc_pos) = eocd_pos.checked_sub(20) else {
            return Ok(false);
        };
        let mut loc = [0u8; 20];
        r.seek(SeekFrom::Start(loc_pos)).map_err(io)?;
        r.read_exact(&mut loc).map_err(io)?;
        Ok(u32_at(&loc, 0) == Some(ZIP64_LOCATOR_SIG) && u64_at(&loc, 8) == Some(cd_end))
    };
    if cd_end != dir_end && !(dir_end == eocd_pos && zip64_between()?) {
        return Err(corrupt(
            "the central directory does not end where its end record begins (data between them, or more than one end record)",
        ));
    }
    // A record is at least 46 bytes: a count the size cannot hold is a lie.
    if count.saturating_mul(46) > cd_size {
        return Err(corrupt("central directory is smaller than its entry count"));
    }
    r.seek(SeekFrom::Start(cd_offset)).map_err(io)?;
    let mut cd = BufReader::new(r.take(cd_size));
    let mut entries = Vec::with_capacity(count.min(4096) as usize);
    for i in 0..count {
        let mut h = [0u8; 46];
        cd.read_exact(&mut h)
            .map_err(|_| corrupt(format!("central directory record {i} is truncated")))?;
        if u32_at(&h, 0) != Some(CDH_SIG) {
            return Err(corrupt(format!(
                "central directory record {i} has a bad signature"
            )));
        }
        let host_os = h[5];
        let method = u16_at(&h, 10).unwrap_or(0);
        let mut compressed_size = u64::from(u32_at(&h, 20).unwrap_or(0));
        let mut size = u64::from(u32_at(&h, 24).unwrap_or(0));
        let name_len = usize::from(u16_at(&h, 28).unwrap_or(0));
        let extra_len = usize::from(u16_at(&h, 30).unwrap_or(0));
        let comment_len = usize::from(u16_at(&h, 32).unwrap_or(0));
        let external_attributes = u32_at(&h, 38).unwrap_or(0);
        let mut var = vec![0u8; name_len + extra_len + comment_len];
        cd.read_exact(&mut var)
            .map_err(|_| corrupt(format!("central directory record {i} is truncated")))?;
        let name_raw = &var[..name_len];
        let extra = &var[name_len..name_len + extra_len];
        // Zip64 extended information: the 64-bit sizes replace the saturated
        // 32-bit ones, in this order, only for the fields that are saturated.
        let mut at = 0;
        while at + 4 <= extra.len() {
            let id = u16_at(extra, at).unwrap_or(0);
            let flen = usize::from(u16_at(extra, at + 2).unwrap_or(0));
            let body = extra.get(at + 4..at + 4 + flen).unwrap_or(&[]);
            if id == 0x0001 {
                let mut p = 0;
                if size == 0xFFFF_FFFF {
                    size = u64_at(body, p).ok_or_else(|| corrupt("bad zip64 extra field"))?;
                    p += 8;
                }
                if compressed_size == 0xFFFF_FFFF {
                    compressed_size =
                        u64_at(body, p).ok_or_else(|| corrupt("bad zip64 extra field"))?;
                }
            }
            at += 4 + flen;
        }
        let (name, utf8) = match std::str::from_utf8(name_raw) {
            Ok(s) => (s.to_string(), true),
            Err(_) => (String::from_utf8_lossy(name_raw).into_owned(), false),
        };
        entries.push(RawEntry {
            name,
            utf8,
            compressed_size,
            size,
            method,
            external_attributes,
            host_os,
        });
    }
    Ok(entries)
}
