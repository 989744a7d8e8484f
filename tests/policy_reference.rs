//! The policy key reference (`docs/policy-reference.md`, shown in the `policy` module docs) is
//! generated from the presets: this test fails when a key or a preset default changes and the
//! reference was not regenerated (`UPDATE_POLICY_REFERENCE=1 cargo test --test policy_reference`).

#![allow(clippy::disallowed_methods)] // a test reads and writes its golden file

use afiliado::Policy;

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, v, out);
            }
        }
        serde_json::Value::Null => out.push((prefix.to_owned(), "—".to_owned())),
        serde_json::Value::String(s) => out.push((prefix.to_owned(), format!("`\"{s}\"`"))),
        other => out.push((prefix.to_owned(), format!("`{other}`"))),
    }
}

fn reference() -> String {
    let presets = [Policy::isspol(), Policy::iess(), Policy::recommended()];
    let columns: Vec<Vec<(String, String)>> = presets
        .iter()
        .map(|p| {
            let mut out = Vec::new();
            flatten("", &serde_json::to_value(p).unwrap(), &mut out);
            out
        })
        .collect();
    let mut keys: Vec<String> = columns.iter().flatten().map(|(k, _)| k.clone()).collect();
    keys.sort();
    keys.dedup();
    let cell = |col: &Vec<(String, String)>, key: &str| {
        col.iter()
            .find(|(k, _)| k == key)
            .map_or("—".to_owned(), |(_, v)| v.replace('|', "\\|"))
    };
    let mut text = String::from(
        "## Reference: every key and its default per preset\n\n\
         Generated from the presets by `tests/policy_reference.rs`. A file with\n\
         `preset = \"…\"` sets only the keys it names; `—` means not set (off, or no limit).\n\
         Sections and keys are documented on the struct of the same name below.\n\n\
         | key | `isspol` | `iess` | `recommended` |\n|---|---|---|---|\n",
    );
    for key in keys {
        text.push_str(&format!(
            "| `{key}` | {} | {} | {} |\n",
            cell(&columns[0], &key),
            cell(&columns[1], &key),
            cell(&columns[2], &key)
        ));
    }
    text
}

#[test]
fn the_policy_reference_matches_the_presets() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/policy-reference.md");
    let want = reference();
    if std::env::var_os("UPDATE_POLICY_REFERENCE").is_some() {
        std::fs::write(path, &want).unwrap();
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "docs/policy-reference.md is out of date: run \
         `UPDATE_POLICY_REFERENCE=1 cargo test --test policy_reference` and commit it"
    );
}
