//! A small YAML node tree that remembers where every node came from.
//!
//! Built from `saphyr-parser` events. Spec readers need three things a plain
//! YAML library does not give them: the 1-based line and column of every key
//! and value, duplicate keys refused (YAML says they are an error; most
//! libraries silently keep the last), and a guarantee that no input makes
//! the loader panic or recurse without bound.
//!
//! Anchors, aliases and tags are refused: specs are short, and a value that
//! is written out once is a value whose position we can report.

use std::borrow::Cow;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Nesting deeper than this is refused. Spec documents are a few levels deep;
/// the bound keeps building and dropping the tree free of deep recursion.
pub const MAX_DEPTH: usize = 64;

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
    /// `|` or `>` block scalars.
    Block,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub text: String,
    pub style: Style,
    /// The column of the text's first character when the text appears in
    /// the source exactly as parsed, on one line (no escapes, no folding):
    /// then an offset inside the text is also an offset in the source line.
    pub verbatim_col: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub text: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Map(Vec<(Key, Node)>),
    Seq(Vec<Node>),
    Scalar(Scalar),
    /// An empty value, `~` or `null`.
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

impl Node {
    /// What the node is, in the words used by error messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            Value::Map(_) => "a map",
            Value::Seq(_) => "a list",
            Value::Scalar(_) => "a scalar",
            Value::Null => "nothing (null)",
        }
    }

    /// The column where the byte `offset` of this scalar's text sits, when
    /// the text is verbatim in the source; the node's own column otherwise.
    pub fn pos_at(&self, offset: usize) -> Pos {
        match &self.value {
            Value::Scalar(Scalar { text, verbatim_col: Some(col), .. }) => {
                let off = floor_char_boundary(text, offset.min(text.len()));
                Pos { line: self.pos.line, col: col + text[..off].chars().count() }
            }
            _ => self.pos,
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// One YAML document of a file: its root node (absent for an empty document).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub root: Option<Node>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

/// Everything read from one file. `errors` holds problems that did not stop
/// the parse (duplicate keys: the first value is kept) and, last, a syntax
/// error if one stopped it; `documents` then holds only the documents
/// completed before it.
#[derive(Debug, Default)]
pub struct Parsed {
    pub documents: Vec<Document>,
    pub errors: Vec<YamlError>,
    pub syntax_error: bool,
}

enum Frame {
    Map { pos: Pos, entries: Vec<(Key, Node)>, pending_key: Option<Key> },
    Seq { pos: Pos, items: Vec<Node> },
}

/// Maps character indices (what saphyr markers count) to source text.
struct Source<'a> {
    text: &'a str,
    /// Byte offset of every character, plus one past the end.
    char_bytes: Vec<usize>,
}

impl<'a> Source<'a> {
    fn new(text: &'a str) -> Self {
        let mut char_bytes: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
        char_bytes.push(text.len());
        Source { text, char_bytes }
    }

    fn slice(&self, start: usize, end: usize) -> Option<&'a str> {
        let s = *self.char_bytes.get(start)?;
        let e = *self.char_bytes.get(end)?;
        self.text.get(s..e)
    }
}

fn pos_of(span: &Span) -> Pos {
    Pos { line: span.start.line(), col: span.start.col() + 1 }
}

/// Parses every document of `text`. Never panics.
pub fn parse(text: &str) -> Parsed {
    let src = Source::new(text);
    let mut out = Parsed::default();
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Node> = None;
    let mut doc_pos = Pos { line: 1, col: 1 };
    // Inside a subtree refused for nesting depth: skip events until it closes.
    let mut skip_depth = 0usize;

    while let Some(item) = parser.next_event() {
        let (event, span) = match item {
            Ok(e) => e,
            Err(e) => {
                let m = e.marker();
                out.errors.push(YamlError {
                    pos: Pos { line: m.line().max(1), col: m.col() + 1 },
                    message: format!("YAML syntax error: {}", e.info()),
                });
                out.syntax_error = true;
                return out;
            }
        };
        let pos = pos_of(&span);
        if skip_depth > 0 {
            match event {
                Event::MappingStart(..) | Event::SequenceStart(..) => skip_depth += 1,
                Event::MappingEnd | Event::SequenceEnd => skip_depth -= 1,
                _ => {}
            }
            if skip_depth == 0 {
                push_node(&mut stack, &mut root, Node { value: Value::Null, pos }, &mut out);
            }
            continue;
        }
        match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
            Event::DocumentStart(_) => {
                root = None;
                doc_pos = pos;
            }
            Event::DocumentEnd => {
                out.documents.push(Document { root: root.take(), pos: doc_pos });
            }
            Event::Alias(_) => {
                out.errors.push(YamlError {
                    pos,
                    message: "YAML aliases (`*name`) are not supported; write the value out".into(),
                });
                push_node(&mut stack, &mut root, Node { value: Value::Null, pos }, &mut out);
            }
            Event::Scalar(text, style, anchor, tag) => {
                refuse_anchor_and_tag(anchor, tag.is_some(), pos, &mut out);
                let node = scalar_node(&src, text, style, &span);
                push_node(&mut stack, &mut root, node, &mut out);
            }
            Event::MappingStart(anchor, tag) | Event::SequenceStart(anchor, tag) if stack.len() >= MAX_DEPTH => {
                refuse_anchor_and_tag(anchor, tag.is_some(), pos, &mut out);
                out.errors.push(YamlError {
                    pos,
                    message: format!("nesting deeper than {MAX_DEPTH} levels is not supported"),
                });
                skip_depth = 1;
            }
            Event::MappingStart(anchor, tag) => {
                refuse_anchor_and_tag(anchor, tag.is_some(), pos, &mut out);
                stack.push(Frame::Map { pos, entries: Vec::new(), pending_key: None });
            }
            Event::SequenceStart(anchor, tag) => {
                refuse_anchor_and_tag(anchor, tag.is_some(), pos, &mut out);
                stack.push(Frame::Seq { pos, items: Vec::new() });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let node = match stack.pop() {
                    Some(Frame::Map { pos, entries, .. }) => Node { value: Value::Map(entries), pos },
                    Some(Frame::Seq { pos, items }) => Node { value: Value::Seq(items), pos },
                    // The parser balances its events; tolerate it if not.
                    None => continue,
                };
                push_node(&mut stack, &mut root, node, &mut out);
            }
        }
    }
    out
}

fn refuse_anchor_and_tag(anchor: usize, tagged: bool, pos: Pos, out: &mut Parsed) {
    if anchor != 0 {
        out.errors
            .push(YamlError { pos, message: "YAML anchors (`&name`) are not supported; write the value out".into() });
    }
    if tagged {
        out.errors.push(YamlError { pos, message: "YAML tags (`!tag`) are not supported".into() });
    }
}

fn scalar_node(src: &Source<'_>, text: Cow<'_, str>, style: ScalarStyle, span: &Span) -> Node {
    let pos = pos_of(span);
    let style = match style {
        ScalarStyle::Plain => Style::Plain,
        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
        ScalarStyle::Literal | ScalarStyle::Folded => Style::Block,
    };
    if style == Style::Plain && is_null(&text) {
        return Node { value: Value::Null, pos };
    }
    let (start, end) = (span.start.index(), span.end.index());
    let verbatim_col = match style {
        _ if span.start.line() != span.end.line() => None,
        Style::Plain => (src.slice(start, end) == Some(&*text)).then_some(pos.col),
        Style::Quoted if end >= start + 2 => (src.slice(start + 1, end - 1) == Some(&*text)).then_some(pos.col + 1),
        _ => None,
    };
    Node { value: Value::Scalar(Scalar { text: text.into_owned(), style, verbatim_col }), pos }
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn push_node(stack: &mut [Frame], root: &mut Option<Node>, node: Node, out: &mut Parsed) {
    match stack.last_mut() {
        None => *root = Some(node),
        Some(Frame::Seq { items, .. }) => items.push(node),
        Some(Frame::Map { entries, pending_key, .. }) => match pending_key.take() {
            Some(key) => {
                if let Some((first, _)) = entries.iter().find(|(k, _)| k.text == key.text) {
                    out.errors.push(YamlError {
                        pos: key.pos,
                        message: format!(
                            "duplicate key `{}` (first at line {}, column {})",
                            key.text, first.pos.line, first.pos.col
                        ),
                    });
                } else {
                    entries.push((key, node));
                }
            }
            None => {
                let text = match node.value {
                    Value::Scalar(s) => s.text,
                    Value::Null => String::new(),
                    _ => {
                        out.errors.push(YamlError {
                            pos: node.pos,
                            message: "map keys must be plain strings, not maps or lists".into(),
                        });
                        String::new()
                    }
                };
                *pending_key = Some(Key { text, pos: node.pos });
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        let p = parse(text);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        p.documents.into_iter().next().unwrap().root.unwrap()
    }

    #[test]
    fn positions_of_keys_and_values() {
        let n = root("a: 1\nb:\n  c: 'x y'\n  d: [p, \"q\"]\n");
        let Value::Map(entries) = &n.value else { panic!() };
        assert_eq!(entries[0].0.pos, Pos { line: 1, col: 1 });
        assert_eq!(entries[0].1.pos, Pos { line: 1, col: 4 });
        let Value::Map(inner) = &entries[1].1.value else { panic!() };
        assert_eq!(inner[0].0.pos, Pos { line: 3, col: 3 });
        assert_eq!(inner[0].1.pos, Pos { line: 3, col: 6 });
        assert_eq!(inner[0].1.pos_at(2), Pos { line: 3, col: 9 });
        let Value::Seq(items) = &inner[1].1.value else { panic!() };
        assert_eq!(items[1].pos, Pos { line: 4, col: 10 });
        assert_eq!(items[1].pos_at(0), Pos { line: 4, col: 11 });
    }

    #[test]
    fn several_documents_and_nulls() {
        let p = parse("a: 1\n---\n---\nb: ~\n");
        assert!(p.errors.is_empty());
        assert_eq!(p.documents.len(), 3);
        assert!(p.documents[1].root.as_ref().is_none_or(|n| n.value == Value::Null));
        let Value::Map(e) = &p.documents[2].root.as_ref().unwrap().value else { panic!() };
        assert_eq!(e[0].1.value, Value::Null);
    }

    #[test]
    fn refuses_duplicates_anchors_and_depth() {
        let p = parse("a: 1\nb: 2\na: 3\n");
        assert_eq!(p.errors[0].pos, Pos { line: 3, col: 1 });
        assert_eq!(p.errors[0].message, "duplicate key `a` (first at line 1, column 1)");
        let p = parse("a: &x 1\nb: *x\n");
        assert_eq!(p.errors.len(), 2);
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let p = parse(&deep);
        assert_eq!(p.errors.len(), 1);
    }

    #[test]
    fn syntax_error_has_a_position() {
        let p = parse("a: 1\nb: [1, 2\n");
        assert!(p.syntax_error);
        let e = p.errors.last().unwrap();
        assert!(e.pos.line >= 2, "{e:?}");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn never_panics_on_yamlish(text in "[-:\\[\\]{}&*!|>'\"#?, \\n\\ta-c0-9]{0,200}") {
            let _ = parse(&text);
        }
    }
}
