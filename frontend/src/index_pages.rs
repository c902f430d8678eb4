//! Index lookups at the edge: the simple-API project pages hash-pinned requirements locks
//! need ([`plan::locks::index_pages`]), fetched through BuildKit's HTTP source and read back.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use llb_gen::llb::{Graph, VertexMeta};
use llb_gen::plan;

use crate::gateway::Gateway;
use crate::request::{Failure, Inputs};

/// The largest page read (PyPI's largest project pages are a few MB).
const MAX_PAGE: u64 = 64 << 20;

/// How many pages are fetched at once.
const CONCURRENT: usize = 16;

/// The pages the stack's requirements locks need, fetched: page URL → text, None for a page
/// BuildKit could not fetch (an HTTP error, not reachable), that is too large or not UTF-8
/// (the planner then reports the pins at their lines). Nothing when no lock needs a lookup.
pub async fn fetch(
    gw: &Gateway,
    inputs: &Inputs,
    lock_files: &BTreeMap<String, Option<String>>,
) -> Result<BTreeMap<String, Option<String>>, Failure> {
    let Ok((stack, _)) = llb_gen::parse_checked(&inputs.file) else {
        return Ok(Default::default());
    };
    let pages = plan::locks::index_pages(&stack, lock_files);
    let results: Vec<(String, Option<String>)> = futures_util::stream::iter(pages)
        .map(|p| async move {
            let text = fetch_one(gw, &p).await;
            (p.url, text)
        })
        .buffered(CONCURRENT)
        .collect()
        .await;
    Ok(results.into_iter().collect())
}

async fn fetch_one(gw: &Gateway, page: &plan::locks::IndexPage) -> Option<String> {
    let mut g = Graph::new();
    let out = g.http(
        &page.url,
        "",
        "page",
        page.auth_secret.as_deref(),
        VertexMeta {
            name: format!("[internal] look up {}", page.url),
            ..Default::default()
        },
    );
    let why = |e: &dyn std::fmt::Display| {
        eprintln!("layerstack: index page {}: {e}", page.url);
    };
    let r = match gw.solve(g.marshal(out, None)).await {
        Ok(r) => r,
        Err(e) => {
            why(&e);
            return None;
        }
    };
    match gw.stat_file(&r, "page").await {
        Ok(Some(st)) if (st.size as u64) <= MAX_PAGE => {}
        Ok(Some(st)) => {
            why(&format!("{} bytes (at most {MAX_PAGE})", st.size));
            return None;
        }
        Ok(None) => {
            why(&"no page in the result");
            return None;
        }
        Err(e) => {
            why(&e);
            return None;
        }
    }
    match gw.read_file(&r, "page", None).await {
        Ok(bytes) => String::from_utf8(bytes).ok(),
        Err(e) => {
            why(&e);
            None
        }
    }
}
