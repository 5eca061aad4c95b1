//! Architecture checks for the host crate: its modules form one-way layers,
//! and its files do not import each other in a cycle.
//!
//! # Layers
//!
//! The top-level modules of `host/src` (`host/src/<name>.rs` or
//! `host/src/<name>/...`) belong to layers, bottom to top:
//!
//! ```text
//! env -> infra -> runtime -> capabilities -> chat -> app -> cli
//! ```
//!
//! A file may name modules of its own layer or of a layer below, never of a
//! layer above. `lib.rs` and `main.rs` are the crate roots and belong to no
//! layer. A top-level module missing from `LAYERS` fails the test, so that a
//! new module is placed in a layer deliberately.
//!
//! # Import cycles
//!
//! Nodes are the files under `host/src`; there is an edge A -> B when A names
//! an item through B: each path is resolved to the deepest existing file
//! (for `a::b::c`: `a/b/c.rs`, `a/b/c/mod.rs`, `a/b.rs`, `a/b/mod.rs`, `a.rs`,
//! `a/mod.rs`, else `lib.rs`). Self-edges are ignored. Every group of files
//! that reach each other (a strongly connected component) fails the test.
//!
//! # How the source is read
//!
//! This is not a Rust parser, only a few rules that are enough for this crate:
//!
//! - Comments (`//`, `///`, `//!`, nested `/* */`) are removed and string
//!   literals (`"..."`, `r"..."`, `r#"..."#`, `b"..."`) are emptied, so that
//!   text in them (`"http://x"`, `"crate::x"`) is never read as code. A `'`
//!   followed by one character (or an escape) and a `'` is a char literal;
//!   any other `'` starts a lifetime or a label.
//! - The rest is split into tokens: identifiers, `::`, single punctuation.
//! - A `use` declaration gives one path per leaf: `use a::{b::C, d::{self, E}}`
//!   gives `a::b::C`, `a::d` and `a::d::E`. A `*` leaf is the module itself;
//!   `as` renames are ignored. `use<'a>` (precise capturing) is no declaration.
//! - Outside `use`, a path starting with `crate::`, `super::` or `self::` is
//!   read while `::` is followed by an identifier, so generic arguments
//!   (`crate::a::f::<T>`) end it. `pub(in path)` is a visibility and is skipped.
//! - Paths are made absolute from the module they are written in: the file's
//!   module (`infra/store/mod.rs` is `infra::store`, `infra/store/audit.rs` is
//!   `infra::store::audit`) plus the inline modules around them
//!   (`mod tests { ... }`, tracked by brace depth). `self` is that module and
//!   each `super` its parent, so `super` inside an inline test module is the
//!   file itself (a self-edge). A `use` path whose first segment is a module
//!   declared in the same scope (`mod child;` or `mod child { }`) is relative
//!   to that scope. Any other first segment (std, core, alloc, an external
//!   crate, an item in scope) is outside the crate and ignored.
//! - The layer of a path is its first absolute segment. A first segment that
//!   is no top-level module is an item of the crate root (`crate::Thing`), and
//!   the roots are exempt.
//! - Not handled: `#[path]` attributes, paths built by macros, paths in code
//!   that start with a child module's name without `self::` (`child::f()`),
//!   and `main.rs`, whose `crate` is read as the library's.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::Path;

/// The layers, bottom to top; a layer's name is its top-level module.
const LAYERS: [&str; 7] = [
    "env",
    "infra",
    "runtime",
    "capabilities",
    "chat",
    "app",
    "cli",
];

/// The crate roots: they belong to no layer, and their `mod` declarations
/// are the top-level modules.
const CRATE_ROOTS: [&str; 2] = ["lib.rs", "main.rs"];

/// The file a path resolves to when no module file holds it.
const LIBRARY_ROOT: &str = "lib.rs";

/// Where the files are, for failure messages (sources are keyed relative to it).
const SHOWN_PREFIX: &str = "host/src/";

/// Source text by path relative to `host/src`, `/`-separated: "infra/store/mod.rs".
type Sources = BTreeMap<String, String>;

/// For each file, the files it names items through.
type Graph = BTreeMap<String, BTreeSet<String>>;

// ---------------------------------------------------------------------------
// The checks on the real tree
// ---------------------------------------------------------------------------

#[test]
fn modules_only_use_their_own_layer_or_below() {
    let violations = layer_violations(&real_sources());
    assert!(
        violations.is_empty(),
        "{} layering problem(s); layers, bottom to top: {}\n{}",
        violations.len(),
        LAYERS.join(" -> "),
        violations.join("\n")
    );
}

#[test]
fn files_do_not_import_each_other_in_a_cycle() {
    let cycles = import_cycles(&real_sources());
    assert!(
        cycles.is_empty(),
        "{} group(s) of files import each other in a cycle:\n{}",
        cycles.len(),
        cycles.join("\n")
    );
}

/// Every `.rs` file under `host/src`.
fn real_sources() -> Sources {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = Sources::new();
    read_rust_files(&src, &src, &mut sources);
    assert!(!sources.is_empty(), "no .rs files under {}", src.display());
    sources
}

fn read_rust_files(root: &Path, dir: &Path, sources: &mut Sources) {
    let entries =
        fs::read_dir(dir).unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()))
            .path();
        if path.is_dir() {
            read_rust_files(root, &path, sources);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
            let relative = path
                .strip_prefix(root)
                .expect("files are listed from under the root")
                .components()
                .map(|component| component.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            sources.insert(relative, text);
        }
    }
}

// ---------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------

/// One line per problem, sorted by file: a file naming a module of a higher
/// layer, or a top-level module that has no layer.
fn layer_violations(sources: &Sources) -> Vec<String> {
    let top_level = top_level_modules(sources);
    let mut problems = BTreeSet::new();
    for (file, source) in sources {
        let facts = file_facts(file, source);
        if is_crate_root(file) {
            for module in facts
                .declared_modules
                .iter()
                .filter(|m| layer_of(m).is_none())
            {
                problems.insert(format!(
                    "{}: declares mod {module}, which has no layer",
                    shown(file)
                ));
            }
            continue;
        }
        let own = module_path_of(file)
            .into_iter()
            .next()
            .expect("a file other than the crate roots is in a module");
        let Some(own_layer) = layer_of(&own) else {
            problems.insert(format!(
                "{}: top-level module {own} has no layer (place it in LAYERS)",
                shown(file)
            ));
            continue;
        };
        for top in facts.crate_paths.iter().filter_map(|path| path.first()) {
            match layer_of(top) {
                Some(layer) if layer > own_layer => {
                    problems.insert(format!(
                        "{}: uses crate::{top} (layer {top} is above {own})",
                        shown(file)
                    ));
                }
                None if top_level.contains(top) => {
                    problems.insert(format!(
                        "{}: uses crate::{top} (module {top} has no layer)",
                        shown(file)
                    ));
                }
                // Its own layer or below, or an item of the (exempt) crate root.
                _ => {}
            }
        }
    }
    problems.into_iter().collect()
}

/// The position of a top-level module in `LAYERS`, bottom first.
fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| *layer == module)
}

/// The modules the files live in, and the ones the crate roots declare
/// (a declared module whose file is missing still needs a layer).
fn top_level_modules(sources: &Sources) -> BTreeSet<String> {
    let mut modules = BTreeSet::new();
    for (file, source) in sources {
        if is_crate_root(file) {
            modules.extend(file_facts(file, source).declared_modules);
        } else {
            modules.extend(module_path_of(file).into_iter().next());
        }
    }
    modules
}

fn is_crate_root(file: &str) -> bool {
    CRATE_ROOTS.contains(&file)
}

fn shown(file: &str) -> String {
    format!("{SHOWN_PREFIX}{file}")
}

// ---------------------------------------------------------------------------
// Import cycles
// ---------------------------------------------------------------------------

/// One report per group of files that import each other: the files, then
/// the shortest cycle through each of them.
fn import_cycles(sources: &Sources) -> Vec<String> {
    let graph = import_graph(sources);
    strongly_connected_components(&graph)
        .into_iter()
        .filter(|component| component.len() > 1)
        .map(|component| describe_component(&component, &graph))
        .collect()
}

/// Edges from each file to the files it names items through.
fn import_graph(sources: &Sources) -> Graph {
    sources
        .iter()
        .map(|(file, source)| {
            let targets = file_facts(file, source)
                .crate_paths
                .iter()
                .map(|path| deepest_file(path, sources))
                .filter(|target| target != file)
                .collect();
            (file.clone(), targets)
        })
        .collect()
}

/// The file that holds the deepest module on `path` (an absolute path whose
/// trailing segments may be items rather than modules).
fn deepest_file(path: &[String], sources: &Sources) -> String {
    for depth in (1..=path.len()).rev() {
        let module = path[..depth].join("/");
        for candidate in [format!("{module}.rs"), format!("{module}/mod.rs")] {
            if sources.contains_key(&candidate) {
                return candidate;
            }
        }
    }
    LIBRARY_ROOT.to_owned()
}

/// Tarjan's algorithm; each component sorted, the list sorted.
fn strongly_connected_components(graph: &Graph) -> Vec<Vec<String>> {
    let mut tarjan = Tarjan {
        graph,
        index: BTreeMap::new(),
        lowlink: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for node in graph.keys() {
        if !tarjan.index.contains_key(node.as_str()) {
            tarjan.visit(node);
        }
    }
    let mut components = tarjan.components;
    for component in &mut components {
        component.sort();
    }
    components.sort();
    components
}

struct Tarjan<'g> {
    graph: &'g Graph,
    /// The order in which nodes were first reached.
    index: BTreeMap<&'g str, usize>,
    /// The smallest index reachable from the node through the nodes on the stack.
    lowlink: BTreeMap<&'g str, usize>,
    stack: Vec<&'g str>,
    on_stack: BTreeSet<&'g str>,
    components: Vec<Vec<String>>,
}

impl<'g> Tarjan<'g> {
    fn visit(&mut self, node: &'g str) {
        let index = self.index.len();
        self.index.insert(node, index);
        self.lowlink.insert(node, index);
        self.stack.push(node);
        self.on_stack.insert(node);

        let graph = self.graph;
        for next in graph.get(node).into_iter().flatten() {
            let next = next.as_str();
            let reached = if !self.index.contains_key(next) {
                self.visit(next);
                self.lowlink[next]
            } else if self.on_stack.contains(next) {
                self.index[next]
            } else {
                // Already in a finished component: not part of this one.
                continue;
            };
            let lowest = self.lowlink[node].min(reached);
            self.lowlink.insert(node, lowest);
        }

        if self.lowlink[node] == index {
            let mut component = Vec::new();
            loop {
                let member = self.stack.pop().expect("the node is still on the stack");
                self.on_stack.remove(member);
                component.push(member.to_owned());
                if member == node {
                    break;
                }
            }
            self.components.push(component);
        }
    }
}

fn describe_component(component: &[String], graph: &Graph) -> String {
    let members: BTreeSet<&str> = component.iter().map(String::as_str).collect();
    // The same cycle found from different members is listed once.
    let cycles: BTreeSet<Vec<&str>> = members
        .iter()
        .map(|start| {
            let cycle = shortest_cycle_through(start, &members, graph)
                .expect("every file of a strongly connected component is on a cycle");
            rotated_to_smallest(cycle)
        })
        .collect();
    let files: Vec<String> = members.iter().map(|file| shown(file)).collect();
    let mut lines = vec![format!("{} files: {}", files.len(), files.join(", "))];
    for cycle in cycles {
        let closed = cycle.iter().chain(cycle.first());
        let chain: Vec<String> = closed.map(|file| shown(file)).collect();
        lines.push(format!("    {}", chain.join(" -> ")));
    }
    lines.join("\n")
}

/// The shortest path from `start` back to itself through `members` (breadth
/// first), without repeating `start` at the end.
fn shortest_cycle_through<'g>(
    start: &'g str,
    members: &BTreeSet<&str>,
    graph: &'g Graph,
) -> Option<Vec<&'g str>> {
    let successors = |node: &str| {
        graph
            .get(node)
            .into_iter()
            .flatten()
            .map(String::as_str)
            .filter(|next| members.contains(next))
    };
    // How each reached node was first reached; `start` is never entered.
    let mut reached_from: BTreeMap<&'g str, &'g str> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for next in successors(node) {
            if next == start {
                let mut path = vec![node];
                while let Some(&previous) = path.last().and_then(|last| reached_from.get(last)) {
                    path.push(previous);
                }
                path.reverse();
                return Some(path);
            }
            if !reached_from.contains_key(next) {
                reached_from.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    None
}

/// A cycle starting at its smallest file, so that rotations compare equal.
fn rotated_to_smallest(mut cycle: Vec<&str>) -> Vec<&str> {
    let smallest = (0..cycle.len())
        .min_by_key(|&at| cycle[at])
        .expect("a cycle has files");
    cycle.rotate_left(smallest);
    cycle
}

// ---------------------------------------------------------------------------
// Reading one file
// ---------------------------------------------------------------------------

/// What one file says about the rest of the crate.
#[derive(Debug)]
struct FileFacts {
    /// The crate paths the file names, absolute (without `crate`).
    crate_paths: BTreeSet<Vec<String>>,
    /// The modules declared (`mod name;` or `mod name { }`) at file scope.
    declared_modules: BTreeSet<String>,
}

/// A path as written, with the module it is written in.
struct WrittenPath {
    scope: Vec<String>,
    segments: Vec<String>,
    in_use: bool,
}

/// The module a file is: `infra/store/mod.rs` and `infra/store.rs` are
/// `infra::store`; the crate roots are the root (no segments).
fn module_path_of(file: &str) -> Vec<String> {
    if is_crate_root(file) {
        return Vec::new();
    }
    let without_extension = file.strip_suffix(".rs").expect("only .rs files are read");
    let mut segments: Vec<String> = without_extension.split('/').map(str::to_owned).collect();
    if segments.last().is_some_and(|last| last == "mod") {
        segments.pop();
    }
    segments
}

fn file_facts(file: &str, source: &str) -> FileFacts {
    let tokens = tokenize(&strip_comments_and_strings(source));
    let file_module = module_path_of(file);
    let mut written = Vec::new();
    // Declared module names by the scope (module path) they are declared in.
    let mut declared: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    // The inline modules around the current token, each with the brace depth
    // outside it (its closing `}` brings the depth back there).
    let mut inline_modules: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut at = 0;
    while at < tokens.len() {
        let scope = || -> Vec<String> {
            let inline = inline_modules.iter().map(|(name, _)| name);
            file_module.iter().chain(inline).cloned().collect()
        };
        let next = tokens.get(at + 1).map(String::as_str);
        match tokens[at].as_str() {
            "mod" if next.is_some_and(is_identifier) => {
                let name = tokens[at + 1].clone();
                declared.entry(scope()).or_default().insert(name.clone());
                if tokens.get(at + 2).is_some_and(|token| token == "{") {
                    inline_modules.push((name, depth));
                    depth += 1;
                    at += 3;
                } else {
                    at += 2;
                }
            }
            "{" => {
                depth += 1;
                at += 1;
            }
            "}" => {
                depth = depth.saturating_sub(1);
                if inline_modules
                    .last()
                    .is_some_and(|&(_, outside)| outside == depth)
                {
                    inline_modules.pop();
                }
                at += 1;
            }
            // `use<'a>` is precise capturing in an `impl Trait`, not a declaration.
            "use" if next != Some("<") => {
                let end = position_of(&tokens, at, ";");
                let use_scope = scope();
                for segments in expand_use_tree(&tokens[at + 1..end]) {
                    let scope = use_scope.clone();
                    written.push(WrittenPath {
                        scope,
                        segments,
                        in_use: true,
                    });
                }
                at = end + 1;
            }
            // `pub(in crate::a)` restricts visibility; it names no item.
            "pub" if next == Some("(") && tokens.get(at + 2).is_some_and(|t| t == "in") => {
                at = position_of(&tokens, at, ")") + 1;
            }
            "crate" | "super" | "self"
                if next == Some("::") && !follows_path_separator(&tokens, at) =>
            {
                let segments = path_starting_at(&tokens, at);
                // Each segment but the first came with its `::`.
                at += 2 * segments.len() - 1;
                written.push(WrittenPath {
                    scope: scope(),
                    segments,
                    in_use: false,
                });
            }
            _ => at += 1,
        }
    }

    let crate_paths = written
        .iter()
        .filter_map(|path| absolute_path(path, &declared))
        .collect();
    let declared_modules = declared.remove(&file_module).unwrap_or_default();
    FileFacts {
        crate_paths,
        declared_modules,
    }
}

/// The index of the first `wanted` token from `from` on (the end if none).
fn position_of(tokens: &[String], from: usize, wanted: &str) -> usize {
    tokens[from..]
        .iter()
        .position(|token| token == wanted)
        .map_or(tokens.len(), |offset| from + offset)
}

fn follows_path_separator(tokens: &[String], at: usize) -> bool {
    at > 0 && tokens[at - 1] == "::"
}

/// `crate::a::b` from its first token, while `::` is followed by an identifier.
fn path_starting_at(tokens: &[String], start: usize) -> Vec<String> {
    let mut segments = vec![tokens[start].clone()];
    let mut at = start + 1;
    while tokens.get(at).is_some_and(|token| token == "::")
        && tokens.get(at + 1).is_some_and(|token| is_identifier(token))
    {
        segments.push(tokens[at + 1].clone());
        at += 2;
    }
    segments
}

/// The path from the crate root (without `crate`) that a written path names,
/// or `None` when it names something outside the crate.
fn absolute_path(
    written: &WrittenPath,
    declared: &BTreeMap<Vec<String>, BTreeSet<String>>,
) -> Option<Vec<String>> {
    let (first, rest) = written.segments.split_first()?;
    let scope = written.scope.as_slice();
    match first.as_str() {
        "crate" => Some(rest.to_vec()),
        "self" => Some([scope, rest].concat()),
        "super" => {
            let supers = written
                .segments
                .iter()
                .take_while(|s| *s == "super")
                .count();
            let parent = scope.len().checked_sub(supers)?;
            Some([&scope[..parent], &written.segments[supers..]].concat())
        }
        child
            if written.in_use
                && declared
                    .get(scope)
                    .is_some_and(|names| names.contains(child)) =>
        {
            Some([scope, &written.segments].concat())
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// `use` trees
// ---------------------------------------------------------------------------

/// One path per leaf of the tokens between `use` and `;`:
/// `a::{b::C, d::{self, E as F}, g::*}` gives `a::b::C`, `a::d`, `a::d::E`, `a::g`.
fn expand_use_tree(tokens: &[String]) -> Vec<Vec<String>> {
    let mut leaves = Vec::new();
    let mut at = 0;
    while at < tokens.len() {
        let before = at;
        expand_use_subtree(tokens, &mut at, &[], &mut leaves);
        // Never stall on a token the grammar does not expect.
        at = at.max(before + 1);
    }
    leaves
}

fn expand_use_subtree(
    tokens: &[String],
    at: &mut usize,
    prefix: &[String],
    leaves: &mut Vec<Vec<String>>,
) {
    let mut path = prefix.to_vec();
    // `::std::x` is an external path; keep the marker so it is never relative.
    if tokens.get(*at).is_some_and(|token| token == "::") {
        path.push("::".to_owned());
        *at += 1;
    }
    loop {
        match tokens.get(*at).map(String::as_str) {
            Some("{") => {
                *at += 1;
                while tokens.get(*at).is_some_and(|token| token != "}") {
                    let before = *at;
                    expand_use_subtree(tokens, at, &path, leaves);
                    if tokens.get(*at).is_some_and(|token| token == ",") {
                        *at += 1;
                    }
                    *at = (*at).max(before + 1);
                }
                *at += 1;
                return;
            }
            Some("*") => {
                *at += 1;
                leaves.push(path);
                return;
            }
            Some(segment) if is_identifier(segment) => {
                *at += 1;
                // In a group, `self` is the module the group is in: `x::{self}` is `x`.
                if segment != "self" || path.is_empty() {
                    path.push(segment.to_owned());
                }
                if tokens.get(*at).is_some_and(|token| token == "::") {
                    *at += 1;
                    continue;
                }
                if tokens.get(*at).is_some_and(|token| token == "as") {
                    *at += 2;
                }
                leaves.push(path);
                return;
            }
            _ => {
                *at += 1;
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

fn is_identifier_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// A (possibly raw, `r#type`) identifier or keyword; numbers are not.
fn is_identifier(token: &str) -> bool {
    let name = token.strip_prefix("r#").unwrap_or(token);
    name.starts_with(|c: char| c.is_alphabetic() || c == '_')
        && name.chars().all(is_identifier_char)
}

/// Identifiers (raw ones keep their `r#`, so `r#use` is no keyword), `::`,
/// and single punctuation characters.
fn tokenize(code: &str) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        match &chars[at..] {
            [c, ..] if c.is_whitespace() => at += 1,
            ['r', '#', c, ..] if is_identifier_char(*c) => {
                let end = end_of_identifier(&chars, at + 2);
                tokens.push(chars[at..end].iter().collect());
                at = end;
            }
            [c, ..] if is_identifier_char(*c) => {
                let end = end_of_identifier(&chars, at);
                tokens.push(chars[at..end].iter().collect());
                at = end;
            }
            [':', ':', ..] => {
                tokens.push("::".to_owned());
                at += 2;
            }
            [c, ..] => {
                tokens.push(c.to_string());
                at += 1;
            }
            [] => unreachable!("the loop stops at the end"),
        }
    }
    tokens
}

fn end_of_identifier(chars: &[char], start: usize) -> usize {
    chars[start..]
        .iter()
        .position(|&c| !is_identifier_char(c))
        .map_or(chars.len(), |offset| start + offset)
}

// ---------------------------------------------------------------------------
// Comments and literals
// ---------------------------------------------------------------------------

/// The code without comments and with every string literal emptied (`""`)
/// and every char literal blanked (`' '`), so that only code is left to read.
/// Line breaks are kept.
fn strip_comments_and_strings(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut code = String::with_capacity(source.len());
    let mut at = 0;
    while at < chars.len() {
        match &chars[at..] {
            ['/', '/', ..] => at = end_of_line_comment(&chars, at),
            ['/', '*', ..] => {
                at = end_of_block_comment(&chars, at);
                code.push(' ');
            }
            ['"', ..] => {
                at = end_of_string(&chars, at);
                code.push_str("\"\"");
            }
            ['r', ..] if starts_raw_string(&chars, at) => {
                at = end_of_raw_string(&chars, at);
                code.push_str("\"\"");
            }
            ['\'', ..] => {
                if let Some(end) = end_of_char_literal(&chars, at) {
                    at = end;
                    code.push_str("' '");
                } else {
                    // A lifetime or a label: `'a`.
                    code.push('\'');
                    at += 1;
                }
            }
            [c, ..] => {
                code.push(*c);
                at += 1;
            }
            [] => unreachable!("the loop stops at the end"),
        }
    }
    code
}

/// Up to (not including) the line break, which stays in the code.
fn end_of_line_comment(chars: &[char], start: usize) -> usize {
    chars[start..]
        .iter()
        .position(|&c| c == '\n')
        .map_or(chars.len(), |offset| start + offset)
}

/// Past the `*/` that closes the comment; block comments nest in Rust.
fn end_of_block_comment(chars: &[char], start: usize) -> usize {
    let mut depth = 0;
    let mut at = start;
    while at < chars.len() {
        match &chars[at..] {
            ['/', '*', ..] => {
                depth += 1;
                at += 2;
            }
            ['*', '/', ..] => {
                depth -= 1;
                at += 2;
                if depth == 0 {
                    return at;
                }
            }
            _ => at += 1,
        }
    }
    chars.len()
}

/// Past the closing `"`; a backslash escapes the character after it.
fn end_of_string(chars: &[char], start: usize) -> usize {
    let mut at = start + 1;
    while at < chars.len() {
        match chars[at] {
            '\\' => at += 2,
            '"' => return at + 1,
            _ => at += 1,
        }
    }
    chars.len()
}

/// Whether the `r` at `at` opens `r"..."` or `r#"..."#`: it must begin a
/// token (or follow a `b`/`c` that does, `br"..."`), so `for"` or `bar#"` do not.
fn starts_raw_string(chars: &[char], at: usize) -> bool {
    let begins_token = |index: usize| index == 0 || !is_identifier_char(chars[index - 1]);
    let after_prefix = at >= 1 && matches!(chars[at - 1], 'b' | 'c') && begins_token(at - 1);
    let hashes = count_hashes(chars, at + 1);
    (begins_token(at) || after_prefix) && chars.get(at + 1 + hashes) == Some(&'"')
}

/// Past the `"` and as many `#` as opened the raw string; no escapes inside.
fn end_of_raw_string(chars: &[char], start: usize) -> usize {
    let hashes = count_hashes(chars, start + 1);
    let mut at = start + 1 + hashes + 1;
    while at < chars.len() {
        if chars[at] == '"' && count_hashes(chars, at + 1) >= hashes {
            return at + 1 + hashes;
        }
        at += 1;
    }
    chars.len()
}

fn count_hashes(chars: &[char], start: usize) -> usize {
    chars
        .get(start..)
        .map_or(0, |rest| rest.iter().take_while(|&&c| c == '#').count())
}

/// Past a char literal starting at `start` (`'x'`, `'"'`, `'\''`, `'\u{1F600}'`),
/// or `None` when the `'` starts a lifetime or a label.
fn end_of_char_literal(chars: &[char], start: usize) -> Option<usize> {
    match chars.get(start + 1..)? {
        // An escape: the literal closes at the next `'` (the escaped
        // character itself may be a `'`, so the search starts after it).
        ['\\', _, rest @ ..] => {
            let close = rest.iter().take(10).position(|&c| c == '\'')?;
            Some(start + 3 + close + 1)
        }
        [_, '\'', ..] => Some(start + 3),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Tests of the checker itself
// ---------------------------------------------------------------------------

mod checker {
    use super::*;

    fn sources(files: &[(&str, &str)]) -> Sources {
        files
            .iter()
            .map(|(file, source)| ((*file).to_owned(), (*source).to_owned()))
            .collect()
    }

    fn paths(file: &str, source: &str) -> Vec<String> {
        file_facts(file, source)
            .crate_paths
            .iter()
            .map(|path| path.join("::"))
            .collect()
    }

    fn edges(graph: &Graph, file: &str) -> Vec<String> {
        graph[file].iter().cloned().collect()
    }

    #[test]
    fn comments_and_strings_are_not_code() {
        let source = r##"
//! crate::docs
/// crate::doc_comment
fn f() -> &'static str { // crate::line
    /* crate::block /* crate::nested */ crate::still_comment */
    let url = "http://x/crate::in_string \" crate::escaped";
    let raw = r#"crate::raw "quoted" "#;
    let bytes = br"crate::raw_bytes";
    let plain = r"crate::plain_raw";
    crate::real::code()
}
"##;
        let code = strip_comments_and_strings(source);
        assert!(!code.contains("docs") && !code.contains("doc_comment") && !code.contains("line"));
        assert!(!code.contains("block") && !code.contains("nested"));
        assert!(!code.contains("still_comment"));
        assert!(!code.contains("http") && !code.contains("escaped") && !code.contains("quoted"));
        assert!(!code.contains("raw_bytes") && !code.contains("plain_raw"));
        assert!(code.contains("crate::real::code()"));
        assert!(code.contains("&'static str"), "lifetimes stay: {code}");
        assert_eq!(paths("x.rs", source), ["real::code"]);
    }

    #[test]
    fn char_literals_do_not_open_strings_and_lifetimes_are_not_char_literals() {
        let source = r#"
fn f<'a, 'b>(x: &'a str) -> bool {
    let quote = '"';
    let apostrophe = '\'';
    let backslash = '\\';
    let unicode = '\u{1F600}';
    'outer: loop { break 'outer; }
    crate::after::chars(b'"', x) // '"
}
"#;
        let code = strip_comments_and_strings(source);
        assert!(code.contains("fn f<'a, 'b>(x: &'a str)"), "{code}");
        assert!(code.contains("'outer: loop { break 'outer; }"), "{code}");
        assert_eq!(paths("x.rs", source), ["after::chars"]);
    }

    #[test]
    fn grouped_and_nested_uses_give_one_path_per_leaf() {
        let tokens = tokenize(
            "crate::{infra::store::Store, runtime::{CallState, bindings::{self, X as Y}}, chat::*}",
        );
        let leaves: Vec<String> = expand_use_tree(&tokens)
            .iter()
            .map(|path| path.join("::"))
            .collect();
        assert_eq!(
            leaves,
            [
                "crate::infra::store::Store",
                "crate::runtime::CallState",
                "crate::runtime::bindings",
                "crate::runtime::bindings::X",
                "crate::chat",
            ]
        );
        assert_eq!(
            paths(
                "cli/mod.rs",
                "use crate::infra::{self, store::{Store, audit::Entry}};\nuse std::fmt;\nuse ::external::x;"
            ),
            ["infra", "infra::store::Store", "infra::store::audit::Entry"]
        );
    }

    #[test]
    fn inline_paths_are_read_and_visibilities_and_generics_are_not() {
        let source = "
pub(crate) fn f() {}
pub(in crate::runtime) fn g() {}
pub(super) fn h() {}
fn k() -> impl Sized + use<> {
    crate::infra::metrics::metrics().inc();
    let v = crate::runtime::Registry::<u8>::new();
    $crate::chat::x!();
}
";
        assert_eq!(
            paths("runtime/x.rs", source),
            ["chat::x", "infra::metrics::metrics", "runtime::Registry"]
        );
    }

    #[test]
    fn super_and_self_resolve_from_the_files_module() {
        let tree = sources(&[
            ("lib.rs", "pub mod infra;"),
            ("infra/mod.rs", "pub mod store;\npub struct Top;"),
            ("infra/store/mod.rs", "mod audit;\nuse super::Top;"),
            (
                "infra/store/audit.rs",
                "use super::Store;\n\
                 #[cfg(test)]\n\
                 mod tests {\n\
                     use super::*;\n\
                     use super::super::credentials::Key;\n\
                     fn f() { self::helper(); crate::infra::Top; }\n\
                 }\n\
                 fn g() { self::g(); }",
            ),
            ("infra/store/credentials.rs", ""),
        ]);
        let graph = import_graph(&tree);
        assert_eq!(edges(&graph, "infra/store/mod.rs"), ["infra/mod.rs"]);
        // `super` in the inline test module is the file itself (ignored);
        // `super::super` there is `infra::store`, whose `credentials` is a file.
        assert_eq!(
            edges(&graph, "infra/store/audit.rs"),
            [
                "infra/mod.rs",
                "infra/store/credentials.rs",
                "infra/store/mod.rs"
            ]
        );
        assert_eq!(
            paths("infra/store/audit.rs", &tree["infra/store/audit.rs"]),
            [
                "infra::Top",
                "infra::store::Store",
                "infra::store::audit",
                "infra::store::audit::g",
                "infra::store::audit::tests::helper",
                "infra::store::credentials::Key",
            ]
        );
    }

    #[test]
    fn files_resolve_to_the_deepest_existing_module_file() {
        let tree = sources(&[("a.rs", ""), ("a/b/mod.rs", ""), ("a/b/c.rs", "")]);
        let resolve = |path: &str| {
            let segments: Vec<String> = path.split("::").map(str::to_owned).collect();
            deepest_file(&segments, &tree)
        };
        assert_eq!(resolve("a::b::c::Item"), "a/b/c.rs");
        assert_eq!(resolve("a::b::Item"), "a/b/mod.rs");
        assert_eq!(resolve("a::Item"), "a.rs");
        assert_eq!(resolve("RootItem"), "lib.rs");
    }

    #[test]
    fn uses_of_declared_children_are_edges_and_other_crates_are_not() {
        let tree = sources(&[
            (
                "cache/mod.rs",
                "mod local;\nmod redis;\npub use local::Local;\npub use self::redis::DEADLINE;\n\
                 use tokio::sync::Mutex;\nuse std::sync::Arc;",
            ),
            ("cache/local.rs", "use redis::Client;"),
            ("cache/redis.rs", ""),
        ]);
        let graph = import_graph(&tree);
        assert_eq!(
            edges(&graph, "cache/mod.rs"),
            ["cache/local.rs", "cache/redis.rs"]
        );
        // `redis` is not declared in local.rs: it is the external crate.
        assert!(graph["cache/local.rs"].is_empty());
    }

    #[test]
    fn a_cycle_is_reported_with_its_files_and_a_dag_is_not() {
        let cyclic = sources(&[
            ("runtime/mod.rs", "mod call;\nmod plugin;"),
            ("runtime/call.rs", "use super::plugin::CallContext;"),
            (
                "runtime/plugin.rs",
                "use super::call::CallState;\nuse crate::infra::Store;",
            ),
            ("infra.rs", ""),
        ]);
        assert_eq!(
            import_cycles(&cyclic),
            [
                "2 files: host/src/runtime/call.rs, host/src/runtime/plugin.rs\n    \
              host/src/runtime/call.rs -> host/src/runtime/plugin.rs -> host/src/runtime/call.rs"
            ]
        );

        let acyclic = sources(&[
            ("a.rs", "use crate::b::X; use crate::c::Y;"),
            ("b.rs", "use crate::c::Y;"),
            ("c.rs", ""),
        ]);
        assert!(import_cycles(&acyclic).is_empty());
    }

    #[test]
    fn every_cycle_of_a_larger_component_is_listed_once() {
        let graph: Graph = [
            ("a", &["b"][..]),
            ("b", &["c", "a"][..]),
            ("c", &["a"][..]),
            ("d", &["a"][..]),
        ]
        .into_iter()
        .map(|(node, targets)| {
            let targets = targets.iter().map(|t| (*t).to_owned()).collect();
            (node.to_owned(), targets)
        })
        .collect();
        assert_eq!(
            strongly_connected_components(&graph),
            [vec!["a", "b", "c"], vec!["d"]]
        );
        assert_eq!(
            describe_component(&["a".to_owned(), "b".to_owned(), "c".to_owned()], &graph),
            "3 files: host/src/a, host/src/b, host/src/c\n    \
             host/src/a -> host/src/b -> host/src/a\n    \
             host/src/a -> host/src/b -> host/src/c -> host/src/a"
        );
    }

    #[test]
    fn every_layer_violation_and_unlayered_module_is_reported() {
        let tree = sources(&[
            (
                "lib.rs",
                "pub mod app; pub mod chat; pub mod infra; pub mod legacy;",
            ),
            ("main.rs", "fn main() { wasmbot::cli::main() }"),
            (
                "infra/store.rs",
                "use crate::{chat::Dispatcher, runtime::CallState};",
            ),
            (
                "chat/telegram/mod.rs",
                "use crate::app::Config;\nuse crate::infra::store::Store;\n\
                 fn f() { crate::app::root::run(); crate::cli::main(); crate::legacy::x(); }\n\
                 fn g() -> crate::RootItem { todo!() }\n\
                 #[cfg(test)] mod tests { use crate::app::Root; }",
            ),
            ("legacy.rs", "use crate::cli::Args;"),
        ]);
        assert_eq!(
            layer_violations(&tree),
            [
                "host/src/chat/telegram/mod.rs: uses crate::app (layer app is above chat)",
                "host/src/chat/telegram/mod.rs: uses crate::cli (layer cli is above chat)",
                "host/src/chat/telegram/mod.rs: uses crate::legacy (module legacy has no layer)",
                "host/src/infra/store.rs: uses crate::chat (layer chat is above infra)",
                "host/src/infra/store.rs: uses crate::runtime (layer runtime is above infra)",
                "host/src/legacy.rs: top-level module legacy has no layer (place it in LAYERS)",
                "host/src/lib.rs: declares mod legacy, which has no layer",
            ]
        );
    }

    #[test]
    fn module_paths_follow_the_file_layout() {
        assert_eq!(module_path_of("infra/store/mod.rs"), ["infra", "store"]);
        assert_eq!(
            module_path_of("infra/store/audit.rs"),
            ["infra", "store", "audit"]
        );
        assert_eq!(module_path_of("infra.rs"), ["infra"]);
        assert!(module_path_of("lib.rs").is_empty());
    }
}
