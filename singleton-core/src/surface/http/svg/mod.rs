//! The dependency graph drawn as one self-contained SVG document, laid out in Rust.
//!
//! Layout: the singletons that have an edge are split into connected pieces, each laid out top to
//! bottom (dependents above their dependencies) by layout-rs, and the pieces are packed side by
//! side in rows of bounded width. The singletons with no edge at all go in a grid below, a few per
//! row: layout-rs would put them in one rank, a row 30,000 px wide at 200 singletons. Cycles are
//! broken first (an edge that closes one, found by a depth-first search in name order, is laid
//! out reversed and drawn pointing back up, in red), so layout-rs only sees a DAG. A piece with a
//! layer of more than `MAX_LAYER` nodes (a star: 150 singletons that all use `config`), whose
//! layout would be too costly (layout-rs follows every path when it checks reachability, and its
//! rank optimizations grow with the cube of a rank's width), or that layout-rs fails on, is drawn
//! here in plain layers instead, a wide layer wrapped in several rows.
//!
//! Drawing: the positions are read from layout-rs through a recording backend and the SVG is
//! written here, so every name is escaped and every item carries its classes. A node is a
//! `<g class="node created">` or `<g class="node pending">` with `data-name`: its name and, smaller,
//! its short type (and `async`, `eager`), in a blue box with a solid outline when created, a grey
//! one with a dashed outline when pending. An edge is one `<g class="edge">` with `data-from` and
//! `data-to`, its arrow pointing from the dependent to its dependency. A name an edge refers to
//! that is no node is a `<g class="ghost">`. Each item has a `<title>`. Colours are attributes, not
//! a `<style>` element, and there are no ids, so the document can be inlined into a page as is.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};

use layout::adt::dag::NodeHandle;
use layout::core::base::Orientation;
use layout::core::format::{ClipHandle, RenderBackend};
use layout::core::geometry::Point;
use layout::core::style::StyleAttr;
use layout::std_shapes::shapes::{Arrow, Element, ShapeKind};
use layout::topo::layout::VisualGraph;

use crate::surface::startup::short_type;
use crate::{Graph, GraphNode};

/// Space around the drawing; a box's height (its width follows its text, cut to `MAX_CHARS`
/// characters with `…`); the width of a character of a name (13 px monospace) and of a type (11 px).
const MARGIN: f64 = 16.0;
const BOX_H: f64 = 40.0;
const MAX_CHARS: usize = 32;
const NAME_CHAR: f64 = 7.9;
const TYPE_CHAR: f64 = 6.7;
/// Space between pieces and between layers; between the cells of the grid; the width of a row of
/// pieces (or of the widest piece); the grid's columns, at least.
const GAP: f64 = 40.0;
const GRID_GAP: f64 = 14.0;
const ROW_WIDTH: f64 = 1200.0;
const GRID_COLUMNS: usize = 6;
/// A piece is drawn in plain layers instead of by layout-rs above this many path steps, or when a
/// layer holds more than this many nodes; layout-rs optimizes the ranks of pieces up to this size.
const PATH_BUDGET: u64 = 200_000;
const MAX_LAYER: usize = 10;
const OPTIMIZE_UP_TO: usize = 40;
const TOP_DOWN: Orientation = Orientation::TopToBottom;
const EDGE_COLOUR: &str = "#64748b";
const CYCLE_COLOUR: &str = "#dc2626";

/// A bezier path as layout-rs gives it: `(point, control)` first, then `(control, point)` pairs.
type Path = Vec<(Point, Point)>;

/// One box: a node of the graph, or a name an edge refers to that is no node (a ghost).
struct Item<'a> {
    name: &'a str,
    node: Option<&'a GraphNode>,
    sub: String,
    w: f64,
}

/// One edge between items, `flip` when it closes a cycle: laid out from `to` to `from`.
struct Link {
    from: usize,
    to: usize,
    flip: bool,
}

/// A laid-out piece: its size, the top-left corner of its items and the paths of its edges.
struct Block {
    w: f64,
    h: f64,
    items: Vec<(usize, Point)>,
    paths: Vec<(usize, Path)>,
}

/// The graph as one SVG document.
pub(crate) fn graph_svg(graph: &Graph) -> String {
    if graph.nodes.is_empty() && graph.edges.is_empty() {
        return String::from(concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="240" height="60" viewBox="0 0 240 60" "#,
            r##"class="singleton-graph" font-family="sans-serif"><text x="120" y="35" "##,
            r##"text-anchor="middle" font-size="14" fill="#64748b">no singletons</text></svg>"##
        ));
    }
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut items: Vec<Item> = Vec::new();
    for node in &graph.nodes {
        index.entry(&node.name).or_insert(items.len());
        let mut sub = short_type(node.type_name).to_owned();
        for (on, mark) in [(node.is_async, " · async"), (node.eager, " · eager")] {
            sub.extend(on.then_some(mark));
        }
        items.push(Item::new(&node.name, Some(node), sub));
    }
    for edge in &graph.edges {
        for name in [&edge.from, &edge.to] {
            if !index.contains_key(name.as_str()) {
                index.insert(name, items.len());
                items.push(Item::new(name, None, "not registered".into()));
            }
        }
    }
    let ends: Vec<(usize, usize)> = graph.edges.iter().map(|e| (index[&*e.from], index[&*e.to])).collect();
    let place = places(items.len(), &ends);
    let links: Vec<Link> = ends
        .iter()
        .map(|&(from, to)| match place[from] <= place[to] {
            true => Link { from, to, flip: false },
            false => Link { from: to, to: from, flip: true },
        })
        .collect();

    // The connected pieces, in the order of their first item (by name).
    let mut root: Vec<usize> = (0..items.len()).collect();
    for link in &links {
        let (a, b) = (find(&mut root, link.from), find(&mut root, link.to));
        root[a.max(b)] = a.min(b);
    }
    let mut linked = vec![false; items.len()];
    links.iter().for_each(|l| (linked[l.from], linked[l.to]) = (true, true));
    let mut pieces: BTreeMap<usize, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    let mut isolated = Vec::new();
    for (i, &linked) in linked.iter().enumerate() {
        match linked {
            true => pieces.entry(find(&mut root, i)).or_default().0.push(i),
            false => isolated.push(i),
        }
    }
    for (e, link) in links.iter().enumerate() {
        pieces.entry(find(&mut root, link.from)).or_default().1.push(e);
    }
    let blocks: Vec<Block> =
        pieces.into_values().map(|(nodes, edges)| lay_out(&items, &links, &place, &nodes, &edges)).collect();

    // Pack the pieces in rows, then the grid below them.
    let mut at = vec![Point::zero(); items.len()];
    let mut paths: Vec<Path> = vec![Vec::new(); links.len()];
    let top = MARGIN + 36.0;
    let row_width = blocks.iter().map(|b| b.w).fold(ROW_WIDTH, f64::max);
    let (mut x, mut y, mut row_h, mut width) = (0.0, top, 0.0_f64, 0.0_f64);
    for block in &blocks {
        if x > 0.0 && x + block.w > row_width {
            (x, y, row_h) = (0.0, y + row_h + GAP, 0.0);
        }
        let shift = Point::new(MARGIN + x, y);
        block.items.iter().for_each(|&(i, p)| at[i] = p.add(shift));
        block.paths.iter().for_each(|(e, path)| paths[*e] = moved(path, shift));
        (x, row_h, width) = (x + block.w + GAP, row_h.max(block.h), width.max(x + block.w));
    }
    if !blocks.is_empty() {
        y += row_h + GAP;
    }
    let cell = isolated.iter().map(|&i| items[i].w).fold(0.0, f64::max) + GRID_GAP;
    let columns = isolated.len().min(GRID_COLUMNS.max((width / cell) as usize)).max(1);
    for (k, &i) in isolated.iter().enumerate() {
        at[i] =
            Point::new(MARGIN + (k % columns) as f64 * cell, y + (k / columns) as f64 * (BOX_H + GRID_GAP));
    }
    if !isolated.is_empty() {
        width = width.max(columns as f64 * cell - GRID_GAP);
        y += isolated.len().div_ceil(columns) as f64 * (BOX_H + GRID_GAP);
    }
    // At least as wide as the legend, which is wider with the cycle colour.
    let cycle = links.iter().any(|l| l.flip);
    let legend_w = if cycle { 680.0 } else { 580.0 };
    let (w, h) = ((width + 2.0 * MARGIN).max(legend_w).ceil(), (y - GAP.min(GRID_GAP) + MARGIN).ceil());

    let mut svg = String::with_capacity(600 * (items.len() + links.len()) + 1500);
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" "#
    );
    svg.push_str(concat!(
        r#"style="max-width:100%;height:auto" class="singleton-graph" font-family="ui-monospace, "#,
        r#"SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace"><title>Singleton dependency "#,
        "graph</title>\n",
    ));
    legend(&mut svg, graph, cycle);
    for ((edge, link), path) in graph.edges.iter().zip(&links).zip(&paths) {
        draw_edge(&mut svg, &edge.from, &edge.to, path, link.flip);
    }
    for (item, p) in items.iter().zip(&at) {
        draw_item(&mut svg, item, *p);
    }
    svg.push_str("</svg>\n");
    svg
}

impl<'a> Item<'a> {
    /// A box for `name`, its width fitted to the name and the `sub` line.
    fn new(name: &'a str, node: Option<&'a GraphNode>, sub: String) -> Self {
        let chars = |s: &str| s.chars().count().min(MAX_CHARS) as f64;
        let w = (chars(name) * NAME_CHAR).max(chars(&sub) * TYPE_CHAR).max(60.0) + 20.0;
        Item { name, node, sub, w: w.round() }
    }
}

/// The root of `i` in the union-find forest `root`.
fn find(root: &mut [usize], mut i: usize) -> usize {
    while root[i] != i {
        root[i] = root[root[i]];
        i = root[i];
    }
    i
}

/// Each item's place in a depth-first reverse postorder (roots and successors in name order): an
/// edge from an earlier place to a later one points down, one the other way closes a cycle.
fn places(n: usize, ends: &[(usize, usize)]) -> Vec<usize> {
    let mut succ = vec![Vec::new(); n];
    ends.iter().for_each(|&(from, to)| succ[from].push(to));
    let (mut seen, mut post) = (vec![false; n], Vec::with_capacity(n));
    for start in 0..n {
        if std::mem::replace(&mut seen[start], true) {
            continue;
        }
        let mut stack = vec![(start, 0)];
        while let Some(top) = stack.last_mut() {
            let (v, i) = *top;
            match succ[v].get(i) {
                Some(&w) => {
                    top.1 += 1;
                    if !std::mem::replace(&mut seen[w], true) {
                        stack.push((w, 0));
                    }
                }
                None => {
                    post.push(v);
                    stack.pop();
                }
            }
        }
    }
    let mut place = vec![0; n];
    post.iter().rev().enumerate().for_each(|(p, &v)| place[v] = p);
    place
}

/// Lays out one connected piece: `nodes` (items) and `edges` (links), by layout-rs unless it is too
/// wide or too costly for it.
fn lay_out(items: &[Item], links: &[Link], place: &[usize], nodes: &[usize], edges: &[usize]) -> Block {
    let local: BTreeMap<usize, usize> = nodes.iter().enumerate().map(|(l, &i)| (i, l)).collect();
    let pairs: Vec<(usize, usize)> =
        edges.iter().map(|&e| (local[&links[e].from], local[&links[e].to])).collect();
    let widths: Vec<f64> = nodes.iter().map(|&i| items[i].w).collect();
    // The nodes from the top down (every pair but a loop goes down this order), and their layers:
    // the longest chain of dependencies below a node sets its height above the bottom.
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    order.sort_by_key(|&l| place[nodes[l]]);
    let mut height = vec![0; nodes.len()];
    for &l in order.iter().rev() {
        let below = pairs.iter().filter(|&&(f, t)| f == l && t != l).map(|&(_, t)| height[t] + 1);
        height[l] = below.max().unwrap_or(0);
    }
    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let top = height.iter().max().copied().unwrap_or(0);
    order.iter().for_each(|&l| layers[top - height[l]].push(l));
    let (boxes, paths) = Some(())
        .filter(|()| layers.iter().all(|layer| layer.len() <= MAX_LAYER))
        .and_then(|()| with_layout_rs(&widths, &pairs, &order))
        .unwrap_or_else(|| in_layers(&widths, &pairs, &layers));
    // Move the piece to (0, 0).
    let (mut lo, mut hi) = (Point::splat(f64::MAX), Point::splat(f64::MIN));
    let corners = boxes.iter().zip(&widths).flat_map(|(p, w)| [*p, p.add(Point::new(*w, BOX_H))]);
    for p in corners.chain(paths.iter().flatten().flat_map(|&(a, b)| [a, b])) {
        (lo, hi) = (Point::new(lo.x.min(p.x), lo.y.min(p.y)), Point::new(hi.x.max(p.x), hi.y.max(p.y)));
    }
    let items = nodes.iter().zip(&boxes).map(|(&i, p)| (i, p.sub(lo))).collect();
    let paths = edges.iter().zip(paths).map(|(&e, path)| (e, moved(&path, lo.neg()))).collect();
    Block { w: hi.x - lo.x, h: hi.y - lo.y, items, paths }
}

/// The boxes' top-left corners and the edges' paths, by layout-rs (the nodes given in `order`, top
/// down, which it keeps within a rank); `None` when the piece is too costly for it or it fails.
fn with_layout_rs(
    widths: &[f64],
    pairs: &[(usize, usize)],
    order: &[usize],
) -> Option<(Vec<Point>, Vec<Path>)> {
    // layout-rs checks, edge by edge, whether `from` is reachable from `to` by following every
    // path from `to`: count the paths (from the bottom up) before letting it.
    let mut paths = vec![1_u64; widths.len()];
    for &l in order.iter().rev() {
        let below = pairs.iter().filter(|&&(f, t)| f == l && t != l).map(|&(_, t)| paths[t]);
        paths[l] = below.fold(1, u64::saturating_add);
    }
    if pairs.iter().map(|&(_, t)| paths[t]).fold(0, u64::saturating_add) > PATH_BUDGET {
        return None;
    }
    let mut vg = VisualGraph::new(TOP_DOWN);
    vg.dag.set_validate(false);
    let mut handles = vec![NodeHandle::default(); widths.len()];
    for &l in order {
        let (shape, size) = (ShapeKind::new_box(""), Point::new(widths[l], BOX_H));
        let node = Element::create_with_properties(shape, StyleAttr::simple(), TOP_DOWN, size, l.to_string());
        handles[l] = vg.add_node(node);
    }
    for (k, &(f, t)) in pairs.iter().enumerate() {
        vg.add_edge(Arrow::simple_with_properties("", k.to_string()), handles[f], handles[t]);
    }
    let mut rec = Recorder { boxes: vec![None; widths.len()], paths: vec![None; pairs.len()] };
    // Its rank and crossing optimizations grow with the cube of a rank's width: small pieces only.
    let plain = widths.len() > OPTIMIZE_UP_TO;
    catch_unwind(AssertUnwindSafe(|| vg.do_it(false, plain, false, &mut rec))).ok()?;
    Some((rec.boxes.into_iter().collect::<Option<_>>()?, rec.paths.into_iter().collect::<Option<_>>()?))
}

/// The fallback layout: the `layers` placed bottom up, each box as near as it can be above the
/// middle of its dependencies (a row as a whole centred on them), a wide layer wrapped in rows of [`MAX_LAYER`]; plain curves between
/// (a loop is a curve out of the box's right side and back).
fn in_layers(widths: &[f64], pairs: &[(usize, usize)], layers: &[Vec<usize>]) -> (Vec<Point>, Vec<Path>) {
    let (mut centre, mut rows) = (vec![0.0; widths.len()], Vec::new());
    for layer in layers.iter().rev().filter(|layer| !layer.is_empty()) {
        let want = |l: usize| {
            let below = pairs.iter().filter(|&&(f, t)| f == l && t != l).map(|&(_, t)| centre[t]);
            let (sum, n) = below.fold((0.0, 0.0), |(sum, n), x| (sum + x, n + 1.0));
            if n > 0.0 {
                sum / n
            } else {
                0.0
            }
        };
        let mut layer: Vec<(f64, usize)> = layer.iter().map(|&l| (want(l), l)).collect();
        layer.sort_by(|a, b| a.0.total_cmp(&b.0));
        for row in layer.chunks(MAX_LAYER).rev() {
            let mut right = f64::NEG_INFINITY;
            for &(want, l) in row {
                let x = (want - widths[l] / 2.0).max(right + GAP);
                (centre[l], right) = (x + widths[l] / 2.0, x + widths[l]);
            }
            // Pushed right where they overlap: shift the row back to be centred on what it wants.
            let shift = row.iter().map(|&(want, l)| want - centre[l]).sum::<f64>() / row.len() as f64;
            row.iter().for_each(|&(_, l)| centre[l] += shift);
            rows.push(row.iter().map(|&(_, l)| l).collect::<Vec<_>>());
        }
    }
    let mut boxes = vec![Point::zero(); widths.len()];
    for (r, row) in rows.iter().rev().enumerate() {
        let y = r as f64 * (BOX_H + GAP);
        row.iter().for_each(|&l| boxes[l] = Point::new(centre[l] - widths[l] / 2.0, y));
    }
    let route = |&(f, t): &(usize, usize)| {
        let (at, w) = (boxes[f], widths[f]);
        if f == t {
            let (a, b) = (at.add(Point::new(w, 12.0)), at.add(Point::new(w, 28.0)));
            return vec![(a, a.add(Point::new(30.0, -12.0))), (b.add(Point::new(30.0, 12.0)), b)];
        }
        let (a, b) = (at.add(Point::new(w / 2.0, BOX_H)), boxes[t].add(Point::new(widths[t] / 2.0, 0.0)));
        let bend = Point::new(0.0, (b.y - a.y) / 2.0);
        vec![(a, a.add(bend)), (b.sub(bend), b)]
    };
    let routes = pairs.iter().map(route).collect();
    (boxes, routes)
}

/// A render backend that keeps what layout-rs placed: the boxes' corners and the edges' paths,
/// by the index each element or arrow was given as its properties.
struct Recorder {
    boxes: Vec<Option<Point>>,
    paths: Vec<Option<Path>>,
}

impl RenderBackend for Recorder {
    fn draw_rect(
        &mut self,
        xy: Point,
        _: Point,
        _: &StyleAttr,
        props: Option<String>,
        _: Option<ClipHandle>,
    ) {
        keep(&mut self.boxes, props, xy);
    }
    fn draw_line(&mut self, _: Point, _: Point, _: &StyleAttr, _: Option<String>) {}
    fn draw_circle(&mut self, _: Point, _: Point, _: &StyleAttr, _: Option<String>) {}
    fn draw_text(&mut self, _: Point, _: &str, _: &StyleAttr) {}
    fn draw_arrow(
        &mut self,
        path: &[(Point, Point)],
        _: bool,
        _: (bool, bool),
        _: &StyleAttr,
        props: Option<String>,
        _: &str,
    ) {
        keep(&mut self.paths, props, path.to_vec());
    }
    fn create_clip(&mut self, _: Point, _: Point, _: usize) -> ClipHandle {
        0
    }
}

/// Stores `value` in the slot whose index is `props`.
fn keep<T>(slots: &mut [Option<T>], props: Option<String>, value: T) {
    if let Some(slot) = props.and_then(|p| p.parse::<usize>().ok()).and_then(|i| slots.get_mut(i)) {
        *slot = Some(value);
    }
}

/// The legend: counts, a created and a pending box, the arrow, and the cycle colour if needed.
fn legend(svg: &mut String, graph: &Graph, cycle: bool) {
    let (n, e) = (graph.nodes.len(), graph.edges.len());
    let (s, ies) = (if n == 1 { "" } else { "s" }, if e == 1 { "y" } else { "ies" });
    let _ = write!(
        svg,
        r##"<g class="legend" font-size="11" fill="#334155"><text x="16" y="27">{n} singleton{s}, "##
    );
    let _ = write!(svg, "{e} dependenc{ies}</text>");
    svg.push_str(concat!(
        r##"<rect x="266" y="16" width="16" height="12" rx="3" fill="#dbeafe" stroke="#1d4ed8"/>"##,
        r##"<text x="288" y="27">created</text><rect x="356" y="16" width="16" height="12" rx="3" "##,
        r##"fill="#f1f5f9" stroke="#94a3b8" stroke-dasharray="3 2"/><text x="378" y="27">pending</text>"##,
    ));
    svg.push_str(concat!(
        r##"<path d="M 446 22 H 474" stroke="#64748b" stroke-width="1.5"/><polygon points="474 22 465 "##,
        r##"26.5 465 17.5" fill="#64748b"/><text x="480" y="27">depends on</text>"##,
    ));
    if cycle {
        svg.push_str(concat!(
            r##"<path d="M 576 22 H 604" stroke="#dc2626" stroke-width="1.5"/><polygon points="604 22 "##,
            r##"595 26.5 595 17.5" fill="#dc2626"/><text x="610" y="27">cycle</text>"##,
        ));
    }
    svg.push_str("</g>\n");
}

/// `path` moved by `by`.
fn moved(path: &Path, by: Point) -> Path {
    path.iter().map(|&(a, b)| (a.add(by), b.add(by))).collect()
}

/// A point as SVG coordinates, `x y`, to a tenth of a pixel.
struct P(Point);

impl std::fmt::Display for P {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1} {:.1}", self.0.x, self.0.y)
    }
}

/// An arrowhead whose tip is at `tip`, pointing along `dir`.
fn head(tip: Point, dir: Point, colour: &str) -> String {
    let len = dir.length();
    let d = if len > 1e-6 { dir.scale(1.0 / len) } else { Point::new(0.0, 1.0) };
    let (base, n) = (tip.sub(d.scale(9.0)), Point::new(-d.y, d.x).scale(4.5));
    format!(r#"<polygon points="{} {} {}" fill="{colour}"/>"#, P(tip), P(base.add(n)), P(base.sub(n)))
}

/// One edge: its path and the arrowhead at the dependency's end (the start when `flip`).
fn draw_edge(svg: &mut String, from: &str, to: &str, path: &Path, flip: bool) {
    let (class, colour, note) = match flip {
        true => ("edge cycle", CYCLE_COLOUR, " (closes a cycle)"),
        false => ("edge", EDGE_COLOUR, ""),
    };
    let (from, to) = (escape(from), escape(to));
    let _ = write!(
        svg,
        r#"<g class="{class}" data-from="{from}" data-to="{to}"><title>{from} depends on {to}{note}</title>"#
    );
    // A flipped edge may share its route with the edge it reverses: drawn a little to the right.
    let path = moved(path, Point::new(if flip { 8.0 } else { 0.0 }, 0.0));
    if let [first, rest @ ..] = path.as_slice() {
        let _ = write!(svg, r#"<path d="M {}"#, P(first.0));
        for (k, (c, p)) in rest.iter().enumerate() {
            let _ = match k {
                0 => write!(svg, " C {} {} {}", P(first.1), P(*c), P(*p)),
                _ => write!(svg, " S {} {}", P(*c), P(*p)),
            };
        }
        let _ = write!(svg, r#"" fill="none" stroke="{colour}" stroke-width="1.5"/>"#);
        let (tip, dir) = match (flip, rest.last()) {
            (false, Some(last)) => (last.1, last.1.sub(last.0)),
            _ => (first.0, first.0.sub(first.1)),
        };
        svg.push_str(&head(tip, dir, colour));
    }
    svg.push_str("</g>\n");
}

/// One box, at `p`: a node (created or pending) or a ghost.
fn draw_item(svg: &mut String, item: &Item, p: Point) {
    let name = escape(item.name);
    let (class, fill, stroke, dash, text) = match item.node {
        Some(n) if n.created => ("node created", "#dbeafe", "#1d4ed8", "", "#0f172a"),
        Some(_) => ("node pending", "#f1f5f9", "#94a3b8", r#" stroke-dasharray="5 3""#, "#475569"),
        None => ("ghost", "#ffffff", "#cbd5e1", r#" stroke-dasharray="2 2""#, "#94a3b8"),
    };
    let title = match item.node {
        Some(n) => {
            let state = if n.created { "created" } else { "pending" };
            let marks =
                [(n.is_async, ", async"), (n.eager, ", eager")].map(|(on, s)| if on { s } else { "" });
            let init = n.init_ms.map(|ms| format!(", init {ms:.3} ms")).unwrap_or_default();
            format!("{name}\n{}\n{state}{}{}{init}", escape(n.type_name), marks[0], marks[1])
        }
        None => format!("{name}\nnot registered (an edge refers to it)"),
    };
    let (w, c) = (item.w, item.w / 2.0);
    let _ = write!(
        svg,
        r#"<g class="{class}" data-name="{name}" transform="translate({:.1} {:.1})"><title>{title}</title><rect width="{w}" height="{BOX_H}" rx="6" fill="{fill}" stroke="{stroke}" stroke-width="1.5"{dash}/>"#,
        p.x, p.y
    );
    let _ = write!(
        svg,
        r#"<text x="{c}" y="17" font-size="13" text-anchor="middle" fill="{text}">{}</text><text x="{c}" y="32" font-size="11" text-anchor="middle" fill="{text}" opacity="0.8">{}</text></g>"#,
        escape(&cut(item.name)),
        escape(&cut(&item.sub)),
    );
    svg.push('\n');
}

/// `s` cut to [`MAX_CHARS`] characters, with `…` when cut.
fn cut(s: &str) -> String {
    match s.char_indices().nth(MAX_CHARS - 1) {
        Some((i, _)) if s.chars().count() > MAX_CHARS => format!("{}…", &s[..i]),
        _ => s.to_owned(),
    }
}

/// `s` escaped for XML text and attribute values; characters XML 1.0 forbids become U+FFFD.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
