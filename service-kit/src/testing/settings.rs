//! Holds a program's settings (as [`crate::env::settings_read_by`] lists them) to the
//! configuration table of docs/API.md: every setting the program reads is a row naming it as a
//! user with its default, and every row naming it is read.

use crate::env::{Setting, settings_read_by};

/// A row of the table: its variables, the programs that use them, and the whole row's text.
struct Row<'a> {
    names: Vec<&'a str>,
    users: &'a str,
    text: &'a str,
}

/// The rows of the table under `## Configuration`.
fn rows(doc: &str) -> Vec<Row<'_>> {
    let table = doc
        .split("\n## Configuration")
        .nth(1)
        .expect("docs/API.md has a Configuration section");
    table
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|text| {
            let mut cells = text.split('|').skip(1);
            let names = cells.next().unwrap_or_default();
            Row {
                names: names.split('`').skip(1).step_by(2).collect(),
                users: cells.next().unwrap_or_default(),
                text,
            }
        })
        .collect()
}

/// What is wrong between `program`'s `settings` and the table in `doc`; empty when nothing.
/// `computed` names settings whose default is worked out at start (the table says how), and
/// `read_elsewhere` rows the program reads by other means (`RUST_LOG`, by the log filter).
fn mismatches(
    program: &str,
    settings: &[Setting],
    doc: &str,
    computed: &[&str],
    read_elsewhere: &[&str],
) -> Vec<String> {
    let rows = rows(doc);
    let uses = |row: &Row<'_>| {
        row.users
            .split(',')
            .any(|user| matches!(user.trim(), "all") || user.trim() == program)
    };
    let mut wrong = Vec::new();
    for Setting { name, default } in settings {
        match rows.iter().find(|row| row.names.contains(name)) {
            None => wrong.push(format!("{name} is read but not in the table")),
            Some(row) if !uses(row) => wrong.push(format!("{name}'s row does not name {program}")),
            Some(row) => {
                let shown = format!("`{default}`");
                if !default.is_empty() && !computed.contains(name) && !row.text.contains(&shown) {
                    wrong.push(format!("{name}'s row does not give its default {shown}"));
                }
            }
        }
    }
    for row in rows.iter().filter(|row| uses(row)) {
        for name in &row.names {
            let read = settings.iter().any(|setting| setting.name == *name);
            if !read && !read_elsewhere.contains(name) {
                wrong.push(format!("{name} is in the table for {program} but not read"));
            }
        }
    }
    wrong
}

/// Fails the test when `program`'s settings, as `from_env` reads them, and the table of the
/// workspace's docs/API.md disagree. `computed`: settings whose default is worked out at start.
pub fn assert_documented<T>(program: &str, from_env: impl FnOnce() -> T, computed: &[&str]) {
    let settings = settings_read_by(from_env);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/API.md");
    let doc = std::fs::read_to_string(&path).expect("docs/API.md is readable");
    // The subscriber's settings are read by the subscriber, not by `from_env`.
    let subscriber = crate::telemetry::SETTINGS.map(|(name, _)| name);
    let wrong = mismatches(program, &settings, &doc, computed, &subscriber);
    assert!(
        wrong.is_empty(),
        "docs/API.md and {program}'s settings: {wrong:#?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# API\n\n## Configuration\n\n| variable | used by | default |\n|---|---|---|\n\
        | `A_LISTEN` | a | `127.0.0.1:1` |\n| `SHARED_MS`, `OTHER_MS` | a, b | `10`, `20` |\n\
        | `RUST_LOG` | all | `info` |\n";

    fn setting(name: &'static str, default: &str) -> Setting {
        Setting {
            name,
            default: default.to_owned(),
        }
    }

    #[test]
    fn finds_what_is_missing_either_way_and_a_wrong_default() {
        let settings = [
            setting("A_LISTEN", "127.0.0.1:1"),
            setting("SHARED_MS", "10"),
            setting("OTHER_MS", "20"),
        ];
        assert_eq!(
            mismatches("a", &settings, DOC, &[], &["RUST_LOG"]),
            Vec::<String>::new()
        );
        let wrong = mismatches("a", &settings[..2], DOC, &[], &[]);
        assert_eq!(
            wrong,
            [
                "OTHER_MS is in the table for a but not read",
                "RUST_LOG is in the table for a but not read"
            ]
        );
        let wrong = mismatches("b", &[setting("A_LISTEN", "127.0.0.1:2")], DOC, &[], &[]);
        assert_eq!(wrong[0], "A_LISTEN's row does not name b");
        let wrong = mismatches("a", &[setting("A_LISTEN", "0.0.0.0:1")], DOC, &[], &[]);
        assert_eq!(
            wrong[0],
            "A_LISTEN's row does not give its default `0.0.0.0:1`"
        );
    }
}
