//! The baseline "typical exporter": the same series set into prometheus
//! `GaugeVec`s in a registry, rendered with `TextEncoder` on every scrape.

use anyhow::{Context, Result};
use prometheus::{GaugeVec, Opts, Registry, TextEncoder};
use std::collections::BTreeMap;
use std::path::Path;

type Labels = Vec<(String, String)>;

/// `name{a="x",b="y"} v` -> (name, [(a, x), (b, y)], v); handles escaped quotes.
fn parse_sample(line: &str) -> Option<(String, Labels, f64)> {
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let Some((name, rest)) = series.split_once('{') else {
        return Some((series.to_string(), Vec::new(), value));
    };
    let mut labels = Vec::new();
    let mut chars = rest.trim_end_matches('}').chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        chars.next(); // opening quote
        let mut val = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => val.push('\n'),
                    Some(o) => val.push(o),
                    None => break,
                },
                '"' => break,
                o => val.push(o),
            }
        }
        labels.push((key.trim_start_matches(',').to_string(), val));
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    Some((name.to_string(), labels, value))
}

pub fn build(text: &str) -> Result<Registry> {
    let mut help: BTreeMap<String, String> = BTreeMap::new();
    let mut samples: BTreeMap<String, Vec<(Labels, f64)>> = BTreeMap::new();
    for l in text.lines() {
        if let Some(h) = l.strip_prefix("# HELP ") {
            if let Some((n, t)) = h.split_once(' ') {
                help.insert(n.to_string(), t.to_string());
            }
        } else if !l.starts_with('#') && !l.is_empty() {
            if let Some((n, labels, v)) = parse_sample(l) {
                samples.entry(n).or_default().push((labels, v));
            }
        }
    }
    let reg = Registry::new();
    for (name, ss) in samples {
        // Label names: the union over the family; absent ones render as "".
        let mut names: Vec<String> = ss
            .iter()
            .flat_map(|(l, _)| l.iter().map(|(k, _)| k.clone()))
            .collect();
        names.sort();
        names.dedup();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let g = GaugeVec::new(
            Opts::new(
                &name,
                help.get(&name).cloned().unwrap_or_else(|| name.clone()),
            ),
            &refs,
        )
        .with_context(|| format!("metric {name}"))?;
        for (labels, v) in ss {
            let vals: Vec<&str> = names
                .iter()
                .map(|n| {
                    labels
                        .iter()
                        .find(|(k, _)| k == n)
                        .map_or("", |(_, v)| v.as_str())
                })
                .collect();
            g.with_label_values(&vals).set(v);
        }
        reg.register(Box::new(g))
            .with_context(|| format!("register {name}"))?;
    }
    Ok(reg)
}

pub fn serve(body: &Path, listen: &str) -> Result<()> {
    let text = std::fs::read_to_string(body)?;
    let reg = build(&text)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let app = axum::Router::new()
            .route("/healthz", axum::routing::get(|| async { "ok\n" }))
            .route(
                "/metrics",
                axum::routing::get(move || {
                    let reg = reg.clone();
                    async move {
                        let text = TextEncoder::new()
                            .encode_to_string(&reg.gather())
                            .unwrap_or_default();
                        (
                            [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                            text,
                        )
                    }
                }),
            );
        let l = tokio::net::TcpListener::bind(listen).await?;
        axum::serve(l, app).await?;
        anyhow::Ok(())
    })
}
