//! The snippets of `docs/gateways.md`, read the way a reader copies them: the fenced block
//! after each `<!-- snippet: NAME -->` marker. The tests run them with only the changes the
//! page names (host names, ports, paths, tokens), each made by [`change`], which fails when
//! the text it changes is no longer in the snippet.

use std::path::PathBuf;

/// The page the snippets come from.
pub fn page() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/gateways.md")
}

/// The fenced block after `<!-- snippet: name -->` on the gateway page.
pub fn snippet(name: &str) -> String {
    snippet_in(&page(), name)
}

/// The fenced block after `<!-- snippet: name -->` in the Markdown file `path`.
pub fn snippet_in(path: &std::path::Path, name: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let marker = format!("<!-- snippet: {name} -->");
    let at = text
        .find(&marker)
        .unwrap_or_else(|| panic!("{} has no `{marker}`", path.display()));
    let rest = &text[at + marker.len()..];
    let mut lines = rest.lines().skip_while(|l| l.trim().is_empty());
    let fence = lines.next().unwrap_or_default();
    assert!(
        fence.starts_with("```"),
        "the snippet `{name}` must follow its marker, found {fence:?}"
    );
    let body: Vec<&str> = lines.take_while(|l| !l.starts_with("```")).collect();
    body.join("\n") + "\n"
}

/// `text` with the one place `from` occurs changed to `to`: a change the page names.
pub fn change(snippet: &str, text: &str, from: &str, to: &str) -> String {
    let n = text.matches(from).count();
    assert_eq!(
        n, 1,
        "the snippet `{snippet}` should hold {from:?} once (found {n}): update the test with docs/gateways.md"
    );
    text.replacen(from, to, 1)
}

/// A `curl -G URL --data-urlencode 'k=v' …` snippet: its URL and its fields, in order.
pub fn curl(name: &str) -> (String, Vec<(String, String)>) {
    let text = snippet(name).replace("\\\n", " ");
    let mut url = None;
    let mut fields = Vec::new();
    let mut rest = text.as_str();
    while let Some(open) = rest.find('\'') {
        let after = &rest[open + 1..];
        let close = after
            .find('\'')
            .unwrap_or_else(|| panic!("`{name}`: unclosed quote"));
        let quoted = &after[..close];
        let before = rest[..open].trim_end();
        if before.ends_with("--data-urlencode") {
            let (k, v) = quoted
                .split_once('=')
                .unwrap_or_else(|| panic!("`{name}`: {quoted:?} is not k=v"));
            fields.push((k.to_owned(), v.to_owned()));
        } else if url.is_none() {
            url = Some(quoted.to_owned());
        }
        rest = &after[close + 1..];
    }
    let url = url.unwrap_or_else(|| panic!("`{name}` names no URL"));
    (url, fields)
}

/// The value of `key` in a curl snippet's fields.
pub fn value<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("the snippet sends no {key}"))
}

/// `fields` with `key` set to `value` (a change the page names).
pub fn with(fields: &[(String, String)], key: &str, new: &str) -> Vec<(String, String)> {
    let _ = value(fields, key);
    fields
        .iter()
        .map(|(k, v)| {
            let v = if k == key { new.to_owned() } else { v.clone() };
            (k.clone(), v)
        })
        .collect()
}

#[test]
fn curl_snippets_read_as_url_and_fields() {
    let (url, fields) = curl("kannel sendsms");
    assert!(url.ends_with("/cgi-bin/sendsms"), "{url}");
    assert_eq!(value(&fields, "dlr-mask"), "19");
    assert_eq!(value(&fields, "dlr-url"), snippet("kannel dlr-url").trim());
    let (url, fields) = curl("jasmin send");
    assert!(url.ends_with("/send"), "{url}");
    assert_eq!(value(&fields, "dlr-level"), "2");
    assert_eq!(value(&fields, "dlr-url"), snippet("jasmin dlr-url").trim());
}

#[test]
fn the_readme_shows_the_tested_callback_urls() {
    let readme = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    for name in ["kannel dlr-url", "jasmin dlr-url"] {
        assert_eq!(snippet_in(&readme, name), snippet(name), "{name}");
    }
}

#[test]
fn every_snippet_the_tests_run_is_on_the_page() {
    for name in [
        "numcheck.toml",
        "kannel.conf",
        "kannel dlr-url",
        "kannel sendsms",
        "jasmin dlr-url",
        "jasmin send",
    ] {
        let s = snippet(name);
        assert!(s.trim().len() > 20, "{name}: {s:?}");
        assert!(!s.contains("```"), "{name}: {s:?}");
    }
}
