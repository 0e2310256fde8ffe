//! The watch list: which certificate names are ours.
//!
//! Entries, as configured or taken from the inventory, normalised like certificate names
//! (lower case, no trailing dot, punycode):
//!
//! | entry            | pattern                      | matches                                        |
//! |------------------|------------------------------|------------------------------------------------|
//! | `example.com`    | [`PatternKind::Exact`]       | exactly `example.com`                          |
//! | `.example.com`   | [`PatternKind::Subtree`]     | `example.com` and every name below it          |
//! | `*.example.com`  | [`PatternKind::Wildcard`]    | any name one label below `example.com`, `*.example.com` itself |
//! | `.`              | [`PatternKind::Subtree`] of the root | every name                             |
//!
//! A bare `*` and a subtree starting with `*` (`.*.example.com`) are rejected.
//!
//! A wildcard **certificate** name covers what its `*` label can stand for: `*.shop.example.com`
//! matches a watched `www.shop.example.com`, `.www.shop.example.com`, `.shop.example.com` and
//! `.example.com`, but not a watched `shop.example.com` (a wildcard does not cover its parent)
//! nor `a.b.shop.example.com` (nor two labels). Following certspotter, a certificate label `?`
//! (redacted) or [`UNPARSABLE`] matches any watched label, and a partial wildcard such as
//! `f*.example.com` matches the labels it could expand to; `*` never crosses a dot.
//!
//! Matching a plain name (or one with a leading `*` label) costs one hash lookup per label
//! and allocates nothing: a set of exact names, a set of subtree roots walked suffix by suffix,
//! a set of wildcard parents, and a parent → child index for wildcard certificate names.
//! Names with `?`, unparsable or partial-wildcard labels, which are rare, are compared against
//! every entry label by label.
//!
//! Fail safe: an entry that cannot be parsed is returned by [`WatchList::build`] with the
//! reason, for the caller to report; it is never silently dropped.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{Hash, Hasher};

use super::names::{UNPARSABLE, normalize_name};

/// What kind of watch-list entry a [`Pattern`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatternKind {
    /// `example.com`: that name only.
    Exact,
    /// `.example.com`: the domain and everything below it; the empty domain (`.`) is
    /// everything.
    Subtree,
    /// `*.example.com`: any single label below the domain (an inventory wildcard name).
    Wildcard,
}

/// One watch-list entry, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    kind: PatternKind,
    /// The exact name, the subtree root or the wildcard's parent (without `*.`).
    domain: Box<str>,
}

impl Pattern {
    /// The kind of entry.
    pub fn kind(&self) -> PatternKind {
        self.kind
    }

    /// The name (exact), the subtree root (subtree, empty for `.`) or the parent of the
    /// wildcard label (wildcard).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Whether `name` (normalised) matches, label by label from the right; the slow path
    /// for names with special labels, and the reference the fast path agrees with.
    fn matches_labels(&self, name: &str) -> bool {
        let mut cert = name.rsplit('.');
        let mut watched = self.domain.rsplit('.').filter(|_| !self.domain.is_empty());
        for w in watched.by_ref() {
            match cert.next() {
                Some(c) if label_matches(c, w) => {}
                _ => return false,
            }
        }
        match self.kind {
            PatternKind::Exact => cert.next().is_none(),
            PatternKind::Subtree => true,
            PatternKind::Wildcard => cert.next().is_some() && cert.next().is_none(),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            PatternKind::Exact => f.write_str(&self.domain),
            PatternKind::Subtree => write!(f, ".{}", self.domain),
            PatternKind::Wildcard => write!(f, "*.{}", self.domain),
        }
    }
}

/// A set element keyed by the pattern's domain, so sets can be probed with a `&str` slice of
/// the name being matched (no allocation). Each set holds one kind only.
#[derive(Debug, Clone)]
struct Entry(Pattern);

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.0.domain == other.0.domain
    }
}

impl Eq for Entry {}

impl Hash for Entry {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.domain.hash(state);
    }
}

impl Borrow<str> for Entry {
    fn borrow(&self) -> &str {
        &self.0.domain
    }
}

/// A watch-list entry that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedEntry {
    /// The entry as given.
    pub entry: String,
    /// Why it was rejected.
    pub reason: String,
}

/// The names certresponder watches CT for. See the module docs for the matching rules.
#[derive(Debug, Clone, Default)]
pub struct WatchList {
    exact: HashSet<Entry>,
    subtree: HashSet<Entry>,
    wildcard: HashSet<Entry>,
    /// Parent domain → one exact or subtree entry directly below it, for wildcard
    /// certificate names (`*.parent` covers that entry).
    children: HashMap<Box<str>, Box<str>>,
}

impl WatchList {
    /// An empty watch list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a watch list from entries (configured domains and inventory names), returning
    /// the entries that could not be parsed alongside it.
    pub fn build<I, S>(entries: I) -> (Self, Vec<RejectedEntry>)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = Self::new();
        let mut rejected = Vec::new();
        for entry in entries {
            let entry = entry.as_ref();
            if let Err(reason) = list.add(entry) {
                rejected.push(RejectedEntry {
                    entry: entry.to_string(),
                    reason,
                });
            }
        }
        (list, rejected)
    }

    /// Adds one entry: `example.com`, `.example.com`, `*.example.com` or `.`.
    pub fn add(&mut self, entry: &str) -> Result<(), String> {
        let trimmed = entry.trim();
        let (kind, rest) = if trimmed == "." {
            (PatternKind::Subtree, "")
        } else if let Some(rest) = trimmed.strip_prefix('.') {
            (PatternKind::Subtree, rest)
        } else {
            (PatternKind::Exact, trimmed)
        };
        let name = if rest.is_empty() && kind == PatternKind::Subtree {
            String::new()
        } else {
            normalize_name(rest)?
        };
        if name == "*" {
            return Err(format!("`{entry}`: a wildcard needs a parent domain"));
        }
        let (kind, domain) = match name.strip_prefix("*.") {
            Some(parent) if kind == PatternKind::Exact => {
                (PatternKind::Wildcard, parent.to_string())
            }
            Some(_) => return Err(format!("`{entry}`: a subtree cannot start with a wildcard")),
            None => (kind, name),
        };
        let domain: Box<str> = domain.into();
        if kind != PatternKind::Wildcard
            && let Some((_, parent)) = domain.split_once('.')
        {
            self.children
                .entry(parent.into())
                .or_insert_with(|| domain.clone());
        }
        let set = match kind {
            PatternKind::Exact => &mut self.exact,
            PatternKind::Subtree => &mut self.subtree,
            PatternKind::Wildcard => &mut self.wildcard,
        };
        set.insert(Entry(Pattern { kind, domain }));
        Ok(())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.exact.len() + self.subtree.len() + self.wildcard.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry a normalised certificate name (see
    /// [`names_of`](super::names::names_of)) matches, if any.
    pub fn matches(&self, name: &str) -> Option<&Pattern> {
        if !is_plain(name) {
            return self.matches_slow(name);
        }
        if let Some(e) = self.exact.get(name) {
            return Some(&e.0);
        }
        let mut suffix = name;
        loop {
            if let Some(e) = self.subtree.get(suffix) {
                return Some(&e.0);
            }
            match suffix.split_once('.') {
                Some((_, rest)) => suffix = rest,
                None => break,
            }
        }
        if let Some(e) = self.subtree.get("") {
            return Some(&e.0);
        }
        let (first, parent) = name.split_once('.')?;
        if let Some(e) = self.wildcard.get(parent) {
            return Some(&e.0);
        }
        if first == "*" {
            let child = self.children.get(parent)?;
            let e = self
                .exact
                .get(&**child)
                .or_else(|| self.subtree.get(&**child))?;
            return Some(&e.0);
        }
        None
    }

    /// The first of `names` that matches, with its entry.
    pub fn matches_any<'n, S: AsRef<str>>(&self, names: &'n [S]) -> Option<(&'n str, &Pattern)> {
        names
            .iter()
            .find_map(|n| self.matches(n.as_ref()).map(|p| (n.as_ref(), p)))
    }

    fn matches_slow(&self, name: &str) -> Option<&Pattern> {
        self.exact
            .iter()
            .chain(&self.subtree)
            .chain(&self.wildcard)
            .map(|e| &e.0)
            .find(|p| p.matches_labels(name))
    }
}

/// Whether every label is a plain label, except perhaps a leading `*` with a parent.
fn is_plain(name: &str) -> bool {
    name != "*"
        && name.split('.').enumerate().all(|(i, label)| {
            (i == 0 && label == "*") || !label.bytes().any(|b| matches!(b, b'*' | b'?' | b'<'))
        })
}

/// Whether certificate label `cert` can stand for watched label `watched`.
fn label_matches(cert: &str, watched: &str) -> bool {
    cert == UNPARSABLE || cert == "?" || glob(cert.as_bytes(), watched.as_bytes())
}

/// `*` in `pattern` matches any run of characters (labels contain no dots here).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> WatchList {
        let (l, rejected) = WatchList::build(entries);
        assert!(rejected.is_empty(), "{rejected:?}");
        l
    }

    fn hit(l: &WatchList, name: &str) -> Option<String> {
        let fast = l.matches(name).map(ToString::to_string);
        // The fast path agrees with the label-by-label reference on whether there is a match.
        assert_eq!(fast.is_some(), l.matches_slow(name).is_some(), "{name}");
        fast
    }

    #[test]
    fn exact_and_subtree() {
        let l = list(&["Example.COM.", ".corp.example.net"]);
        assert_eq!(hit(&l, "example.com").as_deref(), Some("example.com"));
        assert_eq!(hit(&l, "www.example.com"), None);
        assert_eq!(
            hit(&l, "corp.example.net").as_deref(),
            Some(".corp.example.net")
        );
        assert_eq!(
            hit(&l, "a.b.corp.example.net").as_deref(),
            Some(".corp.example.net")
        );
        assert_eq!(hit(&l, "xcorp.example.net"), None);
        assert_eq!(hit(&l, "example.net"), None);
    }

    #[test]
    fn wildcard_certificate_names() {
        let l = list(&[
            "www.shop.example.com",
            "shop.example.org",
            ".api.example.net",
        ]);
        assert_eq!(
            hit(&l, "*.shop.example.com").as_deref(),
            Some("www.shop.example.com")
        );
        // A wildcard does not cover its parent, nor two labels.
        assert_eq!(hit(&l, "*.shop.example.org"), None);
        assert_eq!(
            hit(&l, "*.example.org").as_deref(),
            Some("shop.example.org")
        );
        assert_eq!(hit(&l, "*.org"), None);
        assert_eq!(hit(&l, "*.example.com"), None);
        // A watched subtree root one label below, or a subtree above.
        assert_eq!(
            hit(&l, "*.example.net").as_deref(),
            Some(".api.example.net")
        );
        assert_eq!(
            hit(&l, "*.api.example.net").as_deref(),
            Some(".api.example.net")
        );
    }

    #[test]
    fn watched_wildcards_from_the_inventory() {
        let l = list(&["*.example.com"]);
        assert_eq!(hit(&l, "www.example.com").as_deref(), Some("*.example.com"));
        assert_eq!(hit(&l, "*.example.com").as_deref(), Some("*.example.com"));
        assert_eq!(hit(&l, "example.com"), None);
        assert_eq!(hit(&l, "a.b.example.com"), None);
    }

    #[test]
    fn special_certificate_labels_fail_safe() {
        let l = list(&["bank.example", ".corp.example"]);
        assert!(hit(&l, "<unparsable>.example").is_some());
        assert!(hit(&l, "bank.<unparsable>").is_some());
        assert!(hit(&l, "?.example").is_some());
        assert!(hit(&l, "b*.example").is_some());
        assert!(hit(&l, "x.c*p.example").is_some());
        assert_eq!(hit(&l, "x*.example"), None);
        assert_eq!(hit(&l, "<unparsable>.other"), None);
    }

    #[test]
    fn root_matches_everything() {
        let l = list(&["."]);
        assert_eq!(hit(&l, "anything.test").as_deref(), Some("."));
    }

    #[test]
    fn bad_entries_are_reported_not_dropped() {
        let (l, rejected) =
            WatchList::build(["good.example", "bad..example", ".*.example", "a b", "*"]);
        assert_eq!(l.len(), 1);
        let bad: Vec<&str> = rejected.iter().map(|r| r.entry.as_str()).collect();
        assert_eq!(bad, ["bad..example", ".*.example", "a b", "*"]);
        assert!(rejected.iter().all(|r| !r.reason.is_empty()));
    }

    #[test]
    fn unicode_entries_match_punycode_names() {
        let l = list(&[".bücher.example"]);
        assert!(hit(&l, "www.xn--bcher-kva.example").is_some());
    }

    /// The hash-based fast path and the label-by-label reference agree on random lists and
    /// names over a small alphabet (so that collisions are frequent).
    #[test]
    fn fast_path_agrees_with_the_reference() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % n).unwrap()
        };
        let labels = ["a", "b", "c", "com"];
        let name = |next: &mut dyn FnMut(u64) -> usize, wild: bool| {
            let n = 1 + next(4);
            let mut parts: Vec<&str> = (0..n).map(|_| labels[next(4)]).collect();
            if wild && next(3) == 0 {
                parts[0] = "*";
            }
            parts.join(".")
        };
        for _ in 0..500 {
            let entries: Vec<String> = (0..1 + next(6))
                .map(|_| {
                    let n = name(&mut next, true);
                    match next(3) {
                        0 if !n.starts_with('*') => format!(".{n}"),
                        _ => n,
                    }
                })
                .collect();
            // A bare `*` is rejected; the rest is the list.
            let (l, _) = WatchList::build(&entries);
            for _ in 0..50 {
                let n = name(&mut next, true);
                assert_eq!(
                    l.matches(&n).is_some(),
                    l.matches_slow(&n).is_some(),
                    "{n} against {entries:?}"
                );
            }
        }
    }

    #[test]
    fn glob_labels() {
        assert!(glob(b"f*", b"foo"));
        assert!(glob(b"*o*", b"foo"));
        assert!(!glob(b"f*x", b"foo"));
        assert!(glob(b"*", b""));
    }
}
