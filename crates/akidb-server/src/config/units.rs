//! Values with units in the configuration: sizes (`512MiB`, `1GiB`, `1GB`, or a bare number of
//! bytes) and durations (`250ms`, `10s`, `5m`, `1h 30m`, or a bare number of seconds).
//!
//! Each reads the same way from a flag, an `AKIDB_*` variable (`FromStr`) and the TOML file (a
//! string with a unit or a bare integer), so the older keys that took plain numbers
//! (`flush_idle_secs = 10`, `wal_budget_bytes = 1073741824`) keep their meaning. Each also
//! serializes back to TOML that reads the same, which is how flags are laid over the file.
//! Parsing is `bytesize`'s and `humantime`'s; this file only picks the base unit of a bare number.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

/// A duration; a bare number is seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secs(pub Duration);

impl Size {
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// The size as a `usize` (saturating; only a 32-bit host could saturate).
    pub fn usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Size, String> {
        let t = s.trim();
        if let Ok(n) = t.parse::<u64>() {
            return Ok(Size(n));
        }
        t.parse::<bytesize::ByteSize>()
            .map(|b| Size(b.as_u64()))
            .map_err(|e| {
                format!(
                    "{s:?} is not a size: give bytes or a number with a unit (512MiB, 1GiB): {e}"
                )
            })
    }
}

impl FromStr for Secs {
    type Err = String;

    fn from_str(s: &str) -> Result<Secs, String> {
        let t = s.trim();
        if let Ok(n) = t.parse::<u64>() {
            return Ok(Secs(Duration::from_secs(n)));
        }
        humantime::parse_duration(t).map(Secs).map_err(|e| {
            format!("{s:?} is not a duration: give seconds or a number with a unit (250ms, 10s, 5m, 1h): {e}")
        })
    }
}

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0.as_millis())
    }
}

/// What TOML may hold for a value with a unit: a bare integer or a string with a unit.
#[derive(Deserialize)]
#[serde(untagged)]
enum Written {
    Number(u64),
    Text(String),
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Size, D::Error> {
        match Written::deserialize(d)? {
            Written::Number(n) => Ok(Size(n)),
            Written::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Secs, D::Error> {
        match Written::deserialize(d)? {
            Written::Number(n) => Ok(Secs(Duration::from_secs(n))),
            Written::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl Serialize for Secs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_bytes_or_units() {
        assert_eq!("1024".parse::<Size>().unwrap(), Size(1024));
        assert_eq!("512MiB".parse::<Size>().unwrap(), Size(512 << 20));
        assert_eq!("1 GiB".parse::<Size>().unwrap(), Size(1 << 30));
        assert_eq!("1GB".parse::<Size>().unwrap(), Size(1_000_000_000));
        assert!("lots".parse::<Size>().unwrap_err().contains("512MiB"));
    }

    #[test]
    fn durations_take_seconds_or_units_and_round_trip() {
        assert_eq!("10".parse::<Secs>().unwrap(), Secs(Duration::from_secs(10)));
        assert_eq!(
            "250ms".parse::<Secs>().unwrap(),
            Secs(Duration::from_millis(250))
        );
        assert_eq!(
            "1h 30m".parse::<Secs>().unwrap(),
            Secs(Duration::from_secs(5400))
        );
        assert!("soon".parse::<Secs>().is_err());
        let d = Secs(Duration::from_millis(1500));
        assert_eq!(d.to_string().parse::<Secs>().unwrap(), d);
    }
}
