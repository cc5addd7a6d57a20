//! Typed field values: the bytes of one field read as its element's abstract data type.
//!
//! [`decode`] never fails: a value whose length or content does not fit its type (a 3-byte
//! IPv4 address, a boolean of 7, a string that is not UTF-8) is kept as [`Value::Bytes`], so
//! nothing an exporter sends is lost or can panic the decoder.
//!
//! ```
//! use botnest_wire::{value::{decode, Value}, DataType};
//! // RFC 7011 section 6.2: an unsigned64 counter sent in 2 bytes
//! assert_eq!(decode(DataType::Unsigned64, &[0x01, 0x00]), Value::Unsigned(256));
//! let mut json = String::new();
//! decode(DataType::MacAddress, &[0, 0x1b, 0x21, 0xaa, 0xbb, 0xcc]).write_json(&mut json);
//! assert_eq!(json, "\"00:1b:21:aa:bb:cc\"");
//! ```

use crate::ie::DataType;
use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Seconds from the NTP epoch (1900-01-01) to the UNIX epoch (1970-01-01).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// One field value, decoded by its abstract data type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// `unsigned8` to `unsigned64`, at any reduced size.
    Unsigned(u64),
    /// `signed8` to `signed64`, at any reduced size (sign-extended).
    Signed(i64),
    /// `float32` or `float64` (an 8-byte float may be sent in 4 bytes).
    Float(f64),
    /// `boolean`.
    Bool(bool),
    /// `macAddress`.
    Mac([u8; 6]),
    /// `ipv4Address`.
    Ipv4(Ipv4Addr),
    /// `ipv6Address`.
    Ipv6(Ipv6Addr),
    /// `string`: valid UTF-8, trailing NUL padding removed.
    String(&'a str),
    /// Any `dateTime*` type, as nanoseconds since the UNIX epoch.
    DateTimeNanos(u64),
    /// `octetArray`, structured data (RFC 6313 lists), and any value that does not fit its type.
    Bytes(&'a [u8]),
}

/// Reads a big-endian unsigned integer of 1 to 8 bytes, the hot path for counters and ports.
#[inline]
pub fn unsigned(bytes: &[u8]) -> Option<u64> {
    // The common widths get a load each; the rest fold byte by byte.
    match *bytes {
        [a] => Some(u64::from(a)),
        [a, b] => Some(u64::from(u16::from_be_bytes([a, b]))),
        [a, b, c, d] => Some(u64::from(u32::from_be_bytes([a, b, c, d]))),
        [a, b, c, d, e, f, g, h] => Some(u64::from_be_bytes([a, b, c, d, e, f, g, h])),
        _ if bytes.is_empty() || bytes.len() > 8 => None,
        _ => Some(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))),
    }
}

/// Decodes a field value as `data_type`; see the module documentation for what happens to
/// values that do not fit.
pub fn decode(data_type: DataType, bytes: &[u8]) -> Value<'_> {
    decode_typed(data_type, bytes).unwrap_or(Value::Bytes(bytes))
}

fn decode_typed(data_type: DataType, bytes: &[u8]) -> Option<Value<'_>> {
    use DataType::*;
    Some(match data_type {
        // RFC 7011 section 6.2: integers may be sent in fewer bytes than their type, never more.
        Unsigned8 | Unsigned16 | Unsigned32 | Unsigned64 => {
            Value::Unsigned(unsigned(at_most(bytes, int_width(data_type))?)?)
        }
        Signed8 | Signed16 | Signed32 | Signed64 => {
            Value::Signed(signed(at_most(bytes, int_width(data_type))?)?)
        }
        Float32 => Value::Float(f64::from(f32::from_be_bytes(bytes.try_into().ok()?))),
        // RFC 7011 section 6.2: a float64 may be sent as a float32.
        Float64 => match bytes.len() {
            4 => Value::Float(f64::from(f32::from_be_bytes(bytes.try_into().ok()?))),
            _ => Value::Float(f64::from_be_bytes(bytes.try_into().ok()?)),
        },
        // RFC 7011 section 6.1.5: 1 is true, 2 is false; anything else is not a boolean.
        Boolean => match bytes {
            [1] => Value::Bool(true),
            [2] => Value::Bool(false),
            _ => return None,
        },
        MacAddress => Value::Mac(bytes.try_into().ok()?),
        Ipv4Address => Value::Ipv4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        Ipv6Address => Value::Ipv6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        String => Value::String(string(bytes)?),
        DateTimeSeconds => Value::DateTimeNanos(
            u64::from(u32::from_be_bytes(bytes.try_into().ok()?)) * NANOS_PER_SEC,
        ),
        DateTimeMilliseconds => {
            Value::DateTimeNanos(u64::from_be_bytes(bytes.try_into().ok()?).checked_mul(1_000_000)?)
        }
        DateTimeMicroseconds => Value::DateTimeNanos(ntp(bytes, true)?),
        DateTimeNanoseconds => Value::DateTimeNanos(ntp(bytes, false)?),
        OctetArray | BasicList | SubTemplateList | SubTemplateMultiList => return None,
    })
}

fn int_width(data_type: DataType) -> usize {
    match data_type {
        DataType::Unsigned8 | DataType::Signed8 => 1,
        DataType::Unsigned16 | DataType::Signed16 => 2,
        DataType::Unsigned32 | DataType::Signed32 => 4,
        _ => 8,
    }
}

fn at_most(bytes: &[u8], width: usize) -> Option<&[u8]> {
    (bytes.len() <= width).then_some(bytes)
}

/// Reads a big-endian two's complement integer of 1 to 8 bytes, extending its sign.
fn signed(bytes: &[u8]) -> Option<i64> {
    let shift = 64 - 8 * bytes.len() as u32;
    // Moving the value to the top and back down with an arithmetic shift copies the sign bit.
    Some(((unsigned(bytes)? << shift) as i64) >> shift)
}

/// A UTF-8 string without the NUL padding that exporters put after short values in
/// fixed-length fields.
fn string(bytes: &[u8]) -> Option<&str> {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    std::str::from_utf8(&bytes[..end]).ok()
}

/// RFC 7011 sections 6.1.9 and 6.1.10: NTP format, 32 bits of seconds since 1900 and 32 bits of
/// binary fraction. Microsecond values only carry microseconds (the low 11 bits of the fraction
/// should be zero), so their fraction is cut to whole microseconds rather than showing noise.
/// Times before 1970 cannot be nanoseconds since the UNIX epoch and stay bytes.
fn ntp(bytes: &[u8], micros: bool) -> Option<u64> {
    let raw = u64::from_be_bytes(bytes.try_into().ok()?);
    let secs = (raw >> 32).checked_sub(NTP_UNIX_OFFSET)?;
    let fraction = raw & 0xffff_ffff;
    let nanos = if micros {
        ((fraction * 1_000_000) >> 32) * 1_000
    } else {
        (fraction * NANOS_PER_SEC) >> 32
    };
    Some(secs * NANOS_PER_SEC + nanos)
}

impl Value<'_> {
    /// Appends the value as JSON: numbers and booleans bare; addresses, MACs, strings and
    /// RFC 3339 UTC times as strings; bytes as a lowercase hex string. A float that is not
    /// finite has no JSON number and is written as `null`.
    pub fn write_json(&self, out: &mut String) {
        match self {
            Value::Unsigned(_) | Value::Signed(_) | Value::Bool(_) => {
                let _ = write!(out, "{self}");
            }
            Value::Float(f) if !f.is_finite() => out.push_str("null"),
            Value::Float(_) => {
                let _ = write!(out, "{self}");
            }
            Value::String(s) => write_json_string(s, out),
            _ => {
                // The remaining forms print only hex digits, digits, '.', ':', '-' and letters,
                // none of which JSON needs escaped.
                let _ = write!(out, "\"{self}\"");
            }
        }
    }
}

/// Plain text, as shown in tables: the JSON form without quotes.
impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Unsigned(v) => write!(f, "{v}"),
            Value::Signed(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Mac(m) => write!(
                f,
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            ),
            Value::Ipv4(a) => write!(f, "{a}"),
            Value::Ipv6(a) => write!(f, "{a}"),
            Value::String(s) => f.write_str(s),
            Value::DateTimeNanos(ns) => write_rfc3339(*ns, f),
            Value::Bytes(b) => b.iter().try_for_each(|byte| write!(f, "{byte:02x}")),
        }
    }
}

fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes nanoseconds since the UNIX epoch as an RFC 3339 UTC time, with as many fraction
/// digits as the value needs: none, 3, 6 or 9.
///
/// The calendar conversion is written here rather than taken from a time crate: it is a dozen
/// lines of integer arithmetic over a range (1970 to 2554) that needs no time zones or leap
/// seconds, and formatting straight into the caller's buffer keeps the JSON hot path free of
/// allocations.
fn write_rfc3339(ns: u64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let secs = ns / NANOS_PER_SEC;
    let nanos = ns % NANOS_PER_SEC;
    let (year, month, day) = civil_from_days(secs / 86_400);
    let sod = secs % 86_400;
    write!(
        f,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )?;
    match nanos {
        0 => {}
        n if n % 1_000_000 == 0 => write!(f, ".{:03}", n / 1_000_000)?,
        n if n % 1_000 == 0 => write!(f, ".{:06}", n / 1_000)?,
        n => write!(f, ".{n:09}")?,
    }
    f.write_str("Z")
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
///
/// Counts from 0000-03-01 so that the leap day ends each year, splits the count into 400-year
/// eras of 146097 days, then finds the year of the era, the day of that March-based year and its
/// month (the month lengths from March repeat in a 153-day, five-month pattern).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // 0 is March
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json(v: Value) -> String {
        let mut s = String::new();
        v.write_json(&mut s);
        s
    }

    #[test]
    fn unsigned_helper_reads_one_to_eight_bytes() {
        assert_eq!(unsigned(&[0x12]), Some(0x12));
        assert_eq!(unsigned(&[1, 0, 0, 0, 0, 0, 0, 0]), Some(1 << 56));
        assert_eq!(unsigned(&[]), None);
        assert_eq!(unsigned(&[0; 9]), None);
    }

    #[test]
    fn reduced_size_integers() {
        // unsigned64 in 4 bytes, unsigned32 in 1
        assert_eq!(
            decode(DataType::Unsigned64, &[0, 0, 0x12, 0x34]),
            Value::Unsigned(0x1234)
        );
        assert_eq!(decode(DataType::Unsigned32, &[7]), Value::Unsigned(7));
        // signed32 -2 in 2 bytes (0xfffe) and +2 in 1 byte
        assert_eq!(decode(DataType::Signed32, &[0xff, 0xfe]), Value::Signed(-2));
        assert_eq!(decode(DataType::Signed64, &[0x02]), Value::Signed(2));
        assert_eq!(decode(DataType::Signed8, &[0x80]), Value::Signed(-128));
    }

    #[test]
    fn integers_longer_than_their_type_stay_bytes() {
        let b = [0, 0, 0, 1];
        assert_eq!(decode(DataType::Unsigned16, &b), Value::Bytes(&b));
        assert_eq!(decode(DataType::Unsigned8, &[]), Value::Bytes(&[]));
    }

    #[test]
    fn floats_including_float64_sent_as_float32() {
        assert_eq!(
            decode(DataType::Float64, &1.5f64.to_be_bytes()),
            Value::Float(1.5)
        );
        assert_eq!(
            decode(DataType::Float64, &0.25f32.to_be_bytes()),
            Value::Float(0.25)
        );
        assert_eq!(
            decode(DataType::Float32, &(-2.0f32).to_be_bytes()),
            Value::Float(-2.0)
        );
        let b = 1.5f64.to_be_bytes();
        assert_eq!(decode(DataType::Float32, &b), Value::Bytes(&b));
        assert_eq!(json(Value::Float(f64::NAN)), "null");
        assert_eq!(json(Value::Float(-2.5)), "-2.5");
    }

    #[test]
    fn booleans_are_one_and_two() {
        assert_eq!(decode(DataType::Boolean, &[1]), Value::Bool(true));
        assert_eq!(decode(DataType::Boolean, &[2]), Value::Bool(false));
        assert_eq!(decode(DataType::Boolean, &[0]), Value::Bytes(&[0]));
        assert_eq!(decode(DataType::Boolean, &[0, 1]), Value::Bytes(&[0, 1]));
        assert_eq!(json(Value::Bool(false)), "false");
    }

    #[test]
    fn addresses() {
        let v4 = decode(DataType::Ipv4Address, &[192, 0, 2, 1]);
        assert_eq!(json(v4), "\"192.0.2.1\"");
        let mut b = [0u8; 16];
        b[0] = 0x20;
        b[1] = 0x01;
        b[2] = 0x0d;
        b[3] = 0xb8;
        b[15] = 1;
        assert_eq!(json(decode(DataType::Ipv6Address, &b)), "\"2001:db8::1\"");
        assert_eq!(
            decode(DataType::Ipv4Address, &[1, 2, 3]),
            Value::Bytes(&[1, 2, 3])
        );
        let mac = decode(DataType::MacAddress, &[0xaa, 0xbb, 0xcc, 0, 1, 0xff]);
        assert_eq!(mac.to_string(), "aa:bb:cc:00:01:ff");
    }

    #[test]
    fn strings_drop_nul_padding_and_are_escaped() {
        assert_eq!(
            decode(DataType::String, b"eth0\0\0\0\0"),
            Value::String("eth0")
        );
        assert_eq!(decode(DataType::String, b"\0\0"), Value::String(""));
        let s = decode(DataType::String, b"a\"b\\c\n\x01");
        assert_eq!(json(s), r#""a\"b\\c\n\u0001""#);
        let bad = [0x66, 0xff, 0x6f];
        assert_eq!(decode(DataType::String, &bad), Value::Bytes(&bad));
        assert_eq!(json(Value::Bytes(&bad)), "\"66ff6f\"");
    }

    #[test]
    fn absolute_times_in_seconds_and_milliseconds() {
        // 2024-02-29T00:00:00Z is 1709164800 s
        let secs = 1_709_164_800u32.to_be_bytes();
        assert_eq!(
            json(decode(DataType::DateTimeSeconds, &secs)),
            "\"2024-02-29T00:00:00Z\""
        );
        let ms = 1_709_164_800_123u64.to_be_bytes();
        let ms = decode(DataType::DateTimeMilliseconds, &ms);
        assert_eq!(ms, Value::DateTimeNanos(1_709_164_800_123_000_000));
        assert_eq!(ms.to_string(), "2024-02-29T00:00:00.123Z");
        // milliseconds beyond what u64 nanoseconds hold stay bytes
        let far = u64::MAX.to_be_bytes();
        assert_eq!(
            decode(DataType::DateTimeMilliseconds, &far),
            Value::Bytes(&far)
        );
    }

    #[test]
    fn ntp_times_convert_to_unix_nanoseconds() {
        // 1970-01-01T00:00:01.5Z: NTP seconds 2208988801, fraction 0x8000_0000 (one half)
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&2_208_988_801u32.to_be_bytes());
        b[4..].copy_from_slice(&0x8000_0000u32.to_be_bytes());
        assert_eq!(
            decode(DataType::DateTimeNanoseconds, &b),
            Value::DateTimeNanos(1_500_000_000)
        );
        assert_eq!(
            decode(DataType::DateTimeMicroseconds, &b).to_string(),
            "1970-01-01T00:00:01.500Z"
        );
        // fraction 0xffff_ffff: just under a second, cut to whole microseconds
        b[4..].copy_from_slice(&[0xff; 4]);
        assert_eq!(
            decode(DataType::DateTimeMicroseconds, &b),
            Value::DateTimeNanos(1_999_999_000)
        );
        assert_eq!(
            decode(DataType::DateTimeNanoseconds, &b).to_string(),
            "1970-01-01T00:00:01.999999999Z"
        );
        // before 1970
        let early = [0u8; 8];
        assert_eq!(
            decode(DataType::DateTimeNanoseconds, &early),
            Value::Bytes(&early)
        );
    }

    #[test]
    fn calendar_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(951_782_400 / 86_400), (2000, 2, 29));
        assert_eq!(civil_from_days(4_102_444_800 / 86_400), (2100, 1, 1));
        let last = Value::DateTimeNanos(u64::from(u32::MAX) * NANOS_PER_SEC);
        assert_eq!(last.to_string(), "2106-02-07T06:28:15Z");
        assert_eq!(
            Value::DateTimeNanos(86_399_000_001_000).to_string(),
            "1970-01-01T23:59:59.000001Z"
        );
    }

    #[test]
    fn structured_data_and_octet_arrays_are_bytes() {
        for t in [
            DataType::OctetArray,
            DataType::BasicList,
            DataType::SubTemplateList,
            DataType::SubTemplateMultiList,
        ] {
            assert_eq!(decode(t, &[1, 2]), Value::Bytes(&[1, 2]));
        }
    }

    proptest! {
        #[test]
        fn decode_never_panics_and_json_is_valid(
            index in 0..DataType::ALL.len(),
            bytes in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let value = decode(DataType::ALL[index], &bytes);
            let text = json(value);
            let _ = value.to_string();
            prop_assert!(
                serde_json::from_str::<serde_json::Value>(&text).is_ok(),
                "{text}"
            );
        }

        #[test]
        fn reduced_size_unsigned_keeps_the_value(v in any::<u64>()) {
            let full = v.to_be_bytes();
            let skip = (v.leading_zeros() / 8).min(7) as usize;
            prop_assert_eq!(decode(DataType::Unsigned64, &full[skip..]), Value::Unsigned(v));
        }

        #[test]
        fn reduced_size_signed_keeps_the_value(v in any::<i32>()) {
            let full = i64::from(v).to_be_bytes();
            prop_assert_eq!(decode(DataType::Signed64, &full[4..]), Value::Signed(i64::from(v)));
        }
    }
}
