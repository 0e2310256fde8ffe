//! The layers the code is built in, checked on its source: the command line and the daemon's
//! control socket are thin edges over the service layer, and nothing below them reaches up.
//! A module that imports upward fails here with the file and line.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The lines of the files under `src/` (but those `allowed` says may) that name any of
/// `forbidden`, as `path:line: text`.
fn offenders(forbidden: &[&str], allowed: impl Fn(&Path) -> bool) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for file in sources(&src) {
        let rel = file.strip_prefix(&src).unwrap();
        if allowed(rel) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if forbidden.iter().any(|f| code.contains(f)) {
                found.push(format!("src/{}:{}: {}", rel.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn nothing_outside_the_command_line_imports_it() {
    let found = offenders(&["crate::cli", "certresponder::cli"], |rel| {
        rel.starts_with("cli") || rel == Path::new("main.rs")
    });
    assert!(
        found.is_empty(),
        "only src/cli/ and src/main.rs may use the command line:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_service_layer_and_what_is_below_it_do_not_reach_the_edges() {
    let below = [
        "service", "respond", "govern", "policy", "signals", "store", "audit", "ct", "notify",
    ];
    let found = offenders(&["crate::cli", "crate::daemon"], |rel| {
        !below.iter().any(|b| rel.starts_with(b))
    });
    assert!(
        found.is_empty(),
        "the service layer and the modules below it may not import the CLI or the daemon:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_store_and_its_records_are_at_the_bottom() {
    // The store persists the records; neither knows the engine, the detectors, the policy
    // or the governor that write them.
    let above = [
        "crate::respond",
        "crate::signals",
        "crate::policy",
        "crate::govern",
        "crate::service",
        "crate::config",
    ];
    let found = offenders(&above, |rel| {
        !(rel.starts_with("store") || rel.starts_with("records"))
    });
    assert!(
        found.is_empty(),
        "src/store/ and src/records/ may not import the modules above them:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_engine_does_not_import_the_governor() {
    // The governor applies the policy through the engine, never the other way round.
    let found = offenders(&["crate::govern"], |rel| !rel.starts_with("respond"));
    assert!(
        found.is_empty(),
        "src/respond/ may not import the governor:\n{}",
        found.join("\n")
    );
}

/// The source files `config.rs` names (`crate::a::b::item` is `src/a/b.rs` or
/// `src/a/b/mod.rs`, the longest such prefix).
fn files_config_imports() -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let text = std::fs::read_to_string(src.join("config.rs")).unwrap();
    let mut files = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let path: String = text[at + "crate::".len()..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
        for n in (1..=parts.len()).rev() {
            let base = parts[..n].iter().fold(src.clone(), |p, part| p.join(part));
            let file = base.with_extension("rs");
            let module = base.join("mod.rs");
            if let Some(found) = [file, module].into_iter().find(|f| f.is_file()) {
                if !files.contains(&found) {
                    files.push(found);
                }
                break;
            }
        }
    }
    files.sort();
    files
}

#[test]
fn the_configuration_is_on_top() {
    // config.rs assembles the sections of the modules it imports; none imports it back.
    let imported = files_config_imports();
    assert!(
        imported.iter().any(|f| f.ends_with("ct/config.rs")),
        "config.rs names no section module: {imported:?}"
    );
    let mut found = Vec::new();
    for file in &imported {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("crate::config") {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "modules that config.rs imports may not import it back:\n{}",
        found.join("\n")
    );
    // The policy, the inventory registry, the detectors, CT, notifications and everything
    // below them take their own section, never the whole configuration.
    let sections = [
        "policy",
        "registry.rs",
        "signals",
        "ct",
        "notify",
        "audit",
        "store",
        "records",
    ];
    let found = offenders(&["crate::config"], |rel| {
        !sections.iter().any(|s| rel.starts_with(s))
    });
    assert!(
        found.is_empty(),
        "these modules take their own section of the configuration, not the whole of it:\n{}",
        found.join("\n")
    );
}

/// The lines of non-test code under `src/` (before a file's `#[cfg(test)]`, and not in a
/// `tests.rs`) that contain `needle`, but in the files `allowed` says may.
fn code_lines_with(needle: &str, allowed: impl Fn(&Path) -> bool) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for file in sources(&src) {
        let rel = file.strip_prefix(&src).unwrap();
        if allowed(rel) || rel.ends_with("tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            if line.split("//").next().unwrap_or("").contains(needle) {
                found.push(format!("src/{}:{}: {}", rel.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn one_module_writes_signal_state() {
    // Inserting, merging, resolving, answering and suppressing signals is done by
    // src/signals/state.rs alone, with one set of rules; the store only keeps them.
    let found = code_lines_with(".put_signal(", |rel| {
        rel.starts_with("store") || rel == Path::new("signals/state.rs")
    });
    assert!(
        found.is_empty(),
        "only src/signals/state.rs writes signals:\n{}",
        found.join("\n")
    );
    assert!(!code_lines_with(".put_signal(", |rel| rel.starts_with("store")).is_empty());
}

#[test]
fn the_checks_find_what_they_look_for() {
    // The edges themselves import what the checks forbid elsewhere: a check that could not
    // find anything would pass whatever the code did.
    assert!(!offenders(&["crate::service"], |rel| !rel.starts_with("cli")).is_empty());
    assert!(!offenders(&["crate::daemon"], |rel| !rel.starts_with("cli")).is_empty());
    assert!(!offenders(&["crate::records"], |rel| !rel.starts_with("store")).is_empty());
    assert!(!offenders(&["crate::respond"], |rel| !rel.starts_with("govern")).is_empty());
    assert!(!offenders(&["crate::config"], |rel| !rel.starts_with("respond")).is_empty());
}
