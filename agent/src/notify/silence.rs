//! Silences: "do not tell anyone about alerts whose labels look like this,
//! from then until then, because …". The model, its validation, and the
//! in-memory collection the dispatcher asks before it sends a notification.
//!
//! Matchers follow Alertmanager: `name=value`, `name!=value`, `name=~regex`,
//! `name!~regex`. A regex must match the whole value, and a label an alert
//! does not carry reads as the empty string. A silence mutes an alert while it
//! is active (`starts_at <= now < ends_at`) and every one of its matchers
//! matches the alert's labels.
//!
//! The labels an alert carries: `slo`, `service`, `severity` (`page`,
//! `ticket`), `kind` (`page`, `ticket`, `budget_exhausted`,
//! `time_to_exhaustion`), and the SLO's own `metadata.labels`.
//!
//! Persistence is the caller's: `store` keeps silences (table `silences`),
//! the API writes them, `Silences::restore` loads them back on start.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest a silence may last.
pub const MAX_DURATION_MS: i64 = 90 * DAY_MS;
/// Active and pending silences kept at once.
pub const MAX_SILENCES: usize = 1000;
/// Matchers per silence.
pub const MAX_MATCHERS: usize = 32;
/// Bytes of a matcher's value (and so of a regex pattern).
pub const MAX_VALUE_BYTES: usize = 1024;
/// Bytes of a label name.
pub const MAX_NAME_BYTES: usize = 128;
/// Bytes of a comment.
pub const MAX_COMMENT_BYTES: usize = 4096;
/// How long an expired silence stays listed (`?all=true`) before it is pruned.
pub const EXPIRED_RETENTION_MS: i64 = 7 * DAY_MS;
/// Memory a compiled regex may take. A 1 KiB pattern stays far below it
/// unless it repeats large classes (`\w{1000}`), which is refused.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// Nesting depth of groups and repetitions in a regex.
const REGEX_NEST_LIMIT: u32 = 32;

const DAY_MS: i64 = 24 * 3_600_000;

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchOp {
    #[serde(rename = "=")]
    Eq,
    #[serde(rename = "!=")]
    NotEq,
    #[serde(rename = "=~")]
    Regex,
    #[serde(rename = "!~")]
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::NotEq => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }

    pub fn parse(s: &str) -> Option<MatchOp> {
        [MatchOp::Eq, MatchOp::NotEq, MatchOp::Regex, MatchOp::NotRegex].into_iter().find(|op| op.as_str() == s)
    }
}

/// One condition on one label. Built only through [`Matcher::new`] (or
/// deserialization, which goes through it), so its regex always compiled.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "MatcherFields", into = "MatcherFields")]
pub struct Matcher {
    name: String,
    value: String,
    op: MatchOp,
    /// `^(?:value)$`, for `=~` and `!~`.
    regex: Option<regex_lite::Regex>,
}

/// A matcher as stored and shown: `{"name": "service", "value": "checkout", "op": "="}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatcherFields {
    name: String,
    value: String,
    op: MatchOp,
}

impl TryFrom<MatcherFields> for Matcher {
    type Error = SilenceError;
    fn try_from(f: MatcherFields) -> Result<Matcher, SilenceError> {
        Matcher::new(f.name, f.value, f.op)
    }
}

impl From<Matcher> for MatcherFields {
    fn from(m: Matcher) -> MatcherFields {
        MatcherFields { name: m.name, value: m.value, op: m.op }
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        (&self.name, &self.value, self.op) == (&other.name, &other.value, other.op)
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Matcher({self})")
    }
}

/// `service="checkout"`, `slo=~"checkout-.*"`: the value quoted as JSON.
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quoted = serde_json::to_string(&self.value).map_err(|_| fmt::Error)?;
        write!(f, "{}{}{quoted}", self.name, self.op.as_str())
    }
}

impl Matcher {
    /// Check the label name and the value's size, and compile a regex.
    pub fn new(name: impl Into<String>, value: impl Into<String>, op: MatchOp) -> Result<Matcher, SilenceError> {
        let (name, value) = (name.into(), value.into());
        if !is_label_name(&name) {
            return Err(SilenceError::BadLabelName(truncate(&name, 64)));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(SilenceError::ValueTooLong { name, max: MAX_VALUE_BYTES });
        }
        let regex = match op {
            MatchOp::Eq | MatchOp::NotEq => None,
            MatchOp::Regex | MatchOp::NotRegex => {
                let compile = |pattern: &str| {
                    regex_lite::RegexBuilder::new(pattern)
                        .size_limit(REGEX_SIZE_LIMIT)
                        .nest_limit(REGEX_NEST_LIMIT)
                        .build()
                        .map_err(|e| SilenceError::BadRegex { name: name.clone(), error: first_line(&e.to_string()) })
                };
                // The value on its own first: `a)|(b` would otherwise turn
                // the anchored `^(?:a)|(b)$` into an unanchored alternation.
                compile(&value)?;
                Some(compile(&format!("^(?:{value})$"))?)
            }
        };
        Ok(Matcher { name, value, op, regex })
    }

    /// Parse `name=value`, `name!=value`, `name=~regex` or `name!~regex`.
    /// The value may be in double quotes (JSON string syntax), which it
    /// must be to begin or end with a space.
    pub fn parse(text: &str) -> Result<Matcher, SilenceError> {
        let bad = || SilenceError::BadMatcher(truncate(text, 80));
        let t = text.trim();
        let name_end = t.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).ok_or_else(bad)?;
        let (name, rest) = t.split_at(name_end);
        let rest = rest.trim_start();
        let op = ["=~", "!~", "!=", "="]
            .into_iter()
            .find(|op| rest.starts_with(op))
            .and_then(MatchOp::parse)
            .ok_or_else(bad)?;
        let raw = rest[op.as_str().len()..].trim();
        let value = if raw.starts_with('"') {
            serde_json::from_str::<String>(raw).map_err(|_| bad())?
        } else {
            raw.to_string()
        };
        if name.is_empty() {
            return Err(bad());
        }
        Matcher::new(name, value, op)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    pub fn op(&self) -> MatchOp {
        self.op
    }

    /// Whether a label value (`""` when the label is missing) satisfies
    /// this matcher.
    pub fn matches_value(&self, v: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Eq, _) => v == self.value,
            (MatchOp::NotEq, _) => v != self.value,
            (MatchOp::Regex, Some(r)) => r.is_match(v),
            (MatchOp::NotRegex, Some(r)) => !r.is_match(v),
            // `Matcher::new` compiles every regex matcher.
            (MatchOp::Regex | MatchOp::NotRegex, None) => unreachable!("a regex matcher without its regex"),
        }
    }

    /// Whether this matcher accepts the alert's labels.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_value(labels.get(&self.name).map_or("", String::as_str))
    }
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, the Prometheus label name syntax.
pub fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= MAX_NAME_BYTES
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Where a silence is in its life at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SilenceState {
    /// It mutes matching alerts now.
    Active,
    /// It starts later.
    Pending,
    /// It ended (or was expired through the API).
    Expired,
}

impl SilenceState {
    pub const ALL: [SilenceState; 3] = [SilenceState::Active, SilenceState::Pending, SilenceState::Expired];

    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Active => "active",
            SilenceState::Pending => "pending",
            SilenceState::Expired => "expired",
        }
    }
}

/// A silence, as stored and as the API shows it (times in ms since the epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// 128 random bits, hex.
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    /// The name of the API token that created it.
    pub created_by: String,
    pub comment: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl Silence {
    pub fn state(&self, now_ms: i64) -> SilenceState {
        if now_ms >= self.ends_at_ms {
            SilenceState::Expired
        } else if now_ms < self.starts_at_ms {
            SilenceState::Pending
        } else {
            SilenceState::Active
        }
    }

    /// Whether this silence mutes an alert with these labels now: it is
    /// active and every matcher matches.
    pub fn matches(&self, labels: &BTreeMap<String, String>, now_ms: i64) -> bool {
        self.state(now_ms) == SilenceState::Active && self.matchers.iter().all(|m| m.matches(labels))
    }
}

/// What a caller asks for; [`Silences::add`] validates it and makes the
/// [`Silence`].
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub matchers: Vec<Matcher>,
    /// `None`: now. A start in the past also means now (a silence cannot
    /// mute what was already sent).
    pub starts_at_ms: Option<i64>,
    pub ends_at_ms: i64,
    pub comment: String,
    pub created_by: String,
}

/// Why a silence (or a matcher) was refused. The messages are shown to API
/// callers as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    #[error("a silence needs at least one matcher, such as service=checkout")]
    NoMatchers,
    #[error("a silence has at most {max} matchers")]
    TooManyMatchers { max: usize },
    #[error(
        "every matcher also matches an empty (missing) label, so the silence would mute every alert; add one that names a value, such as service=checkout"
    )]
    MatchesEverything,
    #[error("`{0}` is not a label name: use letters, digits and `_`, not starting with a digit, at most 128 bytes")]
    BadLabelName(String),
    #[error("`{0}` is not a matcher: write name=value, name!=value, name=~regex or name!~regex")]
    BadMatcher(String),
    #[error("the value of matcher `{name}` is longer than {max} bytes")]
    ValueTooLong { name: String, max: usize },
    #[error("the regex of matcher `{name}` does not compile: {error}")]
    BadRegex { name: String, error: String },
    #[error("the silence must end after it starts")]
    EndsBeforeStart,
    #[error("the silence must end in the future")]
    EndsInPast,
    #[error("a silence lasts at most {max_days} days")]
    TooLong { max_days: i64 },
    #[error("a silence needs a comment saying why (a ticket, an incident, a change)")]
    EmptyComment,
    #[error("the comment is longer than {max} bytes")]
    CommentTooLong { max: usize },
    #[error("{max} silences are already active or pending; expire some first")]
    TooMany { max: usize },
    #[error("no silence has the id `{0}`")]
    NotFound(String),
}

/// Every silence the agent knows, active, pending and recently expired.
#[derive(Debug, Clone, Default)]
pub struct Silences {
    by_id: BTreeMap<String, Silence>,
}

impl Silence {
    /// The silence as the store keeps it (JSON).
    pub fn to_record(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("silences serialize")
    }
}

impl Silences {
    /// Replace what is held with silences loaded from the store as `(id,
    /// json)`. Records that do not parse (a future version's, or a regex this
    /// build refuses) are skipped with a warning.
    pub fn restore(&mut self, records: Vec<(String, Vec<u8>)>) {
        self.by_id = records
            .into_iter()
            .filter_map(|(id, json)| match serde_json::from_slice::<Silence>(&json) {
                Ok(s) => Some((s.id.clone(), s)),
                Err(e) => {
                    tracing::warn!(silence = %crate::untrusted::Escaped(&id), error = %e, "skipping an unreadable stored silence");
                    None
                }
            })
            .collect();
    }

    /// Validate a draft and add the silence it describes, with a new id.
    pub fn add(&mut self, draft: Draft, now_ms: i64) -> Result<&Silence, SilenceError> {
        let s = self.check(draft, now_ms)?;
        let id = s.id.clone();
        Ok(self.by_id.entry(id).or_insert(s))
    }

    /// The silence a draft describes, with a new id, validated but not added
    /// (add it with [`Silences::put`] once it is stored).
    pub fn check(&self, d: Draft, now_ms: i64) -> Result<Silence, SilenceError> {
        if d.matchers.is_empty() {
            return Err(SilenceError::NoMatchers);
        }
        if d.matchers.len() > MAX_MATCHERS {
            return Err(SilenceError::TooManyMatchers { max: MAX_MATCHERS });
        }
        if d.matchers.iter().all(|m| m.matches_value("")) {
            return Err(SilenceError::MatchesEverything);
        }
        let starts_at_ms = d.starts_at_ms.map_or(now_ms, |s| s.max(now_ms));
        if d.ends_at_ms <= now_ms {
            return Err(SilenceError::EndsInPast);
        }
        if d.ends_at_ms <= starts_at_ms {
            return Err(SilenceError::EndsBeforeStart);
        }
        if d.ends_at_ms - starts_at_ms > MAX_DURATION_MS {
            return Err(SilenceError::TooLong { max_days: MAX_DURATION_MS / DAY_MS });
        }
        if d.comment.trim().is_empty() {
            return Err(SilenceError::EmptyComment);
        }
        if d.comment.len() > MAX_COMMENT_BYTES {
            return Err(SilenceError::CommentTooLong { max: MAX_COMMENT_BYTES });
        }
        if self.by_id.values().filter(|s| s.state(now_ms) != SilenceState::Expired).count() >= MAX_SILENCES {
            return Err(SilenceError::TooMany { max: MAX_SILENCES });
        }
        let mut id = crate::secret::random_id();
        while self.by_id.contains_key(&id) {
            id = crate::secret::random_id();
        }
        Ok(Silence {
            id,
            matchers: d.matchers,
            starts_at_ms,
            ends_at_ms: d.ends_at_ms,
            created_by: d.created_by,
            comment: d.comment,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        })
    }

    /// End a silence now. A pending one ends before it started; one that
    /// already ended is left as it was.
    /// What the silence looks like expired now, without changing it
    /// (store it, then [`Silences::put`] it).
    pub fn expired(&self, id: &str, now_ms: i64) -> Result<Silence, SilenceError> {
        let mut copy = Silences::default();
        let s = self.by_id.get(id).ok_or_else(|| SilenceError::NotFound(truncate(id, 64)))?;
        copy.put(s.clone());
        copy.expire(id, now_ms).cloned()
    }

    pub fn expire(&mut self, id: &str, now_ms: i64) -> Result<&Silence, SilenceError> {
        let s = self.by_id.get_mut(id).ok_or_else(|| SilenceError::NotFound(truncate(id, 64)))?;
        match s.state(now_ms) {
            SilenceState::Expired => {}
            SilenceState::Active => {
                s.ends_at_ms = now_ms;
                s.updated_at_ms = now_ms;
            }
            SilenceState::Pending => {
                s.starts_at_ms = now_ms;
                s.ends_at_ms = now_ms;
                s.updated_at_ms = now_ms;
            }
        }
        Ok(s)
    }

    /// Put a silence back as it was (undoing `add` or `expire` when it could
    /// not be stored).
    pub fn put(&mut self, s: Silence) {
        self.by_id.insert(s.id.clone(), s);
    }

    /// Forget a silence (undoing `add`).
    pub fn remove(&mut self, id: &str) -> Option<Silence> {
        self.by_id.remove(id)
    }

    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.by_id.get(id)
    }

    /// Active and pending silences, and expired ones too with
    /// `include_expired`: active first, then pending, then expired, each by
    /// end time.
    pub fn list(&self, now_ms: i64, include_expired: bool) -> Vec<&Silence> {
        let mut out: Vec<&Silence> =
            self.by_id.values().filter(|s| include_expired || s.state(now_ms) != SilenceState::Expired).collect();
        out.sort_by(|a, b| (a.state(now_ms), a.ends_at_ms, &a.id).cmp(&(b.state(now_ms), b.ends_at_ms, &b.id)));
        out
    }

    /// The silence that mutes an alert with these labels now, if any (the
    /// one that lasts longest, so a notice can say until when).
    pub fn matching(&self, labels: &BTreeMap<String, String>, now_ms: i64) -> Option<&Silence> {
        self.by_id.values().filter(|s| s.matches(labels, now_ms)).max_by_key(|s| (s.ends_at_ms, &s.id))
    }

    /// Forget silences that ended before `before_ms`; returns their ids
    /// (for the store).
    pub fn prune(&mut self, before_ms: i64) -> Vec<String> {
        let gone: Vec<String> =
            self.by_id.values().filter(|s| s.ends_at_ms < before_ms).map(|s| s.id.clone()).collect();
        for id in &gone {
            self.by_id.remove(id);
        }
        gone
    }

    /// How many silences are in each state (for `slo_agent_silences`).
    pub fn counts(&self, now_ms: i64) -> [(SilenceState, u64); 3] {
        let mut out = SilenceState::ALL.map(|s| (s, 0));
        for s in self.by_id.values() {
            let state = s.state(now_ms);
            if let Some(e) = out.iter_mut().find(|(st, _)| *st == state) {
                e.1 += 1;
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// Parse a silence length: `90m`, `2h`, `1h30m`, `3d`, `1w`.
pub fn parse_duration_ms(text: &str) -> Option<i64> {
    crate::yaml::values::parse_duration(text).and_then(|d| i64::try_from(d.as_millis()).ok())
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max_chars).collect::<String>())
    }
}

fn first_line(s: &str) -> String {
    let line = s.lines().find(|l| !l.trim().is_empty()).unwrap_or(s);
    truncate(line.trim(), 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;
    const HOUR: i64 = 3_600_000;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn draft(matchers: &[&str]) -> Draft {
        Draft {
            matchers: matchers.iter().map(|m| Matcher::parse(m).unwrap()).collect(),
            starts_at_ms: None,
            ends_at_ms: NOW + 2 * HOUR,
            comment: "deploy of checkout 1.42 (CHG-1234)".into(),
            created_by: "oncall-bot".into(),
        }
    }

    fn refused(d: Draft) -> String {
        Silences::default().add(d, NOW).unwrap_err().to_string()
    }

    #[test]
    fn matchers_parse_like_alertmanager() {
        let cases = [
            ("service=checkout", ("service", "checkout", MatchOp::Eq)),
            ("service != checkout", ("service", "checkout", MatchOp::NotEq)),
            ("slo=~checkout-.*", ("slo", "checkout-.*", MatchOp::Regex)),
            ("slo!~\"a|b\"", ("slo", "a|b", MatchOp::NotRegex)),
            ("kind=\" spaced \"", ("kind", " spaced ", MatchOp::Eq)),
            ("team=", ("team", "", MatchOp::Eq)),
            ("x==y", ("x", "=y", MatchOp::Eq)),
        ];
        for (text, (name, value, op)) in cases {
            let m = Matcher::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((m.name(), m.value(), m.op()), (name, value, op), "{text}");
        }
        for bad in ["", "service", "=checkout", "9x=1", "ser vice=1", "service~=x", "a=\"unterminated", "a-b=1"] {
            assert!(Matcher::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(
            Matcher::parse("slo=~(").unwrap_err().to_string().split(':').next(),
            Some("the regex of matcher `slo` does not compile")
        );
    }

    #[test]
    fn matching_semantics() {
        let l = labels(&[("slo", "checkout-availability"), ("service", "checkout"), ("severity", "page")]);
        let cases = [
            ("service=checkout", true),
            ("service=check", false),
            ("service!=checkout", false),
            ("service!=search", true),
            // Anchored to the whole value.
            ("slo=~checkout", false),
            ("slo=~checkout-.*", true),
            ("slo=~.*avail.*", true),
            ("slo!~checkout-.*", false),
            ("slo=~checkout-availability|x", true),
            // A missing label reads as "".
            ("team=", true),
            ("team=payments", false),
            ("team!=payments", true),
            ("team=~", true),
            ("team=~.+", false),
            ("team!~.+", true),
        ];
        for (m, want) in cases {
            assert_eq!(Matcher::parse(m).unwrap().matches(&l), want, "{m}");
        }
    }

    #[test]
    fn a_silence_mutes_while_active_and_all_matchers_match() {
        let mut set = Silences::default();
        let mut d = draft(&["service=checkout", "severity=page"]);
        d.starts_at_ms = Some(NOW + HOUR);
        d.ends_at_ms = NOW + 3 * HOUR;
        let s = set.add(d, NOW).unwrap().clone();
        let page = labels(&[("service", "checkout"), ("severity", "page")]);
        let ticket = labels(&[("service", "checkout"), ("severity", "ticket")]);
        assert_eq!(s.state(NOW), SilenceState::Pending);
        assert!(set.matching(&page, NOW).is_none());
        assert_eq!(s.state(NOW + HOUR), SilenceState::Active);
        assert_eq!(set.matching(&page, NOW + HOUR).map(|s| s.id.as_str()), Some(s.id.as_str()));
        assert!(set.matching(&ticket, NOW + HOUR).is_none());
        assert_eq!(s.state(NOW + 3 * HOUR), SilenceState::Expired);
        assert!(set.matching(&page, NOW + 3 * HOUR).is_none());
        assert_eq!(s.id.len(), 32);
        assert!(s.id.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn matching_prefers_the_longest_silence() {
        let mut set = Silences::default();
        let short = set.add(draft(&["service=checkout"]), NOW).unwrap().id.clone();
        let mut d = draft(&["slo=~checkout-.*"]);
        d.ends_at_ms = NOW + 5 * HOUR;
        let long = set.add(d, NOW).unwrap().id.clone();
        let l = labels(&[("slo", "checkout-latency"), ("service", "checkout")]);
        assert_eq!(set.matching(&l, NOW + HOUR).map(|s| &s.id), Some(&long));
        set.expire(&long, NOW + HOUR).unwrap();
        assert_eq!(set.matching(&l, NOW + HOUR).map(|s| &s.id), Some(&short));
    }

    #[test]
    fn validation_says_what_is_wrong() {
        assert_eq!(refused(draft(&[])), SilenceError::NoMatchers.to_string());
        for everything in [&["team=~.*"][..], &["service!=nothing"], &["team="], &["a!~x", "b=~.*"]] {
            assert_eq!(refused(draft(everything)), SilenceError::MatchesEverything.to_string(), "{everything:?}");
        }
        let mut d = draft(&["service=checkout"]);
        d.ends_at_ms = NOW - 1;
        assert_eq!(refused(d), SilenceError::EndsInPast.to_string());
        let mut d = draft(&["service=checkout"]);
        d.starts_at_ms = Some(NOW + 3 * HOUR);
        assert_eq!(refused(d), SilenceError::EndsBeforeStart.to_string());
        let mut d = draft(&["service=checkout"]);
        d.ends_at_ms = NOW + MAX_DURATION_MS + 1;
        assert_eq!(refused(d), "a silence lasts at most 90 days");
        let mut d = draft(&["service=checkout"]);
        d.comment = "  ".into();
        assert_eq!(refused(d), SilenceError::EmptyComment.to_string());
        let mut d = draft(&["service=checkout"]);
        d.comment = "x".repeat(MAX_COMMENT_BYTES + 1);
        assert_eq!(refused(d), "the comment is longer than 4096 bytes");
        let mut d = draft(&["service=checkout"]);
        d.matchers = (0..=MAX_MATCHERS).map(|i| Matcher::new(format!("l{i}"), "x", MatchOp::Eq).unwrap()).collect();
        assert_eq!(refused(d), "a silence has at most 32 matchers");
        assert!(matches!(
            Matcher::new("service", "x".repeat(1025), MatchOp::Eq),
            Err(SilenceError::ValueTooLong { .. })
        ));
        assert!(matches!(Matcher::new("1st", "x", MatchOp::Eq), Err(SilenceError::BadLabelName(_))));
        // Small pattern, huge program: refused by the size limit, not compiled.
        assert!(matches!(Matcher::new("slo", "(\\w{100}){100}", MatchOp::Regex), Err(SilenceError::BadRegex { .. })));
        assert!(matches!(Matcher::new("slo", "a)|(b", MatchOp::Regex), Err(SilenceError::BadRegex { .. })));
        let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        assert!(matches!(Matcher::new("slo", deep, MatchOp::Regex), Err(SilenceError::BadRegex { .. })));
    }

    #[test]
    fn a_start_in_the_past_means_now() {
        let mut d = draft(&["service=checkout"]);
        d.starts_at_ms = Some(NOW - HOUR);
        let mut set = Silences::default();
        assert_eq!(set.add(d, NOW).unwrap().starts_at_ms, NOW);
    }

    #[test]
    fn at_most_max_silences_active_or_pending() {
        let mut set = Silences::default();
        for _ in 0..MAX_SILENCES {
            set.add(draft(&["service=checkout"]), NOW).unwrap();
        }
        assert_eq!(set.add(draft(&["service=checkout"]), NOW).unwrap_err(), SilenceError::TooMany { max: 1000 });
        let id = set.list(NOW, false)[0].id.clone();
        set.expire(&id, NOW).unwrap();
        set.add(draft(&["service=checkout"]), NOW).unwrap();
    }

    #[test]
    fn expire_list_prune() {
        let mut set = Silences::default();
        let a = set.add(draft(&["service=a"]), NOW).unwrap().id.clone();
        let mut d = draft(&["service=b"]);
        d.starts_at_ms = Some(NOW + HOUR);
        let b = set.add(d, NOW).unwrap().id.clone();
        let ids = |v: Vec<&Silence>| v.into_iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(set.list(NOW, false)), vec![a.clone(), b.clone()]);

        let e = set.expire(&b, NOW + 60_000).unwrap();
        assert_eq!((e.starts_at_ms, e.ends_at_ms, e.updated_at_ms), (NOW + 60_000, NOW + 60_000, NOW + 60_000));
        assert_eq!(ids(set.list(NOW + 60_000, false)), vec![a.clone()]);
        assert_eq!(ids(set.list(NOW + 60_000, true)), vec![a.clone(), b.clone()]);
        // Expiring again changes nothing.
        assert_eq!(set.expire(&b, NOW + 120_000).unwrap().ends_at_ms, NOW + 60_000);
        assert_eq!(set.expire("nope", NOW).unwrap_err(), SilenceError::NotFound("nope".into()));
        let counts = set.counts(NOW + 60_000);
        assert_eq!(counts, [(SilenceState::Active, 1), (SilenceState::Pending, 0), (SilenceState::Expired, 1)]);

        assert_eq!(set.prune(NOW + 60_000), Vec::<String>::new());
        assert_eq!(set.prune(NOW + 60_001), vec![b]);
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn stored_form_round_trips_and_rechecks_regexes() {
        let mut set = Silences::default();
        let s = set.add(draft(&["slo=~checkout-.*", "severity!=ticket"]), NOW).unwrap().clone();
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains(r#"{"name":"slo","value":"checkout-.*","op":"=~"}"#), "{json}");
        let back: Silence = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        assert!(back.matches(&labels(&[("slo", "checkout-x"), ("severity", "page")]), NOW));
        let broken = json.replace("checkout-.*", "(");
        assert!(serde_json::from_str::<Silence>(&broken).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("2h"), Some(2 * HOUR));
        assert_eq!(parse_duration_ms("1h30m"), Some(HOUR + HOUR / 2));
        assert_eq!(parse_duration_ms("3d"), Some(72 * HOUR));
        assert_eq!(parse_duration_ms("1w"), Some(7 * 24 * HOUR));
        assert_eq!(parse_duration_ms("45s"), Some(45_000));
        for bad in ["", "2", "h", "2x", "-1h", "1.5h", "99999999999999999999h"] {
            assert_eq!(parse_duration_ms(bad), None, "{bad}");
        }
    }
}
