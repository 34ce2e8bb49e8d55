//! The snippets of `docs/gateways.md`, read the way a reader copies them: the fenced block
//! after each `<!-- snippet: NAME -->` marker. The tests run them with only the changes the
//! page names (host names, ports, paths, tokens), each made by [`change`], which fails when
//! the text it changes is no longer in the snippet.

use std::path::PathBuf;

/// The page the snippets come from.
pub fn page() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/gateways.md")
}

/// The fenced block after `<!-- snippet: name -->`.
pub fn snippet(name: &str) -> String {
    let text = std::fs::read_to_string(page()).unwrap();
    let marker = format!("<!-- snippet: {name} -->");
    let at = text
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/gateways.md has no `{marker}`"));
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

#[test]
fn every_snippet_the_tests_run_is_on_the_page() {
    for name in [
        "numcheck.toml",
        "kannel.conf",
        "kannel dlr-url",
        "jasmin dlr-url",
    ] {
        let s = snippet(name);
        assert!(s.trim().len() > 20, "{name}: {s:?}");
        assert!(!s.contains("```"), "{name}: {s:?}");
    }
}
