//! Values that config readers share: durations, secrets read from a file or
//! an environment variable, paths relative to the config file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::secret::Secret;
use crate::yaml::fields::{Ctx, Fields};

/// A path from the config, relative to the config file's directory `base`.
pub fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() { p.to_path_buf() } else { base.join(p) }
}

/// A secret from `<key>_file` (a file holding it) or `<key>_env` (an
/// environment variable), read now: a missing file or variable is a config
/// error, not a surprise at the first use. `Some(None)` when neither is set.
pub fn read_secret(cx: &mut Ctx<'_>, f: &Fields<'_>, base: &Path, key: &str, what: &str) -> Option<Option<Secret>> {
    let (file_key, env_key) = (format!("{key}_file"), format!("{key}_env"));
    match (f.get(&file_key), f.get(&env_key)) {
        (Some(_), Some(n)) => {
            cx.err(n.pos, format!("set `{file_key}` or `{env_key}`, not both"));
            None
        }
        (Some(n), None) => {
            let t = cx.text(n, &file_key)?;
            let path = resolve(base, t);
            match std::fs::read_to_string(&path) {
                Ok(s) if !s.trim().is_empty() => Some(Some(Secret::new(s.trim().to_string()))),
                Ok(_) => {
                    cx.err(n.pos, format!("`{}` ({what}) is empty", path.display()));
                    None
                }
                Err(e) => {
                    cx.err(n.pos, format!("cannot read `{}` ({what}): {e}", path.display()));
                    None
                }
            }
        }
        (None, Some(n)) => {
            let var = cx.text(n, &env_key)?;
            match std::env::var(var) {
                Ok(s) if !s.trim().is_empty() => Some(Some(Secret::new(s.trim().to_string()))),
                _ => {
                    cx.err(n.pos, format!("environment variable `{var}` ({what}) is not set or empty"));
                    None
                }
            }
        }
        (None, None) => Some(None),
    }
}

/// An http(s) base URL without user, query or fragment (a trailing `/`
/// dropped), as the config's API endpoints are given; `None` for anything else.
pub fn base_url(t: &str) -> Option<String> {
    let t = t.trim().trim_end_matches('/');
    let ok = url::Url::parse(t).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host_str().is_some()
            && u.username().is_empty()
            && u.password().is_none()
            && u.query().is_none()
            && u.fragment().is_none()
    });
    ok.then(|| t.to_string())
}

/// A length: `250ms`, `5s`, `1m`, `2h`, `3d`, `1w`, or several joined
/// (`1h30m`). Whole numbers only; `None` for anything else or an overflow.
pub fn parse_duration(t: &str) -> Option<Duration> {
    let mut rest = t.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        let after = &rest[digits..];
        let unit_len = after.find(|c: char| c.is_ascii_digit()).unwrap_or(after.len());
        let part = match &after[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            "d" => Duration::from_secs(n.checked_mul(86_400)?),
            "w" => Duration::from_secs(n.checked_mul(7 * 86_400)?),
            _ => return None,
        };
        total = total.checked_add(part)?;
        rest = &after[unit_len..];
    }
    Some(total)
}
