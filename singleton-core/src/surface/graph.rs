//! The dependency graph: which singleton's factory asked for which, as data, JSON and Graphviz.

use std::fmt::Write as _;

use crate::manager;
use crate::surface::list::Listed;
use crate::surface::startup::short_type;

/// The singletons of a core and what their factories asked for: what
/// [`graph()`](crate::graph()) and [`SingletonCore::graph`](crate::SingletonCore::graph) return.
///
/// While a factory runs (sync or async, in a core or in a test scope), every singleton it asks
/// for — typed (`T::instance()`) or by name (`get`, `get_or_create`, ...) — is recorded as its
/// dependency. An edge lasts until its dependent is deleted or created again (a `set` that
/// replaces the dependency keeps it).
///
/// It serializes as `{"nodes": [{"name", "type", "created", "eager", "async", "init_ms"}],
/// "edges": [{"from", "to"}]}`, `from` being the dependent.
///
/// ```
/// use singleton_kit::{singleton, SingletonCore};
///
/// #[singleton(name = "doc_graph_config", factory = || Config)]
/// struct Config;
/// #[singleton(name = "doc_graph_client", factory = || { let _ = Config::instance(); Client })]
/// struct Client;
///
/// let _ = Client::instance();
/// let graph = singleton_kit::graph();
/// assert!(graph.edges.iter().any(|e| e.from == "doc_graph_client" && e.to == "doc_graph_config"));
/// let node = graph.nodes.iter().find(|n| n.name == "doc_graph_client").unwrap();
/// assert!(node.created && !node.is_async && node.init_ms.is_some());
/// let json = serde_json::to_value(&graph).unwrap();
/// assert!(json["nodes"][0]["type"].is_string());
/// assert!(graph.to_dot().contains(r#""doc_graph_client" -> "doc_graph_config";"#));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Graph {
    /// Every registered `#[singleton]` type (created or not) and every live entry made at run
    /// time (`set`, `get_or_create`), sorted by name.
    pub nodes: Vec<GraphNode>,
    /// One edge per dependency, sorted.
    pub edges: Vec<GraphEdge>,
}

/// One singleton in a [`Graph`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct GraphNode {
    /// Its name.
    pub name: String,
    /// Its type's name, as [`std::any::type_name`] gives it.
    pub type_name: &'static str,
    /// `true` when it has an instance.
    pub created: bool,
    /// `true` for `#[singleton(eager)]`.
    pub eager: bool,
    /// `true` for `#[singleton(async)]`.
    pub is_async: bool,
    /// How long its factory ran, in milliseconds; `None` when it has no instance or the instance
    /// was stored with `set`.
    pub init_ms: Option<f64>,
}

/// One dependency in a [`Graph`]: the factory of `from` asked for `to`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub struct GraphEdge {
    /// The dependent.
    pub from: String,
    /// What it depends on.
    pub to: String,
}

crate::surface::ser::serialize_fields!(Graph { "nodes" => nodes, "edges" => edges });
crate::surface::ser::serialize_fields!(GraphNode {
    "name" => name,
    "type" => type_name,
    "created" => created,
    "eager" => eager,
    "async" => is_async,
    "init_ms" => init_ms,
});
crate::surface::ser::serialize_fields!(GraphEdge { "from" => from, "to" => to });

/// The dependency graph of the global core: [`SingletonCore::graph`](crate::SingletonCore::graph) on [`manager()`](crate::manager).
///
/// ```
/// let graph = singleton_kit::graph();
/// println!("{}", graph.to_dot()); // render with `dot -Tsvg`
/// ```
pub fn graph() -> Graph {
    manager().graph()
}

impl crate::SingletonCore {
    /// The dependency graph: every registered `#[singleton]` type (created or not) and every live
    /// entry made at run time, with an edge for each singleton a factory asked for. Not counted
    /// against the rate limit (it is not one of the seed's operations).
    ///
    /// ```
    /// use singleton_kit::SingletonCore;
    ///
    /// let core = SingletonCore::new();
    /// core.get_or_try_create("service", || core.get_or_create("client", || "http").map(|c| c.len()))?;
    /// let graph = core.graph();
    /// assert_eq!(graph.dependencies_of("service"), ["client"]);
    /// let service = graph.nodes.iter().find(|n| n.name == "service").unwrap();
    /// assert!(service.created && service.init_ms.is_some());
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn graph(&self) -> Graph {
        let mut nodes = Vec::new();
        let mut edges = Vec::new();
        // A node is what `list` shows of the entry, less its counts.
        self.for_each_entry(|name, entry| {
            let Some(listed) = Listed::of(name, entry) else { return };
            edges.extend(
                listed.dependencies.iter().map(|to| GraphEdge { from: name.to_owned(), to: to.clone() }),
            );
            nodes.push(GraphNode {
                name: listed.name,
                type_name: listed.type_name,
                created: listed.created,
                eager: listed.eager,
                is_async: listed.is_async,
                init_ms: listed.init_duration.map(crate::units::millis),
            });
        });
        Graph::new(nodes, edges)
    }
}

impl Graph {
    pub(crate) fn new(mut nodes: Vec<GraphNode>, mut edges: Vec<GraphEdge>) -> Self {
        crate::order::sort_by_names(&mut nodes, |n| (&n.name, n.type_name));
        crate::order::sort_by_names(&mut edges, |e| (&e.from, &e.to));
        edges.dedup();
        Self { nodes, edges }
    }

    /// The graph in Graphviz DOT: one `"name";` line per node (labelled with its type, dashed when
    /// not created yet) and one `"from" -> "to";` line per edge. Render it with
    /// `dot -Tsvg graph.dot -o graph.svg`.
    ///
    /// ```
    /// use singleton_kit::SingletonCore;
    ///
    /// let core = SingletonCore::new();
    /// core.get_or_create("cache", || {
    ///     let _ = core.get_or_create("store", || 1_u8);
    ///     2_u8
    /// })?;
    /// let dot = core.graph().to_dot();
    /// assert!(dot.starts_with("digraph singletons {"));
    /// assert!(dot.lines().any(|l| l.trim() == r#""cache" -> "store";"#));
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn to_dot(&self) -> String {
        let mut dot = String::from("digraph singletons {\n    rankdir=LR;\n    node [shape=box];\n");
        for node in &self.nodes {
            let kind = if node.is_async { ", async" } else { "" };
            let style = if node.created { "" } else { ", style=dashed" };
            let label = format!("{}\\n{}{kind}", node.name, short_type(node.type_name));
            let _ = writeln!(dot, "    {} [label={}{style}];", quote(&node.name), quote_label(&label));
        }
        for edge in &self.edges {
            let _ = writeln!(dot, "    {} -> {};", quote(&edge.from), quote(&edge.to));
        }
        dot.push_str("}\n");
        dot
    }

    /// The names `name` depends on.
    ///
    /// ```
    /// use singleton_kit::SingletonCore;
    ///
    /// let core = SingletonCore::new();
    /// core.get_or_try_create("api", || core.get_or_create("token", || 7_u32).map(|t| *t))?;
    /// assert_eq!(core.graph().dependencies_of("api"), ["token"]);
    /// assert_eq!(core.graph().dependents_of("token"), ["api"]);
    /// # Ok::<(), singleton_kit::SingletonError>(())
    /// ```
    pub fn dependencies_of(&self, name: &str) -> Vec<&str> {
        self.edges.iter().filter(|e| e.from == name).map(|e| e.to.as_str()).collect()
    }

    /// The names that depend on `name`.
    pub fn dependents_of(&self, name: &str) -> Vec<&str> {
        self.edges.iter().filter(|e| e.to == name).map(|e| e.from.as_str()).collect()
    }
}

/// A DOT id: a quoted string with `"` and `\` escaped (names may hold any printable character).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A DOT label: as [`quote`], but keeping the `\n` line breaks it was given.
fn quote_label(s: &str) -> String {
    quote(s).replace("\\\\n", "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_escapes_quotes_and_backslashes() {
        let graph = Graph::new(
            vec![GraphNode {
                name: "a\"b\\c".into(),
                type_name: "x::T",
                created: true,
                eager: false,
                is_async: false,
                init_ms: None,
            }],
            vec![GraphEdge { from: "a\"b\\c".into(), to: "d".into() }],
        );
        let dot = graph.to_dot();
        assert!(dot.contains(r#""a\"b\\c" [label="a\"b\\c\nT"];"#), "{dot}");
        assert!(dot.contains(r#""a\"b\\c" -> "d";"#), "{dot}");
    }
}
