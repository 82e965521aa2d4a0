//! A deliberately minimal zip writer that does what a real writer refuses
//! to: duplicate names, `..` and absolute names, symbolic links, device
//! files, lying sizes. It exists to build the corpus of bad packages and
//! fuzz seeds; never use it to write real packages ([`crate::PackageWriter`]
//! does that).

/// One entry, stored (uncompressed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawZipEntry {
    /// Name bytes, as written (need not be UTF-8).
    pub name: Vec<u8>,
    pub data: Vec<u8>,
    /// Unix mode including file-type bits (`0o120777` is a symlink); `None`
    /// writes an MS-DOS entry without one.
    pub unix_mode: Option<u32>,
    /// Overrides the declared uncompressed size.
    pub declared_size: Option<u32>,
}

impl RawZipEntry {
    /// A regular file, mode 0644.
    pub fn file(name: impl AsRef<[u8]>, data: impl Into<Vec<u8>>) -> Self {
        RawZipEntry {
            name: name.as_ref().to_vec(),
            data: data.into(),
            unix_mode: Some(0o100644),
            declared_size: None,
        }
    }

    /// A symbolic link to `target`.
    pub fn symlink(name: impl AsRef<[u8]>, target: &str) -> Self {
        RawZipEntry {
            unix_mode: Some(0o120777),
            ..Self::file(name, target.as_bytes())
        }
    }

    pub fn mode(mut self, mode: u32) -> Self {
        self.unix_mode = Some(mode);
        self
    }
}

/// CRC-32 (IEEE), bitwise: speed does not matter here.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Writes the entries as a stored zip.
pub fn build(entries: &[RawZipEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        let crc = crc32(&e.data);
        let size = e.declared_size.unwrap_or(e.data.len() as u32);
        let compressed = e.data.len() as u32;
        let utf8_flag: u16 = if std::str::from_utf8(&e.name).is_ok() {
            1 << 11
        } else {
            0
        };
        // Local header.
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&utf8_flag.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // stored
        out.extend_from_slice(&0u32.to_le_bytes()); // time, date
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&compressed.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&e.name);
        out.extend_from_slice(&e.data);
        // Central directory record.
        let made_by: u16 = if e.unix_mode.is_some() {
            (3 << 8) | 20
        } else {
            20
        };
        let attrs = e.unix_mode.map(|m| m << 16).unwrap_or(0);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&made_by.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&utf8_flag.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u32.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&compressed.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0u8; 8]); // extra, comment, disk, internal attrs
        central.extend_from_slice(&attrs.to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(&e.name);
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn a_real_zip_library_reads_what_it_writes() {
        let z = build(&[RawZipEntry::file("a/b.txt", b"hello".to_vec())]);
        let mut a = zip::ZipArchive::new(std::io::Cursor::new(z)).unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut a.by_name("a/b.txt").unwrap(), &mut s).unwrap();
        assert_eq!(s, "hello");
    }
}
