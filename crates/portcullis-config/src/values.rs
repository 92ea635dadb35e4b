//! Scalar value types of the config language: durations (`250ms`, `10s`, `5m`, `1h`),
//! rates (`N/s`, `N/m`, `N/h`), quotas (`N/day`, `N/month`) and byte sizes.
//!
//! Each parses from its string form during deserialization and describes itself to the JSON
//! Schema with the same pattern, so a schema-valid document always deserializes.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// Pattern shared by the schema and the parser.
pub const DURATION_PATTERN: &str = r"^[0-9]+(ms|s|m|h)$";
pub const RATE_PATTERN: &str = r"^[0-9]+/(s|m|h)$";
pub const QUOTA_PATTERN: &str = r"^[0-9]+/(day|month)$";

/// A duration written as `250ms`, `10s`, `5m` or `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationValue(pub Duration);

impl DurationValue {
    /// Parses the config form; `None` when it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let split = text.find(|c: char| !c.is_ascii_digit())?;
        let (digits, unit) = text.split_at(split);
        let n: u64 = digits.parse().ok()?;
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            _ => return None,
        };
        Some(Self(d))
    }
}

impl fmt::Display for DurationValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(3_600_000) && ms > 0 {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms.is_multiple_of(60_000) && ms > 0 {
            write!(f, "{}m", ms / 60_000)
        } else if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

/// The unit a rate or quota counts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    Second,
    Minute,
    Hour,
    Day,
    Month,
}

impl Per {
    fn suffix(self) -> &'static str {
        match self {
            Self::Second => "s",
            Self::Minute => "m",
            Self::Hour => "h",
            Self::Day => "day",
            Self::Month => "month",
        }
    }
}

/// A steady rate: `N/s`, `N/m`, `N/h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateValue {
    pub count: u64,
    pub per: Per,
}

impl RateValue {
    pub fn parse(text: &str) -> Option<Self> {
        let (count, per) = split_count(text)?;
        let per = match per {
            "s" => Per::Second,
            "m" => Per::Minute,
            "h" => Per::Hour,
            _ => return None,
        };
        Some(Self { count, per })
    }

    /// The window the count is spread over.
    pub fn period(&self) -> Duration {
        match self.per {
            Per::Second => Duration::from_secs(1),
            Per::Minute => Duration::from_secs(60),
            // Day and Month never occur in a rate; the parser refuses them.
            Per::Hour | Per::Day | Per::Month => Duration::from_secs(3600),
        }
    }
}

/// A quota per calendar period (UTC): `N/day`, `N/month`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaValue {
    pub count: u64,
    pub per: Per,
}

impl QuotaValue {
    pub fn parse(text: &str) -> Option<Self> {
        let (count, per) = split_count(text)?;
        let per = match per {
            "day" => Per::Day,
            "month" => Per::Month,
            _ => return None,
        };
        Some(Self { count, per })
    }
}

fn split_count(text: &str) -> Option<(u64, &str)> {
    let (count, per) = text.split_once('/')?;
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((count.parse().ok()?, per))
}

/// A size in bytes, written as a plain integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(transparent)]
pub struct ByteSize(pub u64);

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "minimum": 0, "description": "A size in bytes." })
    }
}

macro_rules! string_value {
    ($ty:ident, $pattern:expr, $what:literal, $display:expr) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = Cow::<str>::deserialize(deserializer)?;
                $ty::parse(&text).ok_or_else(|| {
                    de::Error::custom(format!(concat!("expected ", $what, ", got {:?}"), text))
                })
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let display: fn(&$ty) -> String = $display;
                serializer.serialize_str(&display(self))
            }
        }

        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                stringify!($ty).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "pattern": $pattern, "description": $what })
            }
        }
    };
}

string_value!(DurationValue, DURATION_PATTERN, "a duration such as 250ms, 10s, 5m or 1h", |d| d.to_string());
string_value!(RateValue, RATE_PATTERN, "a rate such as 100/s, 10/m or 5/h", |r| format!(
    "{}/{}",
    r.count,
    r.per.suffix()
));
string_value!(QuotaValue, QUOTA_PATTERN, "a quota such as 10000/day or 1000000/month", |q| {
    format!("{}/{}", q.count, q.per.suffix())
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(DurationValue::parse("250ms"), Some(DurationValue(Duration::from_millis(250))));
        assert_eq!(DurationValue::parse("10s"), Some(DurationValue(Duration::from_secs(10))));
        assert_eq!(DurationValue::parse("5m"), Some(DurationValue(Duration::from_secs(300))));
        assert_eq!(DurationValue::parse("1h"), Some(DurationValue(Duration::from_secs(3600))));
        for bad in ["", "10", "s", "1.5s", "10d", "-1s", "99999999999999999999h"] {
            assert_eq!(DurationValue::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations_round_trip_through_display() {
        for text in ["250ms", "10s", "5m", "1h", "0s"] {
            assert_eq!(DurationValue::parse(text).map(|d| d.to_string()).as_deref(), Some(text));
        }
    }

    #[test]
    fn rates_and_quotas_refuse_each_others_units() {
        assert_eq!(RateValue::parse("100/s").map(|r| r.count), Some(100));
        assert_eq!(RateValue::parse("10/m").map(|r| r.period()), Some(Duration::from_secs(60)));
        assert_eq!(RateValue::parse("10/day"), None);
        assert_eq!(QuotaValue::parse("10000/day").map(|q| q.per), Some(Per::Day));
        assert_eq!(QuotaValue::parse("5/s"), None);
        assert_eq!(QuotaValue::parse("/month"), None);
    }
}
