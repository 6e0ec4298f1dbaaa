//! Typed access to a marked YAML tree that records every problem as a
//! diagnostic and carries on, so one run reports all of a file's mistakes.

use crate::yaml::{Diagnostic, Key, Node, Pos, Scalar, Value, ValueError, closest};

/// The file being read and the diagnostics found so far.
pub struct Ctx<'a> {
    pub file: &'a str,
    pub diags: &'a mut Vec<Diagnostic>,
}

impl Ctx<'_> {
    pub fn err(&mut self, pos: Pos, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            file: self.file.to_string(),
            line: pos.line,
            col: pos.col,
            message: message.into(),
        });
    }

    /// Reports a grammar error at its exact column inside `node`.
    pub fn value_err(&mut self, node: &Node, e: ValueError) {
        self.err(node.pos_at(e.offset), e.message);
    }

    /// `node` as a map whose keys are all in `allowed`; unknown keys are
    /// reported (with the closest allowed key) and skipped.
    pub fn map<'n>(&mut self, node: &'n Node, what: &str, allowed: &[&str]) -> Option<Fields<'n>> {
        let Value::Map(entries) = &node.value else {
            self.err(node.pos, format!("`{what}` must be a map, found {}", node.kind_name()));
            return None;
        };
        let mut unknown = Vec::new();
        for (key, _) in entries {
            if !allowed.contains(&key.text.as_str()) {
                unknown.push(key.text.clone());
                let hint = match closest(&key.text, allowed) {
                    Some(c) => format!("did you mean `{c}`? "),
                    None => String::new(),
                };
                self.err(
                    key.pos,
                    format!("unknown field `{}` in `{what}`; {hint}allowed: {}", key.text, allowed.join(", ")),
                );
            }
        }
        Some(Fields { node, what: what.to_string(), entries, unknown })
    }

    /// A scalar's text; numbers and booleans are accepted as their text.
    pub fn text<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n str> {
        match &node.value {
            Value::Scalar(Scalar { text, .. }) => Some(text),
            _ => {
                self.err(node.pos, format!("`{what}` must be a string, found {}", node.kind_name()));
                None
            }
        }
    }

    /// A number, plain or quoted.
    pub fn number(&mut self, node: &Node, what: &str) -> Option<f64> {
        let text = self.text(node, what)?;
        match text.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Some(v),
            _ => {
                self.err(node.pos, format!("`{what}` must be a number, found `{text}`"));
                None
            }
        }
    }

    pub fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match self.text(node, what)? {
            "true" | "True" | "TRUE" => Some(true),
            "false" | "False" | "FALSE" => Some(false),
            other => {
                self.err(node.pos, format!("`{what}` must be true or false, found `{other}`"));
                None
            }
        }
    }

    /// A single scalar or a list of them, as nodes.
    pub fn one_or_many<'n>(&mut self, node: &'n Node, what: &str) -> Vec<&'n Node> {
        match &node.value {
            Value::Seq(items) if items.is_empty() => {
                self.err(node.pos, format!("`{what}` is an empty list; leave the field out to match everything"));
                Vec::new()
            }
            Value::Seq(items) => items.iter().collect(),
            _ => vec![node],
        }
    }

    pub fn list<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ => {
                self.err(node.pos, format!("`{what}` must be a list, found {}", node.kind_name()));
                None
            }
        }
    }
}

/// A map already checked for unknown keys.
pub struct Fields<'n> {
    pub node: &'n Node,
    pub what: String,
    pub entries: &'n [(Key, Node)],
    /// Keys already reported as unknown.
    pub unknown: Vec<String>,
}

impl<'n> Fields<'n> {
    /// The value of `key`; an explicit null counts as absent.
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries.iter().find(|(k, _)| k.text == key).map(|(_, v)| v).filter(|v| v.value != Value::Null)
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The value of a required `key`; its absence is reported at the map.
    pub fn require(&self, cx: &mut Ctx<'_>, key: &str) -> Option<&'n Node> {
        let v = self.get(key);
        // A misspelt key already has its own message, with this suggestion.
        let misspelt = self.unknown.iter().any(|k| closest(k, &[key]).is_some());
        if v.is_none() && !misspelt {
            cx.err(self.node.pos, format!("`{}` is missing required field `{key}`", self.what));
        }
        v
    }

    /// `what.key`, for naming nested fields in messages.
    pub fn path(&self, key: &str) -> String {
        format!("{}.{key}", self.what)
    }
}
