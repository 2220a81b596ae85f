#![expect(clippy::expect_used, reason = "a test fails by panicking, loudly")]

//! Role rules live in one module (`src/auth/policy.rs`): everywhere else asks the policy a
//! question (`role.reach()`, `role.recording()`, `caller.may(action)`, …) and matches on its
//! answer, so a new role is a compile error exactly where a rule must be decided. This test
//! reads the source and fails on any comparison of, or match on, a role outside the policy.

use std::path::{Path, PathBuf};

/// The one module that may decide by role.
const POLICY: &str = "src/auth/policy.rs";

/// What deciding by role looks like in this code base.
const DECIDING: &[&str] = &[
    "role() ==",
    "role() !=",
    "role ==",
    "role !=",
    "== Role::",
    "!= Role::",
    "match caller.role() {",
    "match self.role() {",
    "match role {",
    "matches!(role,",
    "matches!(caller.role(),",
];

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// A line that decides by role: one of `DECIDING`, or a match arm on a role variant.
fn decides_by_role(line: &str) -> bool {
    let code = line.split("//").next().unwrap_or_default();
    DECIDING.iter().any(|pattern| code.contains(pattern))
        || ["SocialCare", "HealthCare", "Operations"]
            .iter()
            .any(|role| {
                let variant = format!("Role::{role}");
                code.split(&variant).skip(1).any(|after| {
                    after.trim_start().starts_with("=>") || after.trim_start().starts_with('|')
                })
            })
}

#[test]
fn no_module_but_the_policy_decides_by_role() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    assert!(files.len() > 20, "the source tree was found");
    let mut offending = Vec::new();
    for file in files {
        let relative = file.strip_prefix(root).unwrap_or(&file).to_path_buf();
        if relative == Path::new(POLICY) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("a source file is readable");
        // Unit tests may build identities of any role and compare them.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            if decides_by_role(line) {
                offending.push(format!("{}:{}: {}", relative.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offending.is_empty(),
        "decide by role only in {POLICY}; ask the policy instead:\n{}",
        offending.join("\n")
    );
}

#[test]
fn the_check_recognises_each_way_of_deciding_by_role() {
    for line in [
        "if caller.role() == Role::HealthCare {",
        "    if caller.role() != Role::Operations {",
        "match caller.role() {",
        "        Role::SocialCare => Ok(()),",
        "        Role::HealthCare | Role::Operations => LaScope::Every,",
        "if matches!(role, Role::HealthCare) {",
    ] {
        assert!(decides_by_role(line), "{line}");
    }
    for line in [
        "match caller.role().plan_search() {",
        "let recording = who.role.recording();",
        "role: Role::HealthCare,",
        "// if caller.role() == Role::HealthCare",
    ] {
        assert!(!decides_by_role(line), "{line}");
    }
}
