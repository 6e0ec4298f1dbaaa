//! The small string grammars of spec values: durations, latency bounds,
//! names and label keys. Pure functions; errors carry the byte offset of the
//! problem inside the string so the reader can point at the exact column.

use crate::spec::model::{CompareOp, LatencyBound, Minutes};
use crate::yaml::ValueError;

fn err(offset: usize, message: impl Into<String>) -> ValueError {
    ValueError { offset, message: message.into() }
}

/// `5m`, `1h`, `28d`, `4w`: a positive whole number and one unit.
pub fn duration(text: &str) -> Result<Minutes, ValueError> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if text.is_empty() {
        return Err(err(0, "empty duration; expected e.g. `5m`, `1h`, `28d`, `4w`"));
    }
    if digits == 0 {
        return Err(err(
            0,
            format!("`{text}` is not a duration; expected a whole number and a unit, e.g. `5m`, `1h`, `28d`, `4w`"),
        ));
    }
    let unit = &text[digits..];
    let per_unit: u64 = match unit {
        "m" => 1,
        "h" => 60,
        "d" => 1440,
        "w" => 7 * 1440,
        "" => {
            return Err(err(digits, format!("`{text}` has no unit; use m, h, d or w")));
        }
        "s" | "ms" | "us" => {
            return Err(err(digits, format!("`{text}`: durations here are whole minutes; use m, h, d or w")));
        }
        _ => {
            return Err(err(digits, format!("unknown unit `{unit}` in `{text}`; use m, h, d or w")));
        }
    };
    let n: u64 = text[..digits].parse().map_err(|_| err(0, format!("`{text}` is too long")))?;
    if n == 0 {
        return Err(err(0, format!("`{text}` is zero; durations must be positive")));
    }
    match n.checked_mul(per_unit) {
        Some(m) if m <= u32::MAX as u64 => Ok(Minutes(m as u32)),
        _ => Err(err(0, format!("`{text}` is too long"))),
    }
}

/// `"<= 800ms"`, `"< 1.5s"`, `"> 50us"`: an operator, a positive number and
/// a unit (us, ms, s). The threshold is kept in milliseconds.
pub fn latency(text: &str) -> Result<LatencyBound, ValueError> {
    let lead = text.len() - text.trim_start().len();
    let t = text.trim();
    let (op, rest) = if let Some(r) = t.strip_prefix("<=") {
        (CompareOp::Le, r)
    } else if let Some(r) = t.strip_prefix(">=") {
        (CompareOp::Ge, r)
    } else if let Some(r) = t.strip_prefix('<') {
        (CompareOp::Lt, r)
    } else if let Some(r) = t.strip_prefix('>') {
        (CompareOp::Gt, r)
    } else {
        return Err(err(lead, format!("`{t}`: a latency bound starts with <, <=, > or >=, e.g. `<= 800ms`")));
    };
    let at = lead + (t.len() - rest.len()) + (rest.len() - rest.trim_start().len());
    let rest = rest.trim_start();
    let num_len = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
    if num_len == 0 {
        return Err(err(at, format!("expected a number after `{}` in `{t}`", op.as_str())));
    }
    let value: f64 = rest[..num_len].parse().map_err(|_| err(at, format!("`{}` is not a number", &rest[..num_len])))?;
    let unit_at = at + num_len;
    let unit = rest[num_len..].trim_start();
    let unit_at = unit_at + (rest.len() - num_len - unit.len());
    let factor = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "" => return Err(err(unit_at, format!("`{t}` has no unit; use us, ms or s"))),
        _ => {
            return Err(err(unit_at, format!("unknown latency unit `{unit}`; use us, ms or s")));
        }
    };
    if !(value > 0.0 && value.is_finite()) {
        return Err(err(at, "the latency threshold must be positive"));
    }
    Ok(LatencyBound { op, threshold_ms: value * factor })
}

/// SLO, SLI and service names: `[a-z0-9]([a-z0-9-]*[a-z0-9])?`, at most 63
/// characters (a DNS label, so names fit metric labels and URLs).
pub fn name(text: &str) -> Result<(), ValueError> {
    const RULE: &str =
        "names are lower-case letters, digits and `-`, start and end with a letter or digit, at most 63 characters";
    if text.is_empty() {
        return Err(err(0, format!("empty name; {RULE}")));
    }
    if text.len() > 63 {
        return Err(err(63, format!("name is {} characters long; {RULE}", text.len())));
    }
    if let Some(i) = text.bytes().position(|b| !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')) {
        let c = text[i..].chars().next().unwrap_or(' ');
        return Err(err(i, format!("`{c}` is not allowed in a name; {RULE}")));
    }
    if text.starts_with('-') {
        return Err(err(0, format!("a name cannot start with `-`; {RULE}")));
    }
    if text.ends_with('-') {
        return Err(err(text.len() - 1, format!("a name cannot end with `-`; {RULE}")));
    }
    Ok(())
}

/// Label keys: `[a-zA-Z_][a-zA-Z0-9_]*` (valid Prometheus label names).
pub fn label_key(text: &str) -> Result<(), ValueError> {
    const RULE: &str = "label keys match [a-zA-Z_][a-zA-Z0-9_]*";
    match text.bytes().next() {
        None => return Err(err(0, format!("empty label key; {RULE}"))),
        Some(b) if b.is_ascii_digit() => {
            return Err(err(0, format!("label key `{text}` starts with a digit; {RULE}")));
        }
        _ => {}
    }
    if let Some(i) = text.bytes().position(|b| !(b.is_ascii_alphanumeric() || b == b'_')) {
        let c = text[i..].chars().next().unwrap_or(' ');
        return Err(err(i, format!("`{c}` is not allowed in label key `{text}`; {RULE}")));
    }
    Ok(())
}

pub const HTTP_METHODS: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("5m"), Ok(Minutes(5)));
        assert_eq!(duration("1h"), Ok(Minutes(60)));
        assert_eq!(duration("28d"), Ok(Minutes(28 * 1440)));
        assert_eq!(duration("4w"), Ok(Minutes(4 * 7 * 1440)));
        assert_eq!(duration("28x").unwrap_err().offset, 2);
        assert_eq!(duration("x").unwrap_err().offset, 0);
        assert!(duration("0m").is_err());
        assert!(duration("30s").is_err());
        assert!(duration("99999999999999999999d").is_err());
        assert!(duration("9999999w").is_err());
    }

    #[test]
    fn latencies() {
        let l = latency("<= 800ms").unwrap();
        assert_eq!((l.op, l.threshold_ms), (CompareOp::Le, 800.0));
        let l = latency("< 1.5s").unwrap();
        assert_eq!((l.op, l.threshold_ms), (CompareOp::Lt, 1500.0));
        let l = latency(">=250us").unwrap();
        assert_eq!((l.op, l.threshold_ms), (CompareOp::Ge, 0.25));
        assert_eq!(latency("<= 800 mins").unwrap_err().offset, 7);
        assert_eq!(latency("800ms").unwrap_err().offset, 0);
        assert_eq!(latency("<= fast").unwrap_err().offset, 3);
        assert!(latency("< 0ms").is_err());
        assert!(latency("< 1.2.3ms").is_err());
    }

    #[test]
    fn names_and_keys() {
        assert!(name("checkout-availability").is_ok());
        assert!(name("a").is_ok());
        assert_eq!(name("Checkout").unwrap_err().offset, 0);
        assert_eq!(name("ab-").unwrap_err().offset, 2);
        assert!(name(&"a".repeat(64)).is_err());
        assert!(label_key("team_1").is_ok());
        assert!(label_key("1team").is_err());
        assert_eq!(label_key("te-am").unwrap_err().offset, 2);
    }
}
