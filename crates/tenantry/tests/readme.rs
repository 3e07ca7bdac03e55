//! The README's quick start is `examples/quick_start.rs` (which `cargo test` builds): this test
//! fails when the two drift apart.

use std::path::Path;

/// The example's code: the file without its leading `//!` header and the blank line after it.
fn example_code(source: &str) -> String {
    source
        .lines()
        .skip_while(|line| line.starts_with("//!"))
        .skip_while(|line| line.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The body of the README's first fenced Rust block after the line that links to the example.
fn readme_block(readme: &str) -> Option<String> {
    let mut lines = readme
        .lines()
        .skip_while(|line| !line.contains("examples/quick_start.rs"))
        .skip_while(|line| !line.trim_start().starts_with("```rust"));
    lines.next()?;
    let body: Vec<&str> = lines.take_while(|line| line.trim() != "```").collect();
    Some(body.join("\n"))
}

#[test]
fn readme_quick_start_is_the_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("../../README.md")).expect("README.md");
    let example =
        std::fs::read_to_string(root.join("examples/quick_start.rs")).expect("quick_start.rs");
    let block = readme_block(&readme)
        .expect("README.md: a ```rust block after the link to examples/quick_start.rs");
    let code = example_code(&example);
    assert!(
        code.lines().count() > 20,
        "the example looks truncated:\n{code}"
    );
    if block.trim_end() != code.trim_end() {
        let first_diff = block
            .lines()
            .zip(code.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| block.lines().count().min(code.lines().count()));
        panic!(
            "README.md's quick start differs from crates/tenantry/examples/quick_start.rs \
             (first at code line {}): copy the example's code (without its `//!` header) into \
             the README",
            first_diff + 1
        );
    }
}
