//! Imports only go down (STYLE B2): a lower module never names a higher one, and the pure
//! modules use no async runtime or I/O crates.

use std::path::Path;

/// Every module and its layer (STYLE B2): L0 pure, L1 adapters, L2 engine, L3 front doors,
/// L4 wiring.
const LAYERS: &[(&str, u8)] = &[
    ("env", 0),
    ("yaml", 0),
    ("buildspec", 0),
    ("pipeline", 0),
    ("dag", 0),
    ("aws", 1),
    ("executor", 1),
    ("source", 1),
    ("state", 1),
    ("artifacts", 1),
    ("build", 2),
    ("engine", 2),
    ("daemon", 3),
    ("server", 3),
    ("cli", 4),
];

/// Imports allowed inside one layer; every other same-layer import is a violation.
const SAME_LAYER: &[(&str, &str)] = &[
    ("buildspec", "yaml"),
    ("pipeline", "yaml"),
    ("dag", "pipeline"),
    ("dag", "yaml"),
    ("engine", "build"),
    ("artifacts", "aws"),
    ("executor", "aws"),
];

/// Lower-layer modules a module still may not use: the engine runs on traits, never on the
/// database or git (the recorder in `cli` persists its events).
const EXTRA: &[(&str, &str)] = &[
    ("build", "state"),
    ("build", "source"),
    ("engine", "state"),
    ("engine", "source"),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// Whether `module` may name `other`.
fn allowed(module: &str, other: &str) -> bool {
    let (Some(from), Some(to)) = (layer(module), layer(other)) else {
        return true;
    };
    if EXTRA.contains(&(module, other)) {
        return false;
    }
    to < from || (to == from && SAME_LAYER.contains(&(module, other)))
}

/// Pure modules: no tokio, bollard or process spawning.
const PURE: &[&str] = &["env", "yaml", "buildspec", "pipeline", "dag"];

fn sources(module: &str) -> Vec<(String, String)> {
    let root = crate::support::repo_root().join("src");
    let single = root.join(format!("{module}.rs"));
    let mut files = Vec::new();
    if single.is_file() {
        files.push(single);
    }
    let dir = root.join(module);
    if dir.is_dir() {
        files.extend(
            walkdir::WalkDir::new(&dir)
                .into_iter()
                .filter_map(Result::ok)
                .map(walkdir::DirEntry::into_path)
                .filter(|p| p.extension().is_some_and(|e| e == "rs")),
        );
    }
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read source");
            (display(&path), text)
        })
        .collect()
}

fn display(path: &Path) -> String {
    path.strip_prefix(crate::support::repo_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn lower_modules_never_name_higher_ones() {
    let mut violations = Vec::new();
    for (module, _) in LAYERS {
        for (path, text) in sources(module) {
            for (upper, _) in LAYERS
                .iter()
                .filter(|(other, _)| other != module && !allowed(module, other))
            {
                for (number, line) in text.lines().enumerate() {
                    if line.contains(&format!("crate::{upper}::"))
                        || line.contains(&format!("crate::{upper};"))
                    {
                        violations.push(format!("{path}:{}: {module} names {upper}", number + 1));
                    }
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations.join("\n")
    );
}

#[test]
fn pure_modules_do_no_async_or_process_io() {
    let mut violations = Vec::new();
    for module in PURE {
        for (path, text) in sources(module) {
            for (number, line) in text.lines().enumerate() {
                for needle in ["tokio::", "bollard::", "std::process::Command"] {
                    if line.contains(needle) {
                        violations.push(format!("{path}:{}: {needle}", number + 1));
                    }
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "pure modules doing I/O:\n{}",
        violations.join("\n")
    );
}

#[test]
fn layering_table_covers_every_module() {
    let root = crate::support::repo_root().join("src");
    let mut modules: Vec<String> = std::fs::read_dir(&root)
        .expect("read src")
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let name = name.strip_suffix(".rs").map_or(name.clone(), str::to_owned);
            let is_module = entry.path().extension().is_some_and(|e| e == "rs")
                || entry.path().join("mod.rs").is_file();
            (is_module && !["lib", "main"].contains(&name.as_str())).then_some(name)
        })
        .collect();
    modules.sort();
    modules.dedup();
    for module in modules {
        assert!(
            layer(&module).is_some(),
            "src/{module} is missing from the layering table in tests/integration/layering.rs"
        );
    }
}
