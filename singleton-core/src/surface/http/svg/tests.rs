//! Tests of the SVG drawing: well-formed, escaped, counted, cycles drawn, bounded width.

use super::*;
use crate::GraphEdge;

/// A graph of `names` (pending when the name starts with `p`) and `edges`, from → to.
fn graph<S: AsRef<str>>(names: &[S], edges: &[(S, S)]) -> Graph {
    let node = |name: &S| GraphNode {
        name: name.as_ref().into(),
        type_name: "app::Service",
        created: !name.as_ref().starts_with('p'),
        eager: false,
        is_async: name.as_ref().ends_with('a'),
        init_ms: Some(1.5),
    };
    let edges = edges.iter().map(|(f, t)| GraphEdge { from: f.as_ref().into(), to: t.as_ref().into() });
    Graph::new(names.iter().map(node).collect(), edges.collect())
}

/// Panics unless `svg` is well-formed: tags nest and close, every attribute is `name="value"`,
/// and `<` only opens tags and `&` only starts one of the five entities, in text and values.
fn assert_well_formed(svg: &str) {
    let text = |t: &str| {
        assert!(!t.contains('<'), "raw < in {t:?}");
        let entity =
            |i: usize| ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].iter().any(|e| t[i..].starts_with(e));
        assert!(t.match_indices('&').all(|(i, _)| entity(i)), "raw & in {t:?}");
    };
    let (mut open, mut rest) = (Vec::new(), svg);
    while let Some(start) = rest.find('<') {
        text(&rest[..start]);
        let end = start + rest[start..].find('>').expect("unclosed tag");
        let tag = &rest[start + 1..end];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(open.pop(), Some(name));
        } else {
            let body = tag.trim_end_matches('/');
            let (name, mut attrs) = body.split_at(body.find(' ').unwrap_or(body.len()));
            while let Some(eq) = attrs.find("=\"") {
                assert!(attrs[..eq].trim().chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{attrs}");
                let close = eq + 2 + attrs[eq + 2..].find('"').expect("unclosed value");
                text(&attrs[eq + 2..close]);
                attrs = &attrs[close + 1..];
            }
            assert!(attrs.trim().is_empty() && !name.is_empty(), "{tag}");
            if !tag.ends_with('/') {
                open.push(name);
            }
        }
        rest = &rest[end + 1..];
    }
    text(rest);
    assert!(open.is_empty(), "unclosed: {open:?}");
}

/// The drawing of `g`, checked for what every drawing holds: well-formed, deterministic, one
/// `edge` per edge, one `node created` or `node pending` per node.
fn checked(g: &Graph) -> String {
    let svg = graph_svg(g);
    assert_well_formed(&svg);
    assert_eq!(svg, graph_svg(g), "not deterministic");
    assert_eq!(svg.matches(r#"<g class="edge"#).count(), g.edges.len());
    let created = g.nodes.iter().filter(|n| n.created).count();
    assert_eq!(svg.matches(r#"<g class="node created""#).count(), created);
    assert_eq!(svg.matches(r#"<g class="node pending""#).count(), g.nodes.len() - created);
    svg
}

/// The number after `before` in `svg`, up to `until`.
fn number(svg: &str, before: &str, until: char) -> f64 {
    let rest = &svg[svg.find(before).expect(before) + before.len()..];
    rest[..rest.find(until).unwrap()].parse().unwrap()
}

/// The y of node `name`'s box.
fn y(svg: &str, name: &str) -> f64 {
    let translate = format!("data-name=\"{name}\" transform=\"translate(");
    let rest = &svg[svg.find(&translate).unwrap() + translate.len()..];
    number(rest, " ", ')')
}

#[test]
fn small_graphs() {
    assert!(checked(&Graph::default()).contains("no singletons"));
    let svg = checked(&graph(&["config", "pool"], &[]));
    assert!(svg.contains(r#"data-name="config""#) && svg.contains(">Service</text>"));
    assert!(svg.contains(r#"stroke-dasharray="5 3""#), "pending is dashed");
    let chain = graph(&["a", "b", "c", "d", "e"], &[("a", "b"), ("b", "c"), ("c", "d"), ("d", "e")]);
    let svg = checked(&chain);
    assert!(["a", "b", "c", "d", "e"].windows(2).all(|w| y(&svg, w[0]) < y(&svg, w[1])), "{svg}");
    assert!(svg.contains(r#"data-from="a" data-to="b""#));
    let diamond = [("api", "auth"), ("api", "pcache"), ("auth", "db"), ("pcache", "db")];
    let svg = checked(&graph(&["api", "auth", "db", "pcache"], &diamond));
    assert!(y(&svg, "api") < y(&svg, "auth") && y(&svg, "auth") < y(&svg, "db"));
}

#[test]
fn cycles_and_loops() {
    let svg = checked(&graph(&["a", "b"], &[("a", "b"), ("b", "a")]));
    assert_eq!(svg.matches(r#"<g class="edge cycle""#).count(), 1);
    let svg = checked(&graph(&["a", "b", "c", "s"], &[("a", "b"), ("b", "c"), ("c", "a"), ("s", "s")]));
    assert_eq!(svg.matches(r#"<g class="edge cycle""#).count(), 1);
    assert!(svg.contains(r#"data-from="s" data-to="s""#));
}

#[test]
fn hostile_and_long_names() {
    let long = "a".repeat(100);
    let names = ["<script>alert(1)</script>", "a&b\"c'", "x]]>\u{1}y", &long];
    let svg = checked(&graph(&names, &[(names[0], names[1]), (names[1], "gone<")]));
    assert!(!svg.contains("<script") && svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(svg.contains(r#"data-name="a&amp;b&quot;c&apos;""#));
    assert!(svg.contains(r#"<g class="ghost" data-name="gone&lt;""#), "a name no node has");
    assert!(svg.contains(&format!(">{}…</text>", "a".repeat(MAX_CHARS - 1))));
}

#[test]
fn two_hundred_singletons_stay_readable() {
    let names: Vec<String> = (0..200).map(|i| format!("svc_{i:03}")).collect();
    let edge = |f: usize, t: usize| (names[f].clone(), names[t].clone());
    // Trees of 1 to 12 nodes, some nodes depending on two; a star; one big ternary tree.
    let (mut trees, mut start, mut size) = (Vec::new(), 0, 1);
    while start < 200 {
        for i in start + 1..(start + size).min(200) {
            trees.push(edge(i, start + (i - start - 1) / 2));
            trees.extend((i % 5 == 0 && i >= start + 2).then(|| edge(i, start)));
        }
        (start, size) = (start + size, size % 12 + 1);
    }
    let star = (1..151).map(|i| edge(i, 0)).collect();
    let tree = (1..200).map(|i| edge(i, (i - 1) / 3)).collect();
    for (what, edges, max_width) in [
        ("isolated", vec![], 1600.0),
        ("trees", trees, 1600.0),
        ("star", star, 1600.0),
        ("tree", tree, 3200.0),
    ] {
        let g = graph(&names, &edges);
        let started = std::time::Instant::now();
        let svg = graph_svg(&g);
        println!("200 nodes, {} edges ({what}): {:?}", g.edges.len(), started.elapsed());
        assert_eq!(svg, checked(&g));
        assert!(number(&svg, "viewBox=\"0 0 ", ' ') <= max_width, "{what}");
    }
}

#[test]
fn costly_pieces_fall_back_to_layers() {
    // 24 layers of 2, each node depending on both of the next layer: 2^23 paths.
    let names: Vec<String> = (0..48).map(|i| format!("n{i:02}")).collect();
    let edges: Vec<(&str, &str)> =
        (0..46).flat_map(|i| [0, 1].map(|k| (&*names[i], &*names[(i / 2 + 1) * 2 + k]))).collect();
    let svg = checked(&graph(&names.iter().map(String::as_str).collect::<Vec<_>>(), &edges));
    assert!(y(&svg, "n00") < y(&svg, "n46"));
}
