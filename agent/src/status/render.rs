//! The page as HTML (no JavaScript, inline CSS; the state always in words,
//! colour only repeats it) and as JSON.

use std::fmt::Write;

use super::{ComponentState, Page};

/// `GET /status.json`.
pub fn json(page: &Page) -> String {
    serde_json::to_string(page).expect("the page serializes")
}

/// Text made safe for HTML content and attribute values.
pub fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape(s, &mut out);
    out
}

/// Background colour of a state (text on it is #111 or #fff, contrast ≥ 4.5:1).
fn colour(s: Option<ComponentState>) -> (&'static str, &'static str) {
    match s {
        None => ("#d0d4d9", "#111"),
        Some(ComponentState::Operational) => ("#1a7f37", "#fff"),
        Some(ComponentState::UnderMaintenance) => ("#0550ae", "#fff"),
        Some(ComponentState::DegradedPerformance) => ("#f5c518", "#111"),
        Some(ComponentState::PartialOutage) => ("#bc4c00", "#fff"),
        Some(ComponentState::MajorOutage) => ("#b3261e", "#fff"),
    }
}

const CSS: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#111;background:#fff;line-height:1.5}\
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem}h3{font-size:1.05rem;margin:0}\
.banner{padding:.75rem 1rem;border-radius:.4rem;font-weight:600}\
.component{border:1px solid #d0d4d9;border-radius:.4rem;padding:.75rem 1rem;margin:.75rem 0}\
.head{display:flex;justify-content:space-between;gap:1rem;flex-wrap:wrap}\
.state{padding:.1rem .5rem;border-radius:.3rem;font-weight:600}\
.bars{display:flex;gap:1px;list-style:none;padding:0;margin:.5rem 0 0;height:2rem}\
.bars li{flex:1;border-radius:1px;background:#d0d4d9}.bars .b0{background:#1a7f37}.bars .b1{background:#0550ae}.bars .b2{background:#f5c518}.bars .b3{background:#bc4c00}.bars .b4{background:#b3261e}\
.legend{font-size:.85rem;color:#444}\
.incident{border-left:.3rem solid #bc4c00;padding:.25rem 1rem;margin:1rem 0}\
.incident.resolved{border-left-color:#1a7f37}\
.update{margin:.5rem 0}.update p{margin:.1rem 0;white-space:pre-wrap}\
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}\
time{color:#444}";

/// `GET /status`.
pub fn html(page: &Page) -> String {
    let mut o = String::with_capacity(4096 + page.components.len() * 12_000);
    let title = esc(&page.title);
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title}</title><style>{CSS}</style></head><body><main><h1>{title}</h1>"
    );
    let (bg, fg) = colour(Some(page.overall));
    let overall = match page.overall {
        ComponentState::Operational => "All systems operational".to_string(),
        s => format!("Some systems: {}", s.label().to_lowercase()),
    };
    let _ = write!(
        o,
        "<p class=\"banner\" id=\"overall\" data-state=\"{}\" style=\"background:{bg};color:{fg}\">{overall}</p><p>Updated <time datetime=\"{u}\">{u}</time></p>",
        page.overall.as_str(),
        u = page.updated_at
    );

    let active: Vec<_> = page.incidents.iter().filter(|i| i.resolved_at.is_none()).collect();
    let recent: Vec<_> = page.incidents.iter().filter(|i| i.resolved_at.is_some()).collect();
    if !active.is_empty() {
        o.push_str("<section aria-labelledby=\"active\"><h2 id=\"active\">Active incidents</h2>");
        for i in active {
            incident(&mut o, i);
        }
        o.push_str("</section>");
    }

    o.push_str("<section aria-labelledby=\"components\"><h2 id=\"components\">Components</h2>");
    o.push_str("<p class=\"legend\">Each bar is one UTC day of the last 90, oldest first; its label says the worst state that day.</p>");
    for c in &page.components {
        let (bg, fg) = colour(Some(c.status));
        let name = esc(&c.name);
        let uptime = c.uptime_percent.map_or("no data yet".to_string(), |u| format!("{u:.3} % uptime"));
        let _ = write!(
            o,
            "<article class=\"component\" data-state=\"{}\"><div class=\"head\"><h3>{name}</h3><span class=\"state\" style=\"background:{bg};color:{fg}\">{}</span></div><p class=\"legend\">90 days: {uptime}</p><ul class=\"bars\" aria-label=\"{name}: the last 90 days\">",
            c.status.as_str(),
            c.status.label()
        );
        for d in &c.days {
            // A class per state (the colours are in the style sheet); the
            // words in `title`, and for screen readers on days not plainly up.
            let what = d.worst.map_or("no data", |w| w.label());
            o.push_str("<li");
            if let Some(w) = d.worst {
                let _ = write!(o, " class=\"b{}\"", w as usize);
            }
            let _ = write!(o, " title=\"{}: {what}", d.date);
            for (state, n) in &d.minutes {
                let _ = write!(o, ", {state} {n} min");
            }
            o.push_str("\">");
            if d.worst.is_some_and(|w| w != ComponentState::Operational) {
                let _ = write!(o, "<span class=\"sr\">{}: {what}</span>", d.date);
            }
            o.push_str("</li>");
        }
        o.push_str("</ul></article>");
    }
    o.push_str("</section>");

    if !page.scheduled_maintenance.is_empty() {
        o.push_str("<section aria-labelledby=\"maintenance\"><h2 id=\"maintenance\">Scheduled maintenance</h2><p class=\"legend\">Times in UTC.</p><ul>");
        for m in &page.scheduled_maintenance {
            let names: Vec<String> = m.components.iter().map(|c| esc(c)).collect();
            let when = if m.in_progress { "<strong>In progress</strong>: " } else { "" };
            let weekly = if m.recurrence == "weekly" { " (every week)" } else { "" };
            let _ = write!(
                o,
                "<li class=\"maintenance\">{when}{}: from <time datetime=\"{s}\">{s}</time> to <time datetime=\"{e}\">{e}</time>{weekly}</li>",
                names.join(", "),
                s = m.starts_at,
                e = m.ends_at
            );
        }
        o.push_str("</ul></section>");
    }

    o.push_str("<section aria-labelledby=\"recent\"><h2 id=\"recent\">Recent incidents</h2>");
    if recent.is_empty() {
        o.push_str("<p>No incidents in the last 7 days.</p>");
    }
    for i in recent {
        incident(&mut o, i);
    }
    o.push_str("</section></main></body></html>");
    o
}

fn word(s: crate::incident::Status) -> &'static str {
    match s {
        crate::incident::Status::Investigating => "Investigating",
        crate::incident::Status::Identified => "Identified",
        crate::incident::Status::Monitoring => "Monitoring",
        crate::incident::Status::Resolved => "Resolved",
    }
}

fn incident(o: &mut String, i: &super::IncidentView) {
    let class = if i.resolved_at.is_some() { "incident resolved" } else { "incident" };
    let names: Vec<String> = i.components.iter().map(|c| esc(c)).collect();
    let _ = write!(
        o,
        "<article class=\"{class}\" id=\"{id}\"><h3>{}</h3><p>{} · impact {} · affects {}</p>",
        esc(&i.title),
        word(i.status),
        i.impact.as_str(),
        names.join(", "),
        id = esc(&i.id),
    );
    for u in &i.updates {
        let _ = write!(
            o,
            "<div class=\"update\"><p><strong>{}</strong> <time datetime=\"{at}\">{at}</time></p><p>{}</p></div>",
            word(u.status),
            esc(&u.message),
            at = u.at
        );
    }
    o.push_str("</article>");
}
