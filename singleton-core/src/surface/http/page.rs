//! The admin page, `GET /singletons/ui`: one self-contained HTML document (`page.html`), with
//! its style and script inline and nothing loaded from elsewhere.
//!
//! The page is static: its script fetches the list (`GET ../singletons`, every 5 s), the graph
//! (`graph.svg`, when the list changes) and the health (`health`, on demand), all by relative
//! URL, so the router works wherever it is mounted. Every name and type it shows is put in the
//! document as text (`textContent`), never as markup; the graph's SVG, whose names the server
//! escaped, is parsed as XML (`DOMParser`) and its scripts, if any got there, would not run.

/// The page.
pub(crate) const PAGE: &str = include_str!("page.html");

/// What the page may load: its own inline style and script, and requests to its own origin.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";
